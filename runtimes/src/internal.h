/* Internal declarations shared by the runtime's translation units. Not installed. */
#ifndef EDGEQ_INTERNAL_H
#define EDGEQ_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "../kernels/kernels.h"
#include "edgeq/edgeq.h"
#include "edgeq/edgeq_blob.h"

/* Planner capacity (activations + per-op scratch): its work list lives on the stack. */
#ifndef EDGEQ_PLAN_MAX
#define EDGEQ_PLAN_MAX 1024
#endif
#define EQ_NONE ((size_t)-1)
#define EQ_MAX_SECTIONS 16
/* No single buffer is larger: keeps size arithmetic far from overflow (256 MiB on 32-bit MCUs). */
#if SIZE_MAX > 0xFFFFFFFFu
#define EQ_MAX_BYTES ((size_t)1 << 40)
#else
#define EQ_MAX_BYTES ((size_t)1 << 28)
#endif

/* ---- a validated blob ------------------------------------------------- */
typedef struct {
    const uint8_t *base;
    size_t size;
    const edgeq_tensor_t *tensors;
    uint32_t n_tensors;
    const edgeq_graph_t *graph;
    const edgeq_op_t *ops;
    uint32_t n_ops;
    const char *strings;
    size_t strings_size;
    const char *metadata;
    size_t metadata_size;
} eq_blob_t;

/* ---- diagnostics (no printf: a tiny formatter, %s %d %u %U(unsigned long long) %x) ---- */
edgeq_status_t eq_fail(edgeq_diag_t *diag, edgeq_status_t status, const char *fmt, ...);

uint32_t eq_crc32(uint32_t crc, const uint8_t *p, size_t n);
uint32_t eq_crc32_zeros(uint32_t crc, size_t n);

/* blob_check.c: header, sections, checksums, tensor records. */
/* public_key NULL: a signature is not checked; require_signature: an unsigned blob is refused. */
edgeq_status_t eq_check_blob(const void *blob, size_t size, const uint8_t *public_key, int require_signature,
                             eq_blob_t *out, edgeq_diag_t *diag);

/* signature.c: the SIGNATURE section (sig may be NULL) against public_key (may be NULL). */
edgeq_status_t eq_check_signature(const uint8_t *p, size_t size, const edgeq_section_t *sig,
                                  const uint8_t *public_key, int require, edgeq_diag_t *diag);
const char *eq_tensor_name(const eq_blob_t *b, uint32_t t);
int eq_is_weight_format(int format);
int eq_kernel_format(int format); /* EDGEQ_FMT_* -> EQ_F_*, -1 if not a weight format */
/* Bytes of one sample of an activation (shape[0] is the batch axis); 0 if not an activation format. */
size_t eq_sample_bytes(const edgeq_tensor_t *t);
size_t eq_features(const edgeq_tensor_t *t); /* product of shape[1..] */
/* Rows a weight payload stores: ROWS4 pads to whole groups of 4. */
uint64_t eq_stored_rows(const edgeq_tensor_t *t);
/* Kernel view of a weight tensor (pointers into the blob). */
void eq_weights(const eq_blob_t *b, uint32_t t, eq_weights_t *w);
/* Constant payload pointer (blob) of tensor t. */
const void *eq_const_data(const eq_blob_t *b, uint32_t t);

/* graph_check.c: indices, order, operands, formats, shapes, attributes, parameters. */
edgeq_status_t eq_check_graph(const eq_blob_t *b, edgeq_diag_t *diag);
const char *eq_op_name(int op);

/* plan.c: liveness-based greedy-by-size placement, offsets 64-aligned. */
typedef struct {
    size_t bytes;            /* activation + scratch area */
} eq_plan_t;
edgeq_status_t eq_plan(const eq_blob_t *b, uint32_t max_batch, const eq_kernel_tier_t *tier, size_t *tensor_offset,
                       size_t *op_scratch, eq_plan_t *plan, edgeq_diag_t *diag);

/* threads.c: a fixed pool started at create; run() splits [0, count) into per-thread parts. */
typedef void (*eq_task_fn)(void *ctx, int part, int parts);
typedef struct eq_pool eq_pool_t;
size_t eq_pool_bytes(int threads);
edgeq_status_t eq_pool_start(eq_pool_t *pool, int threads);
void eq_pool_run(eq_pool_t *pool, eq_task_fn fn, void *ctx);
int eq_pool_threads(const eq_pool_t *pool);
void eq_pool_stop(eq_pool_t *pool);

/* dispatch.c */
edgeq_status_t eq_select_tier(uint32_t requested, const eq_kernel_tier_t **tier, edgeq_diag_t *diag);
/* The kernels that run weights w: the tier's for w's layout, or ref's where the tier has none (row-major
 * only: every tier with rows4 kernels has all its format's scale kinds). */
const eq_dot_kernel_t *eq_dot_kernel(const eq_kernel_tier_t *tier, const eq_weights_t *w, int n);
/* The tier's lookup-table kernels for a format, or NULL. */
const eq_lut_kernels_t *eq_lut_kernels(const eq_kernel_tier_t *tier, int fmt);

/* ---- the model, laid out at the start of its arena -------------------- */
struct edgeq_model {
    eq_blob_t blob;
    edgeq_options_t options;
    const eq_kernel_tier_t *tier;
    size_t *tensor_offset;   /* [n_tensors] activation offset in act, EQ_NONE if none */
    size_t *op_scratch;      /* [n_ops] scratch offset in act, EQ_NONE if none */
    uint64_t *op_ticks;      /* [n_ops] */
    const char **op_kernel;  /* [n_ops] */
    const void **op_packed;  /* [n_ops] weights repacked at load for a lookup-table kernel, or NULL */
    eq_pool_t *pool;
    uint8_t *act;            /* activations and scratch */
    size_t *weight_offset;   /* [n_tensors] offset of a repacked weight in `weights`, EQ_NONE: used in place */
    uint8_t *weights;        /* weights repacked at load (repack.c) */
    size_t act_bytes, state_bytes, arena_bytes;
    void *allocation;        /* from edgeq_pal_alloc, or NULL */
    uint32_t batch;          /* of the run in progress */
    edgeq_diag_t error;
};

/* ops.c / matmul.c */
size_t eq_op_scratch_bytes(const eq_blob_t *b, const edgeq_op_t *op, uint32_t max_batch,
                           const eq_kernel_tier_t *tier);
edgeq_status_t eq_run_op(edgeq_model_t *m, uint32_t k);
edgeq_status_t eq_run_matmul(edgeq_model_t *m, const edgeq_op_t *op, uint8_t *scratch, const char **kernel);
size_t eq_matmul_scratch_bytes(const eq_blob_t *b, const edgeq_op_t *op, uint32_t max_batch,
                               const eq_kernel_tier_t *tier);
/* Weights a lookup-table kernel wants repacked at load (the op's EDGEQ_OPF_LUT hint, the tier has the kernel):
 * their bytes (0: none), and the repack (0: the weights are not ternary, the op keeps the dot kernel). */
size_t eq_matmul_packed_bytes(const eq_blob_t *b, const edgeq_op_t *op, const eq_kernel_tier_t *tier);
int eq_matmul_pack(const edgeq_model_t *m, const edgeq_op_t *op, void *out);
void *eq_tensor_data(const edgeq_model_t *m, int32_t t);
int32_t eq_mbqm(int32_t x, int32_t multiplier, int32_t shift);
/* Ops run by matmul.c: the weighted ones. */
static inline int eq_is_matmul(int op) { return op <= EDGEQ_OP_DWCONV2D || op == EDGEQ_OP_LINEAR_DYN; }

/* repack.c: weights the tier cannot read as stored (ROWS4 without rows4 kernels), copied row-major into
 * the arena at create. */
int eq_needs_repack(const eq_blob_t *b, const eq_kernel_tier_t *tier, uint32_t t);
size_t eq_repack_plan(const eq_blob_t *b, const eq_kernel_tier_t *tier, size_t *weight_offset); /* bytes */
void eq_repack(const eq_blob_t *b, const size_t *weight_offset, uint8_t *base);
void eq_model_weights(const edgeq_model_t *m, uint32_t t, eq_weights_t *w); /* eq_weights, repacked copy if any */
const eq_format_kernels_t *eq_format_kernels(const eq_kernel_tier_t *tier, const eq_weights_t *w);

/* encoder.c: transformer encoder ops (EMBED .. MEANPOOL) and the F32 ADD. */
size_t eq_encoder_scratch_bytes(const eq_blob_t *b, const edgeq_op_t *op);
edgeq_status_t eq_run_encoder_op(edgeq_model_t *m, const edgeq_op_t *op, uint8_t *scratch);
void eq_add_f32(edgeq_model_t *m, const edgeq_op_t *op);

/* decoder.c: ROPE, ATTENTION_KV (KV cache in STATE tensors), SWIGLU. */
size_t eq_decoder_scratch_bytes(const eq_blob_t *b, const edgeq_op_t *op);
edgeq_status_t eq_run_decoder_op(edgeq_model_t *m, const edgeq_op_t *op, uint8_t *scratch);

static inline size_t eq_align64(size_t n) { return (n + 63) & ~(size_t)63; }

#endif /* EDGEQ_INTERNAL_H */
