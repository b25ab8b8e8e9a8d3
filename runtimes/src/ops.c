/* The ops without weights (docs/numerics.md "Other ops") and the per-op dispatch. */
#include <math.h>
#include <string.h>

#include "internal.h"

void *eq_tensor_data(const edgeq_model_t *m, int32_t t) {
    if (m->blob.tensors[t].flags & EDGEQ_TENSOR_CONST) return (void *)(uintptr_t)eq_const_data(&m->blob, (uint32_t)t);
    return m->act + m->tensor_offset[t];
}

size_t eq_op_scratch_bytes(const eq_blob_t *b, const edgeq_op_t *op, uint32_t max_batch,
                           const eq_kernel_tier_t *tier) {
    if (eq_is_matmul(op->op)) return eq_matmul_scratch_bytes(b, op, max_batch, tier);
    if (op->op >= EDGEQ_OP_ROPE) return eq_decoder_scratch_bytes(b, op);
    return eq_encoder_scratch_bytes(b, op);
}

typedef struct {
    const edgeq_tensor_t *x, *y;
    const void *xd;
    void *yd;
    size_t n; /* elements of the whole batch */
} unary_t;

static unary_t unary(const edgeq_model_t *m, const edgeq_op_t *op) {
    unary_t u;
    u.x = &m->blob.tensors[op->inputs[0]];
    u.y = &m->blob.tensors[op->outputs[0]];
    u.xd = eq_tensor_data(m, op->inputs[0]);
    u.yd = eq_tensor_data(m, op->outputs[0]);
    u.n = eq_features(u.x) * m->batch;
    return u;
}

static void op_relu(const unary_t *u) {
    const int8_t *x = (const int8_t *)u->xd, z = (int8_t)u->x->qzero;
    int8_t *y = (int8_t *)u->yd;
    size_t i;
    for (i = 0; i < u->n; i++) y[i] = x[i] > z ? x[i] : z;
}

/* q = clamp(rint(x * fp32(1/s)) + z): the sum in fp32, as the reference; NaN gives 0. */
static void op_quantize(const unary_t *u) {
    const float *x = (const float *)u->xd, inv = 1.0f / u->y->qscale, z = (float)u->y->qzero;
    int8_t *y = (int8_t *)u->yd;
    size_t i;
    for (i = 0; i < u->n; i++) {
        float q = rintf(x[i] * inv) + z;
        y[i] = q != q ? 0 : q <= -128.0f ? -128 : q >= 127.0f ? 127 : (int8_t)q;
    }
}

static void op_dequantize(const unary_t *u) {
    const int8_t *x = (const int8_t *)u->xd;
    float *y = (float *)u->yd;
    size_t i;
    for (i = 0; i < u->n; i++) y[i] = (float)((int32_t)x[i] - u->x->qzero) * u->x->qscale;
}

/* Softmax over the last axis of x (I8 dequantized first, or F32). */
static void op_softmax(const unary_t *u) {
    const size_t c = (size_t)u->x->shape[u->x->ndim - 1], rows = c ? u->n / c : 0;
    float *y = (float *)u->yd;
    size_t r, i;
    for (r = 0; r < rows; r++) {
        float *row = y + r * c, max, sum = 0.0f;
        for (i = 0; i < c; i++)
            row[i] = u->x->format == EDGEQ_FMT_I8
                         ? (float)((int32_t)((const int8_t *)u->xd)[r * c + i] - u->x->qzero) * u->x->qscale
                         : ((const float *)u->xd)[r * c + i];
        max = row[0];
        for (i = 1; i < c; i++) max = row[i] > max ? row[i] : max;
        for (i = 0; i < c; i++) {
            row[i] = expf(row[i] - max);
            sum += row[i];
        }
        for (i = 0; i < c; i++) row[i] = row[i] / sum;
    }
}

/* bit = 1 (-1) where q < z; each sample's bits padded with 0 to whole 64-bit words. */
static void op_binarize(const edgeq_model_t *m, const unary_t *u) {
    const size_t f = eq_features(u->x), out_bytes = eq_sample_bytes(u->y);
    uint32_t s;
    size_t i;
    for (s = 0; s < m->batch; s++) {
        const int8_t *x = (const int8_t *)u->xd + s * f;
        uint8_t *y = (uint8_t *)u->yd + s * out_bytes;
        memset(y, 0, out_bytes);
        for (i = 0; i < f; i++)
            if (x[i] < u->x->qzero) y[i >> 3] |= (uint8_t)(1u << (i & 7));
    }
}

static void op_add(const edgeq_model_t *m, const edgeq_op_t *op) {
    const unary_t u = unary(m, op);
    const int8_t *a = (const int8_t *)u.xd, *b = (const int8_t *)eq_tensor_data(m, op->inputs[1]);
    const int32_t za = u.x->qzero, zb = m->blob.tensors[op->inputs[1]].qzero, *at = op->attrs;
    const int32_t left = 1 << at[EDGEQ_ATTR_ADD_LEFT_SHIFT];
    int8_t *y = (int8_t *)u.yd;
    size_t i;
    for (i = 0; i < u.n; i++) {
        int32_t sa = eq_mbqm((a[i] - za) * left, at[EDGEQ_ATTR_ADD_MULT_A], at[EDGEQ_ATTR_ADD_SHIFT_A]);
        int32_t sb = eq_mbqm((b[i] - zb) * left, at[EDGEQ_ATTR_ADD_MULT_B], at[EDGEQ_ATTR_ADD_SHIFT_B]);
        int32_t s = (int32_t)((uint32_t)sa + (uint32_t)sb); /* int32 arithmetic wraps, as the reference's */
        int32_t o = (int32_t)((uint32_t)eq_mbqm(s, at[EDGEQ_ATTR_ADD_MULT_OUT], at[EDGEQ_ATTR_ADD_SHIFT_OUT]) +
                              (uint32_t)u.y->qzero);
        y[i] = (int8_t)(o < at[EDGEQ_ATTR_ACT_MIN] ? at[EDGEQ_ATTR_ACT_MIN] : o > at[EDGEQ_ATTR_ACT_MAX] ? at[EDGEQ_ATTR_ACT_MAX] : o);
    }
}

/* MAXPOOL (padding never wins) and AVGPOOL (TFLite rounding over the valid taps). */
static void op_pool(const edgeq_model_t *m, const edgeq_op_t *op) {
    const unary_t u = unary(m, op);
    const int32_t *at = op->attrs, H = u.x->shape[1], W = u.x->shape[2], C = u.x->shape[3];
    const int32_t OH = u.y->shape[1], OW = u.y->shape[2];
    const int8_t *x = (const int8_t *)u.xd;
    int8_t *y = (int8_t *)u.yd;
    uint32_t n;
    int32_t oy, ox, c, ky, kx;
    for (n = 0; n < m->batch; n++)
        for (oy = 0; oy < OH; oy++)
            for (ox = 0; ox < OW; ox++)
                for (c = 0; c < C; c++) {
                    int32_t best = -128, sum = 0, count = 0;
                    for (ky = 0; ky < at[EDGEQ_ATTR_KH]; ky++)
                        for (kx = 0; kx < at[EDGEQ_ATTR_KW]; kx++) {
                            int32_t iy = oy * at[EDGEQ_ATTR_STRIDE_H] - at[EDGEQ_ATTR_PAD_TOP] + ky;
                            int32_t ix = ox * at[EDGEQ_ATTR_STRIDE_W] - at[EDGEQ_ATTR_PAD_LEFT] + kx;
                            int32_t v;
                            if (iy < 0 || iy >= H || ix < 0 || ix >= W) continue;
                            v = x[(((size_t)n * (size_t)H + (size_t)iy) * (size_t)W + (size_t)ix) * (size_t)C + (size_t)c];
                            best = v > best ? v : best;
                            sum += v;
                            count++;
                        }
                    if (op->op == EDGEQ_OP_AVGPOOL2D)
                        best = count == 0 ? 0 : sum > 0 ? (sum + count / 2) / count : (sum - count / 2) / count;
                    y[(((size_t)n * (size_t)OH + (size_t)oy) * (size_t)OW + (size_t)ox) * (size_t)C + (size_t)c] = (int8_t)best;
                }
}

edgeq_status_t eq_run_op(edgeq_model_t *m, uint32_t k) {
    const edgeq_op_t *op = &m->blob.ops[k];
    const char *kernel = "ref";
    edgeq_status_t st = EDGEQ_OK;
    unary_t u;
    if (eq_is_matmul(op->op)) {
        st = eq_run_matmul(m, op, m->act + m->op_scratch[k], &kernel);
        m->op_kernel[k] = kernel;
        return st;
    }
    if (op->op >= EDGEQ_OP_ROPE) {
        m->op_kernel[k] = kernel;
        return eq_run_decoder_op(m, op, m->op_scratch[k] == EQ_NONE ? NULL : m->act + m->op_scratch[k]);
    }
    if (op->op >= EDGEQ_OP_EMBED) {
        m->op_kernel[k] = kernel;
        return eq_run_encoder_op(m, op, m->op_scratch[k] == EQ_NONE ? NULL : m->act + m->op_scratch[k]);
    }
    u = unary(m, op);
    switch (op->op) {
    case EDGEQ_OP_MAXPOOL2D:
    case EDGEQ_OP_AVGPOOL2D: op_pool(m, op); break;
    case EDGEQ_OP_RELU: op_relu(&u); break;
    case EDGEQ_OP_ADD:
        if (u.x->format == EDGEQ_FMT_F32) eq_add_f32(m, op);
        else op_add(m, op);
        break;
    case EDGEQ_OP_RESHAPE: memmove(u.yd, u.xd, eq_sample_bytes(u.x) * m->batch); break;
    case EDGEQ_OP_SOFTMAX: op_softmax(&u); break;
    case EDGEQ_OP_QUANTIZE: op_quantize(&u); break;
    case EDGEQ_OP_DEQUANTIZE: op_dequantize(&u); break;
    default: op_binarize(m, &u); break;
    }
    m->op_kernel[k] = kernel;
    return st;
}
