/*
 * Load-time weight repacking. A weight whose stored layout the selected tier cannot read (a ROWS4 blob on
 * a tier without rows4 kernels: x86, the ARMv8.0 NEON tier, the i8mm tier, ref, Cortex-M; or a weight that
 * a row-major reader decodes: the reference GGML-block path, a lookup-table kernel's pack) is copied once, at
 * edgeq_create, into the arena in canonical row-major form: codes, block scales and zero points (row
 * scales are layout-free and stay in the blob). The blob itself is never written (it may be mmap'd or in
 * flash). Weights the tier reads as stored are used in place: a row-major blob on a dotprod core runs the
 * row-major dotprod kernels rather than doubling its weight memory (pack for the target to get rows4).
 */
#include <string.h>

#include "internal.h"

/* Weights another reader decodes row by row, whatever the tier's dot kernels read: a LINEAR_DYN in a GGML
 * activation-block mode (the reference decoder, llama.cpp parity) and an op with the lookup-table hint on
 * a tier that has lookup-table kernels for the format (their pack() reads row-major codes). */
static int read_row_major(const eq_blob_t *b, const eq_kernel_tier_t *tier, uint32_t t) {
    const int fmt = eq_kernel_format(b->tensors[t].format);
    uint32_t k;
    for (k = 0; k < b->n_ops; k++) {
        const edgeq_op_t *op = &b->ops[k];
        if (!eq_is_matmul(op->op) || op->inputs[1] != (int32_t)t) continue;
        if (op->op == EDGEQ_OP_LINEAR_DYN && op->attrs[EDGEQ_ATTR_ACT_QUANT] != EDGEQ_ACT_ABSMAX_ROW) return 1;
        if ((op->flags & EDGEQ_OPF_LUT) && fmt >= 0 && eq_lut_kernels(tier, fmt)) return 1;
    }
    return 0;
}

int eq_needs_repack(const eq_blob_t *b, const eq_kernel_tier_t *tier, uint32_t t) {
    const edgeq_tensor_t *r = &b->tensors[t];
    return r->layout == EDGEQ_LAYOUT_ROWS4 &&
           (!eq_rows4_kernels(tier, eq_kernel_format(r->format)) || read_row_major(b, tier, t));
}

typedef struct {
    size_t scales_at, zeros_at, bytes; /* inside the copy; zeros_at 0 = none */
} copy_layout_t;

/* The row-major copy of weight t: codes, then (block scales only) fp16 scales, then zero points. */
static copy_layout_t copy_layout(const eq_blob_t *b, uint32_t t) {
    const edgeq_tensor_t *r = &b->tensors[t];
    eq_weights_t w;
    copy_layout_t c;
    eq_weights(b, t, &w);
    c.scales_at = c.zeros_at = 0;
    c.bytes = (size_t)w.rows * w.row_bytes;
    if (r->scale_kind == EDGEQ_SCALE_BLOCK) {
        c.scales_at = eq_align64(c.bytes);
        c.bytes = c.scales_at + (size_t)w.rows * (size_t)w.n_blocks * 2;
    }
    if (w.zeros) {
        c.zeros_at = eq_align64(c.bytes);
        c.bytes = c.zeros_at + (size_t)w.rows * (size_t)w.n_blocks;
    }
    return c;
}

size_t eq_repack_plan(const eq_blob_t *b, const eq_kernel_tier_t *tier, size_t *weight_offset) {
    size_t bytes = 0;
    uint32_t t;
    for (t = 0; t < b->n_tensors; t++) {
        if (weight_offset) weight_offset[t] = EQ_NONE;
        if (!eq_needs_repack(b, tier, t)) continue;
        if (weight_offset) weight_offset[t] = bytes;
        bytes = eq_align64(bytes + copy_layout(b, t).bytes);
    }
    return bytes;
}

/* ROWS4 element e (size `item`) of row r at position k of a [groups][n][4] array -> dst[r][k]. */
static void unshuffle(const uint8_t *src, uint8_t *dst, int rows, size_t n, size_t item) {
    int r;
    size_t k;
    for (r = 0; r < rows; r++) {
        const uint8_t *group = src + (size_t)(r / EDGEQ_ROWS4_GROUP) * EDGEQ_ROWS4_GROUP * n * item;
        for (k = 0; k < n; k++)
            memcpy(dst + ((size_t)r * n + k) * item, group + (k * EDGEQ_ROWS4_GROUP + (size_t)(r % EDGEQ_ROWS4_GROUP)) * item,
                   item);
    }
}

void eq_repack(const eq_blob_t *b, const size_t *weight_offset, uint8_t *base) {
    uint32_t t;
    for (t = 0; t < b->n_tensors; t++) {
        eq_weights_t w;
        copy_layout_t c;
        uint8_t *dst;
        if (weight_offset[t] == EQ_NONE) continue;
        eq_weights(b, t, &w);
        c = copy_layout(b, t);
        dst = base + weight_offset[t];
        unshuffle(w.codes, dst, w.rows, w.row_bytes / 4, 4); /* codes: 4-byte words */
        if (c.scales_at) unshuffle((const uint8_t *)w.scales, dst + c.scales_at, w.rows, (size_t)w.n_blocks, 2);
        if (c.zeros_at) unshuffle(w.zeros, dst + c.zeros_at, w.rows, (size_t)w.n_blocks, 1);
    }
}

void eq_model_weights(const edgeq_model_t *m, uint32_t t, eq_weights_t *w) {
    copy_layout_t c;
    const uint8_t *copy;
    eq_weights(&m->blob, t, w);
    if (m->weight_offset[t] == EQ_NONE) return;
    c = copy_layout(&m->blob, t);
    copy = m->weights + m->weight_offset[t];
    w->codes = copy;
    if (c.scales_at) w->scales = copy + c.scales_at;
    if (c.zeros_at) w->zeros = copy + c.zeros_at;
    w->layout = EDGEQ_LAYOUT_ROW_MAJOR;
}

const eq_format_kernels_t *eq_format_kernels(const eq_kernel_tier_t *tier, const eq_weights_t *w) {
    return w->layout == EDGEQ_LAYOUT_ROWS4 ? eq_rows4_kernels(tier, w->format) : &tier->fmt[w->format];
}
