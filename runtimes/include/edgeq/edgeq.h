/*
 * edgeq.h -- the public C ABI of the edgeq runtime (docs/runtime.md).
 *
 * The blob is used in place (an mmap'd file, flash): it must stay valid and unchanged while the
 * model lives, and start 64-byte aligned. All runtime memory -- model state, tensor table,
 * activations and kernel scratch -- is one arena, planned at load: pass your own (sized by
 * edgeq_arena_size) or NULL to have edgeq_create take it once from edgeq_pal_alloc. Nothing is
 * allocated after edgeq_create returns; nothing is printed, ever.
 */
#ifndef EDGEQ_H
#define EDGEQ_H

#include <stddef.h>
#include <stdint.h>

#define EDGEQ_ABI_VERSION 5

#if defined(__GNUC__)
#define EDGEQ_API __attribute__((visibility("default")))
#else
#define EDGEQ_API
#endif

#ifdef __cplusplus
extern "C" {
#endif

/* Status codes, ranged: 1xx blob format, 2xx graph, 3xx runtime/arena (docs/error-codes.md).
 * Codes are stable and never reused. */
typedef enum {
    EDGEQ_OK = 0,
    /* 100-199: the blob's bytes */
    EDGEQ_E_TRUNCATED = 100,        /* shorter than its header or its declared file_size */
    EDGEQ_E_MAGIC = 101,            /* not "EDGQ" */
    EDGEQ_E_VERSION_NEWER = 102,    /* major version newer than this runtime reads */
    EDGEQ_E_VERSION = 103,          /* major version older than any supported */
    EDGEQ_E_HEADER_CRC = 104,
    EDGEQ_E_SECTION_TABLE = 105,    /* section count, table offset, unknown or duplicate kind */
    EDGEQ_E_SECTION_BOUNDS = 106,   /* a section outside the file or not 64-byte aligned */
    EDGEQ_E_SECTION_OVERLAP = 107,
    EDGEQ_E_SECTION_MISSING = 108,
    EDGEQ_E_SECTION_CRC = 109,
    EDGEQ_E_FILE_CRC = 110,
    EDGEQ_E_SIGNATURE = 111,        /* signed flag and signature section disagree, or not last */
    EDGEQ_E_TENSOR_TABLE = 112,     /* tensors section not a whole number of records */
    EDGEQ_E_STRING = 113,           /* name offset outside STRINGS or not NUL-terminated */
    EDGEQ_E_FORMAT = 114,           /* unknown format id */
    EDGEQ_E_LAYOUT = 115,           /* unknown layout id */
    EDGEQ_E_SCALE_KIND = 116,       /* scale kind not allowed for the format */
    EDGEQ_E_BLOCK = 117,            /* block size not allowed for the format */
    EDGEQ_E_SHAPE = 118,            /* ndim or a dimension out of range */
    EDGEQ_E_PAYLOAD_BOUNDS = 119,   /* payload outside DATA or not 64-byte aligned */
    EDGEQ_E_PAYLOAD_SIZE = 120,     /* payload size differs from what format + shape need */
    EDGEQ_E_REGIONS = 121,          /* scales/zeros regions misplaced inside the payload */
    EDGEQ_E_ZERO_POINT = 122,       /* Q4 zero point outside 0..15 */
    EDGEQ_E_BLOB_ALIGN = 123,       /* the blob's first byte is not 64-byte aligned in memory */
    EDGEQ_E_UNSIGNED = 124,         /* a signature is required and the blob has none */
    EDGEQ_E_SIGNATURE_KEY = 125,    /* signed by another key (key id differs from the public key's) */
    EDGEQ_E_SIGNATURE_INVALID = 126,/* signature does not verify: the blob changed after signing */
    /* 200-299: the graph */
    EDGEQ_E_GRAPH_SECTION = 200,    /* graph section size does not match its op count */
    EDGEQ_E_GRAPH_IO = 201,         /* graph inputs/outputs: count, index, or kind of tensor */
    EDGEQ_E_OP = 202,               /* unknown op id */
    EDGEQ_E_TENSOR_INDEX = 203,     /* an op references a tensor index out of range */
    EDGEQ_E_OPERANDS = 204,         /* wrong number of inputs/outputs, or a missing one */
    EDGEQ_E_USED_BEFORE_PRODUCED = 205,
    EDGEQ_E_PRODUCED_TWICE = 206,   /* an activation written by two ops, or a constant written */
    EDGEQ_E_OP_FORMAT = 207,        /* an op given a tensor format it does not accept */
    EDGEQ_E_OP_SHAPE = 208,         /* shapes of an op's tensors are inconsistent */
    EDGEQ_E_ATTR = 209,             /* attribute out of range (kernel, stride, padding, clamp, shift) */
    EDGEQ_E_PARAM = 210,            /* requantization parameter out of range (shift, scale, zero point) */
    /* 300-399: the runtime */
    EDGEQ_E_ARG = 300,              /* NULL pointer, index out of range, bad option */
    EDGEQ_E_ABI = 301,              /* options from a caller built against another ABI version */
    EDGEQ_E_ARENA_TOO_SMALL = 302,
    EDGEQ_E_ARENA_ALIGN = 303,      /* caller arena not 64-byte aligned */
    EDGEQ_E_NO_MEMORY = 304,        /* edgeq_pal_alloc failed (arena == NULL) */
    EDGEQ_E_TOO_LARGE = 305,        /* sizes overflow, or more tensors than EDGEQ_PLAN_MAX */
    EDGEQ_E_BATCH = 306,            /* batch 0 or larger than options.max_batch */
    EDGEQ_E_TIER = 307,             /* requested kernel tier not available on this CPU/build */
    EDGEQ_E_THREADS = 308,          /* worker threads could not be started */
    EDGEQ_E_NOT_FOUND = 309         /* no such bundled test tensor */
} edgeq_status_t;

typedef struct edgeq_model edgeq_model_t;

/* Kernel tiers; values are only ever added (a new tier is not an ABI break). */
enum {
    EDGEQ_TIER_AUTO = 0,
    EDGEQ_TIER_REF = 1,
    EDGEQ_TIER_AVX2 = 2,
    EDGEQ_TIER_AVXVNNI = 3,
    EDGEQ_TIER_NEON = 4,        /* aarch64 ARMv8.0 Advanced SIMD */
    EDGEQ_TIER_NEON_DOTPROD = 5, /* aarch64 ARMv8.2 SDOT (HWCAP_ASIMDDP) */
    EDGEQ_TIER_NEON_I8MM = 6     /* aarch64 SDOT mat-vec + ARMv8.6 SMMLA GEMM (HWCAP2_I8MM) */
};

typedef struct {
    uint32_t abi_version; /* EDGEQ_ABI_VERSION (edgeq_default_options sets it) */
    uint32_t threads;     /* threads running a layer, the caller's included; 0 or 1 = no workers */
    uint32_t max_batch;   /* samples per edgeq_run; the arena holds this many; 0 = 1 */
    uint32_t tier;        /* EDGEQ_TIER_*: AUTO = best the CPU supports, falling back to ref */
    /* Signed blobs (docs/signing.md). With a public key, a signed blob must verify against it (else
     * EDGEQ_E_SIGNATURE_KEY / _INVALID); with require_signature too, an unsigned blob is refused
     * (EDGEQ_E_UNSIGNED). require_signature without a key is EDGEQ_E_ARG. */
    uint32_t require_signature;
    uint32_t has_public_key;  /* 1: public_key holds a key */
    uint32_t reserved[2];
    uint8_t public_key[32];   /* Ed25519 (RFC 8032) raw public key */
} edgeq_options_t;

#define EDGEQ_MESSAGE_MAX 192

/* Why a create or size query failed: status plus one line naming what is wrong. */
typedef struct {
    edgeq_status_t status;
    char message[EDGEQ_MESSAGE_MAX];
} edgeq_diag_t;

typedef struct {
    const char *name;
    int32_t index;        /* tensor index in the blob */
    uint16_t format;      /* EDGEQ_FMT_* */
    uint8_t ndim;
    uint8_t reserved;
    int32_t shape[4];     /* as stored; shape[0] is the batch axis, replaced by the run's batch */
    float qscale;         /* I8: real = (q - qzero) * qscale */
    int32_t qzero;
    size_t sample_bytes;  /* bytes of one sample (bundled data: of the whole tensor) */
    void *data;           /* activations: arena buffer of max_batch samples; bundled data: in the blob */
} edgeq_tensor_info_t;

typedef struct {
    uint32_t op_index;
    uint16_t op;          /* EDGEQ_OP_* */
    uint16_t reserved;
    const char *op_name;  /* "linear", ... */
    const char *kernel;   /* kernel that ran, e.g. "avx2/t2_row_matvec" */
    uint64_t ticks;       /* edgeq_pal_ticks() spent in the op during the last run */
    uint64_t ns;
} edgeq_layer_profile_t;

typedef struct {
    size_t arena_bytes;      /* the whole arena (state + activations + scratch) */
    size_t state_bytes;      /* model struct, tensor and op tables, thread pool */
    size_t activation_bytes; /* planned activations and per-op scratch, liveness-shared */
} edgeq_memory_t;

EDGEQ_API uint32_t edgeq_abi_version(void);
EDGEQ_API const char *edgeq_strerror(edgeq_status_t status);
EDGEQ_API const char *edgeq_status_name(edgeq_status_t status);
EDGEQ_API void edgeq_default_options(edgeq_options_t *options);

/* Checks the blob's header, section table and CRCs and its Ed25519 signature against public_key (RFC
 * 8032, 32 raw bytes), without parsing tensors or graph: for a firmware's VERIFY step before it
 * accepts a blob. EDGEQ_OK, or EDGEQ_E_UNSIGNED / _SIGNATURE_KEY / _SIGNATURE_INVALID / a 1xx format
 * code, with diag saying why. The blob must start 64-byte aligned. No allocation. */
EDGEQ_API edgeq_status_t edgeq_verify_signature(const void *blob, size_t blob_size, const uint8_t public_key[32],
                                                edgeq_diag_t *diag);

/* Validates the blob completely and plans it: bytes of arena edgeq_create needs. */
EDGEQ_API edgeq_status_t edgeq_arena_size(const void *blob, size_t blob_size, const edgeq_options_t *options,
                                          size_t *bytes, edgeq_diag_t *diag);
/* Validates, plans and starts the model inside `arena` (64-byte aligned, or NULL). options and diag
 * may be NULL. On failure *model is NULL and diag says why. */
EDGEQ_API edgeq_status_t edgeq_create(const void *blob, size_t blob_size, const edgeq_options_t *options,
                                      void *arena, size_t arena_bytes, edgeq_model_t **model, edgeq_diag_t *diag);
/* Stops worker threads and releases an arena taken from edgeq_pal_alloc. */
EDGEQ_API void edgeq_destroy(edgeq_model_t *model);

EDGEQ_API edgeq_status_t edgeq_memory(const edgeq_model_t *model, edgeq_memory_t *memory);
EDGEQ_API const char *edgeq_kernel_tier(const edgeq_model_t *model);
EDGEQ_API uint32_t edgeq_num_inputs(const edgeq_model_t *model);
EDGEQ_API uint32_t edgeq_num_outputs(const edgeq_model_t *model);
/* Graph input/output i; write inputs / read outputs through info->data (batch samples back to back). */
EDGEQ_API edgeq_status_t edgeq_input(const edgeq_model_t *model, uint32_t i, edgeq_tensor_info_t *info);
EDGEQ_API edgeq_status_t edgeq_output(const edgeq_model_t *model, uint32_t i, edgeq_tensor_info_t *info);
/* Runs `batch` samples (1..max_batch) and records per-layer ticks. */
EDGEQ_API edgeq_status_t edgeq_run(edgeq_model_t *model, uint32_t batch);
/* One line about the last failure of edgeq_run or an accessor on this model ("" if none). */
EDGEQ_API const char *edgeq_last_error(const edgeq_model_t *model);

EDGEQ_API uint32_t edgeq_num_layers(const edgeq_model_t *model);
EDGEQ_API edgeq_status_t edgeq_layer_profile(const edgeq_model_t *model, uint32_t layer,
                                             edgeq_layer_profile_t *profile);

/* Bundled test data: the tensor with flag EDGEQ_TENSOR_TEST_INPUT / _OUTPUT / _LABEL and that
 * test_index (graph input/output number). data points into the blob, read-only. */
EDGEQ_API edgeq_status_t edgeq_test_tensor(const edgeq_model_t *model, uint32_t flag, int32_t test_index,
                                           edgeq_tensor_info_t *info);
/* The METADATA section (UTF-8 JSON, not NUL-terminated). */
EDGEQ_API const char *edgeq_metadata(const edgeq_model_t *model, size_t *bytes);

/* Next-token sampling for decoder blobs (docs/llm.md). temperature <= 0 is greedy: the first largest
 * logit. Otherwise the top_k largest logits (0 or more than EDGEQ_SAMPLE_MAX_K: EDGEQ_SAMPLE_MAX_K),
 * softmax at the temperature, the smallest prefix reaching top_p of the mass, and one draw. The draw is
 * a pure function of (seed, position) -- splitmix64 -- so a generation replays exactly, on any device. */
#define EDGEQ_SAMPLE_MAX_K 256
typedef struct {
    float temperature;
    uint32_t top_k;
    float top_p;          /* (0, 1]; 1 = off */
    uint32_t reserved;
    uint64_t seed;
} edgeq_sampler_t;

/* The token to follow `logits` (vocab floats) at sequence position `position`. No allocation. */
EDGEQ_API edgeq_status_t edgeq_sample(const float *logits, uint32_t vocab, const edgeq_sampler_t *sampler,
                                      uint64_t position, int32_t *token);

#ifdef __cplusplus
}
#endif
#endif /* EDGEQ_H */
