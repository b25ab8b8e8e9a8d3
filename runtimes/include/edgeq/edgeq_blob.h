/*
 * edgeq_blob.h -- the on-disk format of an edgeq blob, defined in ONE place.
 *
 * Python mirrors this file in edgeq/blob/layout.py; tools/check_abi.py compiles a
 * probe against this header and proves every size, offset and id is equal.
 * Everything is little-endian. Ids are stable and never reused.
 *
 * File = header (64 B) | section table (n_sections x 32 B) | sections...
 * Sections: STRINGS (NUL-terminated names), TENSORS (edgeq_tensor_t[]),
 * GRAPH (edgeq_graph_t + edgeq_op_t[]), METADATA (UTF-8 JSON), DATA (tensor
 * payloads, every tensor 64-byte aligned relative to the file start), and an
 * optional SIGNATURE section that, when present, is the last one in the file.
 * Bit layouts of every weight format: docs/formats.md (and edgeq/formats/).
 */
#ifndef EDGEQ_BLOB_H
#define EDGEQ_BLOB_H

#include <stdint.h>

#define EDGEQ_MAGIC "EDGQ"
#define EDGEQ_VERSION_MAJOR 1 /* readers refuse a newer major */
#define EDGEQ_VERSION_MINOR 0
#define EDGEQ_ALIGN 64        /* every section and tensor payload */
#define EDGEQ_MAX_DIMS 4
#define EDGEQ_OP_MAX_INPUTS 6
#define EDGEQ_OP_MAX_OUTPUTS 2
#define EDGEQ_OP_MAX_ATTRS 16

#define EDGEQ_STATIC_ASSERT(cond, msg) typedef char edgeq_static_assert_##msg[(cond) ? 1 : -1]

/* ---- header ---------------------------------------------------------- */
/* header_crc: CRC32 of header + section table with header_crc and file_crc
 * taken as zero. file_crc: CRC32 of the whole file with those two fields and
 * the SIGNATURE section's payload taken as zero. The SIGNATURE section's own
 * crc32 covers its payload like any other section's. */
typedef struct {
    char magic[4];          /* "EDGQ" */
    uint16_t version_major;
    uint16_t version_minor;
    uint32_t flags;         /* EDGEQ_FLAG_* */
    uint32_t n_sections;
    uint64_t file_size;     /* exact size of the file in bytes */
    char target[16];        /* target id the blob was packed for, "" = any */
    uint32_t header_crc;
    uint32_t file_crc;
    uint64_t section_table_offset; /* = 64 */
    uint64_t reserved;
} edgeq_header_t;
EDGEQ_STATIC_ASSERT(sizeof(edgeq_header_t) == 64, header_64);

#define EDGEQ_FLAG_SIGNED 0x1u  /* a SIGNATURE section is present */

typedef struct {
    uint32_t kind;          /* EDGEQ_SECTION_* */
    uint32_t crc32;         /* CRC32 of the section's bytes */
    uint64_t offset;        /* from file start, 64-aligned */
    uint64_t size;
    uint64_t reserved;
} edgeq_section_t;
EDGEQ_STATIC_ASSERT(sizeof(edgeq_section_t) == 32, section_32);

enum {
    EDGEQ_SECTION_STRINGS = 1,
    EDGEQ_SECTION_TENSORS = 2,
    EDGEQ_SECTION_GRAPH = 3,
    EDGEQ_SECTION_METADATA = 4,
    EDGEQ_SECTION_DATA = 5,
    EDGEQ_SECTION_SIGNATURE = 6
};

/* ---- signature ---------------------------------------------------------- */
/* The SIGNATURE section's payload: one edgeq_signature_t, the last bytes of
 * the file. The signed message is the WHOLE file (header, section table,
 * padding, every section, the algorithm and key_id below) with exactly these
 * bytes taken as zero: header_crc and file_crc, the SIGNATURE entry's crc32 in
 * the section table, and signature[64]. Those are derived from the rest (the
 * CRCs) or are the signature itself, so no other bit can change undetected.
 * Ed25519 is RFC 8032 PureEd25519 over that message (SHA-512 inside). */
typedef struct {
    uint32_t algorithm;     /* EDGEQ_SIG_ED25519 */
    uint32_t reserved;      /* 0 */
    uint8_t key_id[16];     /* first 16 bytes of SHA-512(raw 32-byte public key) */
    uint8_t signature[64];  /* Ed25519 signature of the message above */
} edgeq_signature_t;
EDGEQ_STATIC_ASSERT(sizeof(edgeq_signature_t) == 88, signature_88);

enum {
    EDGEQ_SIG_ED25519 = 1
};
#define EDGEQ_SIG_PUBLIC_KEY_BYTES 32
#define EDGEQ_SIG_KEY_ID_BYTES 16

/* ---- formats (tensor element types) ------------------------------------ */
/* Weight formats pack rows of a [rows, cols] matrix; cols is padded per row
 * to a whole number of blocks (pad codes mean 0). See docs/formats.md. */
enum {
    EDGEQ_FMT_F32 = 1,
    EDGEQ_FMT_F16 = 2,
    EDGEQ_FMT_I32 = 3,
    EDGEQ_FMT_I8 = 4,    /* int8; weights: per-row fp32 scale; activations: per-tensor qscale/qzero */
    EDGEQ_FMT_U8 = 5,
    EDGEQ_FMT_T2 = 16,   /* ternary, 2-bit codes c=w+1, 256/block, 64 B codes (TQ2_0 order) */
    EDGEQ_FMT_T158 = 17, /* ternary, base-3 5 trits/byte, 256/block, 52 B codes (TQ1_0 order) */
    EDGEQ_FMT_B1 = 18,   /* binary, bit set = -1, 32-bit LE words along cols, 64/block */
    EDGEQ_FMT_Q4 = 19    /* int4 group-wise, u = q+8 (or zero point), 2/byte low nibble first */
};

#define EDGEQ_T2_BLOCK 256
#define EDGEQ_T2_CODE_BYTES 64     /* 2.0625 bpw with an fp16 block scale */
#define EDGEQ_T158_BLOCK 256
#define EDGEQ_T158_CODE_BYTES 52   /* 1.6875 bpw with an fp16 block scale */
#define EDGEQ_B1_BLOCK 64
#define EDGEQ_B1_CODE_BYTES 8
#define EDGEQ_I8_BLOCK 16          /* I8 rows padded to 16 bytes (SCALE_ROW) */
#define EDGEQ_I8_SCALE_BLOCK 32    /* I8 with SCALE_BLOCK: fp16 scale per 32 (= GGUF Q8_0) */
/* Q4 block (= group) is 32, 64 or 128: block/2 code bytes. */

/* How a weight tensor's scales are stored (tensor.scale_kind). */
enum {
    EDGEQ_SCALE_NONE = 0,   /* activations / plain tensors: qscale/qzero in the record */
    EDGEQ_SCALE_ROW = 1,    /* fp32 per row: int32 row accumulator, integer requant */
    EDGEQ_SCALE_BLOCK = 2   /* fp16 per block: fp32 block-ordered combine (docs/numerics.md) */
};

/* Weight layouts. ROW_MAJOR is canonical; tiled layouts are added by the
 * kernels that prefer them and are repacked at load when the runtime lacks them. */
enum {
    EDGEQ_LAYOUT_ROW_MAJOR = 0,
    /* T2 and Q4 only: rows in groups of 4 (the last group padded with zero rows), each group's
     * rows interleaved in 4-byte words: group byte 16 j + 4 i + t = byte 4 j + t of row 4 g + i.
     * SCALE_BLOCK scales and Q4 zero points are [groups][n_blocks][4]; SCALE_ROW scales stay
     * [rows]. One SDOT by element then dots 4 rows with the same 4 activations (docs/formats.md). */
    EDGEQ_LAYOUT_ROWS4 = 1
};
#define EDGEQ_ROWS4_GROUP 4

/* ---- tensor table ------------------------------------------------------ */
/* A tensor's bytes live at [data_offset, data_offset + data_size) of the FILE.
 * For weight formats: codes at data_offset (rows * row_bytes), scales at
 * data_offset + scales_at, zero points (Q4 asymmetric, uint8 per block) at
 * data_offset + zeros_at (0 = none). Activations have data_size 0: they live
 * in the runtime arena. */
typedef struct {
    uint32_t name;          /* offset into STRINGS */
    uint16_t format;        /* EDGEQ_FMT_* */
    uint16_t layout;        /* EDGEQ_LAYOUT_* */
    uint8_t ndim;
    uint8_t scale_kind;     /* EDGEQ_SCALE_* */
    uint16_t block;         /* weights: block/group size; else 0 */
    uint32_t flags;         /* EDGEQ_TENSOR_* */
    int32_t shape[EDGEQ_MAX_DIMS];
    uint64_t data_offset;
    uint64_t data_size;
    uint64_t scales_at;
    uint64_t zeros_at;
    float qscale;           /* activation quantization: real = (q - qzero) * qscale */
    int32_t qzero;
    int32_t test_index;     /* bundled test vector number, -1 otherwise */
    uint32_t reserved;
} edgeq_tensor_t;
EDGEQ_STATIC_ASSERT(sizeof(edgeq_tensor_t) == 80, tensor_80);

#define EDGEQ_TENSOR_CONST 0x1u        /* has a payload in DATA */
#define EDGEQ_TENSOR_INPUT 0x2u        /* graph input */
#define EDGEQ_TENSOR_OUTPUT 0x4u       /* graph output */
#define EDGEQ_TENSOR_TEST_INPUT 0x8u   /* bundled test input number test_index */
#define EDGEQ_TENSOR_TEST_OUTPUT 0x10u /* host-reference output for test_index */
#define EDGEQ_TENSOR_TEST_LABEL 0x20u  /* I32 labels for the bundled inputs */
/* Runtime state (a decoder's KV cache): lives in the arena for the model's whole life and keeps its
 * bytes between runs; its shape has no batch axis. No op produces it; only ATTENTION_KV writes it. */
#define EDGEQ_TENSOR_STATE 0x40u

/* ---- graph ------------------------------------------------------------- */
typedef struct {
    uint32_t n_ops;
    uint32_t n_inputs;
    uint32_t n_outputs;
    uint32_t reserved;
    int32_t inputs[8];      /* tensor indices, -1 = unused */
    int32_t outputs[8];
} edgeq_graph_t;
EDGEQ_STATIC_ASSERT(sizeof(edgeq_graph_t) == 80, graph_80);

typedef struct {
    uint16_t op;            /* EDGEQ_OP_* */
    uint8_t n_inputs;
    uint8_t n_outputs;
    uint32_t flags;
    int32_t inputs[EDGEQ_OP_MAX_INPUTS];   /* tensor indices, -1 = absent */
    int32_t outputs[EDGEQ_OP_MAX_OUTPUTS];
    int32_t attrs[EDGEQ_OP_MAX_ATTRS];     /* meaning per op, EDGEQ_ATTR_* */
} edgeq_op_t;
EDGEQ_STATIC_ASSERT(sizeof(edgeq_op_t) == 104, op_104);

/* op.flags: kernel hints the packer writes from the target's [kernels] rules. A hint never changes
 * results (every kernel is bit-exact with the reference); a runtime without that kernel ignores it. */
#define EDGEQ_OPF_LUT 0x1u /* LINEAR/CONV2D/DWCONV2D/LINEAR_DYN, T2/T158 weights: lookup-table mat-vec */
#define EDGEQ_OPF_ALL 0x1u /* every defined bit; others are refused */

/* Ops. Activations are NHWC / [N, features]. Inputs of LINEAR, CONV2D and
 * DWCONV2D: 0 x, 1 weight, 2 bias (I32 for SCALE_ROW weights, F32 for
 * SCALE_BLOCK), 3 requant multiplier (I32 Q31 per row; F32 per row for
 * SCALE_BLOCK), 4 requant shift (I32 per row; absent for SCALE_BLOCK). With an F32
 * output tensor (last layer), input 3 is an F32 per-row dequantization scale, input 4 is absent
 * and the output is not clamped (docs/numerics.md). */
enum {
    EDGEQ_OP_LINEAR = 1,     /* x I8 [N,K] (or B1 [N,K] bit-packed) -> I8 [N,M] */
    EDGEQ_OP_CONV2D = 2,     /* x I8 [N,H,W,C], weight rows [Cout, KH*KW*Cin] */
    EDGEQ_OP_DWCONV2D = 3,   /* weight rows [C, KH*KW], depth multiplier 1 */
    EDGEQ_OP_MAXPOOL2D = 4,
    EDGEQ_OP_AVGPOOL2D = 5,  /* TFLite rounding, divides by the valid count */
    EDGEQ_OP_RELU = 6,       /* I8: max(x, qzero) */
    EDGEQ_OP_ADD = 7,        /* I8 + I8 -> I8, TFLite integer add */
    EDGEQ_OP_RESHAPE = 8,    /* flatten: same bytes, new shape */
    EDGEQ_OP_SOFTMAX = 9,    /* I8 or F32 [N,C] -> F32 */
    EDGEQ_OP_QUANTIZE = 10,  /* F32 -> I8: clamp(rint(x * (1/qscale)) + qzero) */
    EDGEQ_OP_DEQUANTIZE = 11,/* I8 -> F32: (q - qzero) * qscale */
    EDGEQ_OP_BINARIZE = 12,  /* I8 -> B1 bits: bit = (q < qzero), i.e. sign, 0 -> +1 */
    /* Transformer encoder ops (docs/transformers.md): fp32 activations [N, T, H] or [N, H]. */
    EDGEQ_OP_EMBED = 13,     /* ids I32 [N,T]; word table (F32 [V,H] or I8 SCALE_ROW weight), position F32
                              * [P,H], token type F32 [TV,H] (row 0) -> F32 [N,T,H] = (word + type) + pos */
    EDGEQ_OP_LAYERNORM = 14, /* x F32, gamma F32 [H], beta F32 [H] -> F32; attr EPS (fp32 bits) */
    EDGEQ_OP_RMSNORM = 15,   /* x F32, gamma F32 [H] -> F32; attr EPS (fp32 bits) */
    EDGEQ_OP_GELU = 16,      /* F32 -> F32, erf form: 0.5 x (1 + erf(x / sqrt 2)) */
    EDGEQ_OP_RELU2 = 17,     /* F32 -> F32, max(x, 0)^2 */
    EDGEQ_OP_ATTENTION = 18, /* q, k, v F32 [N,T,H], mask I32 [N,T] (0 = padding) -> F32 [N,T,H];
                              * bidirectional, attr HEADS; softmax(q k^T / sqrt(H/heads)) v per head */
    EDGEQ_OP_MEANPOOL = 19,  /* x F32 [N,T,H], mask I32 [N,T] -> F32 [N,H]; attr L2NORM = 1: unit length */
    EDGEQ_OP_LINEAR_DYN = 20,/* x F32 [N,(T,)K] -> int8 absmax per row (token) -> weight -> F32 [N,(T,)M];
                              * inputs 0 x, 1 weight, 2 bias F32 [M] (docs/transformers.md); attr ACT_QUANT */
    /* Decoder ops (docs/llm.md): one token per sample, N = tokens of the step, positions I32 [N,1]. */
    EDGEQ_OP_ROPE = 21,      /* x F32 [N,D], positions, table F32 [C, d] (cos of pos * base^(-2i/d) for
                              * i < d/2, then the sines) -> F32 [N,D]: pairs (2i, 2i+1) of each head rotated; attr HEADS */
    EDGEQ_OP_ATTENTION_KV = 22, /* q F32 [N,Hq*d], k, v F32 [N,Hkv*d], positions, k cache, v cache (STATE
                              * F32 or F16 [C,Hkv*d]) -> F32 [N,Hq*d]: writes k, v at each position, then causal
                              * grouped-query attention over cache rows 0..pos; attrs HEADS, KV_HEADS, F16_ROUND */
    EDGEQ_OP_SWIGLU = 23     /* gate, up F32 [N,F] -> F32 [N,F]: silu(gate) * up */
};

/* LINEAR_DYN activation quantization (attr ACT_QUANT). The GGML modes reproduce llama.cpp's CPU
 * backend for parity checks and need block-scaled weights with the same block. */
enum {
    EDGEQ_ACT_ABSMAX_ROW = 0, /* int8 absmax per token (BitNet b1.58) */
    EDGEQ_ACT_GGML_Q8_K = 1,  /* per 256: iscale = -127 / the largest-magnitude value, fp32 d */
    EDGEQ_ACT_GGML_Q8_0 = 2   /* per 32: d = amax / 127 (fp16), q = rint(x / d) */
};

/* attrs[] indices */
enum {
    EDGEQ_ATTR_ACT_MIN = 0,  /* LINEAR/CONV/DWCONV/ADD: output clamp (fused relu) */
    EDGEQ_ATTR_ACT_MAX = 1,
    EDGEQ_ATTR_KH = 2,       /* CONV/DWCONV/POOL */
    EDGEQ_ATTR_KW = 3,
    EDGEQ_ATTR_STRIDE_H = 4,
    EDGEQ_ATTR_STRIDE_W = 5,
    EDGEQ_ATTR_PAD_TOP = 6,
    EDGEQ_ATTR_PAD_LEFT = 7,
    EDGEQ_ATTR_PAD_BOTTOM = 8,
    EDGEQ_ATTR_PAD_RIGHT = 9,
    /* ADD: a' = MBQM((a - za) << LEFT_SHIFT, MULT_A, SHIFT_A), same for b,
     * out = MBQM(a' + b', MULT_OUT, SHIFT_OUT) + zo (TFLite). */
    EDGEQ_ATTR_ADD_LEFT_SHIFT = 2,
    EDGEQ_ATTR_ADD_MULT_A = 3,
    EDGEQ_ATTR_ADD_SHIFT_A = 4,
    EDGEQ_ATTR_ADD_MULT_B = 5,
    EDGEQ_ATTR_ADD_SHIFT_B = 6,
    EDGEQ_ATTR_ADD_MULT_OUT = 7,
    EDGEQ_ATTR_ADD_SHIFT_OUT = 8,
    EDGEQ_ATTR_EPS = 0,      /* LAYERNORM/RMSNORM: epsilon, the int32 holds the fp32 bit pattern */
    EDGEQ_ATTR_HEADS = 0,    /* ATTENTION: number of heads (divides H) */
    EDGEQ_ATTR_L2NORM = 0,   /* MEANPOOL: 1 = divide by the L2 norm (max(norm, 1e-12)) */
    EDGEQ_ATTR_ACT_QUANT = 0,/* LINEAR_DYN: EDGEQ_ACT_* */
    EDGEQ_ATTR_KV_HEADS = 1, /* ATTENTION_KV: key/value heads (divide HEADS) */
    EDGEQ_ATTR_F16_ROUND = 2 /* ATTENTION_KV: 1 = q and the softmax rounded to fp16 (llama.cpp parity) */
};

#endif /* EDGEQ_BLOB_H */
