/*
 * Transformer encoder ops on fp32 activations (docs/transformers.md): token embedding gather,
 * LayerNorm / RMSNorm, GELU (erf), ReLU^2, bidirectional multi-head attention with a padding mask,
 * masked mean pooling (+ L2 normalisation) and the F32 residual ADD. The linears around them are
 * LINEAR_DYN (matmul.c): int8 absmax per token into the existing weight kernels.
 * Every loop walks in a fixed order with fp32 arithmetic; libm's expf/erff/sqrtf are the only
 * functions whose last bit may differ from numpy's, hence the stated tolerance.
 */
#include <math.h>
#include <string.h>

#include "internal.h"

static float attr_float(int32_t bits) {
    float f;
    memcpy(&f, &bits, sizeof f);
    return f;
}

static size_t last_dim(const edgeq_tensor_t *t) { return (size_t)t->shape[t->ndim - 1]; }

/* y[n,t,:] = (word[id] + type[0]) + pos[t], the position and type tables optional (a decoder has
 * neither); ids outside the vocabulary fail the run. I8 tables: q * row scale, or q * fp16 block scale. */
static edgeq_status_t op_embed(edgeq_model_t *m, const edgeq_op_t *op) {
    const edgeq_tensor_t *x = &m->blob.tensors[op->inputs[0]], *w = &m->blob.tensors[op->inputs[1]];
    const int32_t *ids = (const int32_t *)eq_tensor_data(m, op->inputs[0]);
    const int has_pos = op->n_inputs > 2 && op->inputs[2] >= 0, has_type = op->n_inputs > 3 && op->inputs[3] >= 0;
    const float *pos = has_pos ? (const float *)eq_tensor_data(m, op->inputs[2]) : NULL;
    const float *type = has_type ? (const float *)eq_tensor_data(m, op->inputs[3]) : NULL;
    float *y = (float *)eq_tensor_data(m, op->outputs[0]);
    const size_t T = (size_t)x->shape[1], H = (size_t)w->shape[1], V = (size_t)w->shape[0];
    eq_weights_t wq;
    size_t i, h;
    if (w->format == EDGEQ_FMT_I8) eq_weights(&m->blob, (uint32_t)op->inputs[1], &wq);
    for (i = 0; i < (size_t)m->batch * T; i++) {
        const int32_t id = ids[i];
        float *row = y + i * H;
        if (id < 0 || (size_t)id >= V)
            return eq_fail(&m->error, EDGEQ_E_ARG, "embed: token id %d at position %u outside the vocabulary (0..%u)",
                           (int)id, (unsigned)(i % T), (unsigned)(V - 1));
        if (w->format == EDGEQ_FMT_I8) {
            const int8_t *q = (const int8_t *)(wq.codes + (size_t)id * wq.row_bytes);
            if (wq.acc_kind == EQ_ACC_ROW) {
                const float s = ((const float *)wq.scales)[id];
                for (h = 0; h < H; h++) row[h] = (float)q[h] * s;
            } else {
                const uint16_t *d = (const uint16_t *)wq.scales + (size_t)id * (size_t)wq.n_blocks;
                for (h = 0; h < H; h++) row[h] = (float)q[h] * eq_f16_to_f32(d[h / (size_t)wq.block]);
            }
        } else {
            memcpy(row, (const float *)eq_tensor_data(m, op->inputs[1]) + (size_t)id * H, H * sizeof(float));
        }
        if (type)
            for (h = 0; h < H; h++) row[h] = row[h] + type[h];
        if (pos)
            for (h = 0; h < H; h++) row[h] = row[h] + pos[(i % T) * H + h];
    }
    return EDGEQ_OK;
}

/* LAYERNORM (beta != NULL or not) and RMSNORM (rms = 1) over the last axis, in index order. */
static void op_norm(edgeq_model_t *m, const edgeq_op_t *op, int rms) {
    const edgeq_tensor_t *x = &m->blob.tensors[op->inputs[0]];
    const float *xd = (const float *)eq_tensor_data(m, op->inputs[0]);
    const float *gamma = (const float *)eq_tensor_data(m, op->inputs[1]);
    const float *beta = rms ? NULL : (const float *)eq_tensor_data(m, op->inputs[2]);
    float *y = (float *)eq_tensor_data(m, op->outputs[0]);
    const size_t H = last_dim(x), rows = eq_features(x) / H * m->batch;
    const float eps = attr_float(op->attrs[EDGEQ_ATTR_EPS]);
    size_t r, h;
    for (r = 0; r < rows; r++) {
        const float *v = xd + r * H;
        float *o = y + r * H, mean = 0.0f, var = 0.0f, inv;
        if (!rms) {
            for (h = 0; h < H; h++) mean += v[h];
            mean = mean / (float)H;
        }
        if (rms) { /* as ggml: float squares summed in double, the mean rounded to float */
            double sum = 0.0;
            for (h = 0; h < H; h++) sum += (double)(v[h] * v[h]);
            var = (float)(sum / (double)H);
        } else {
            for (h = 0; h < H; h++) {
                float d = v[h] - mean;
                var += d * d;
            }
            var = var / (float)H;
        }
        inv = 1.0f / sqrtf(var + eps);
        for (h = 0; h < H; h++) o[h] = rms ? (v[h] * inv) * gamma[h] : ((v[h] - mean) * inv) * gamma[h] + beta[h];
    }
}

static void op_pointwise(edgeq_model_t *m, const edgeq_op_t *op) {
    const edgeq_tensor_t *x = &m->blob.tensors[op->inputs[0]];
    const float *xd = (const float *)eq_tensor_data(m, op->inputs[0]);
    float *y = (float *)eq_tensor_data(m, op->outputs[0]);
    const size_t n = eq_features(x) * m->batch;
    size_t i;
    if (op->op == EDGEQ_OP_GELU)
        for (i = 0; i < n; i++) y[i] = 0.5f * xd[i] * (1.0f + erff(xd[i] * 0.70710678118654752f));
    else
        for (i = 0; i < n; i++) y[i] = xd[i] > 0.0f ? xd[i] * xd[i] : 0.0f;
}

/* ADD of two F32 tensors of the same shape. */
void eq_add_f32(edgeq_model_t *m, const edgeq_op_t *op) {
    const float *a = (const float *)eq_tensor_data(m, op->inputs[0]), *b = (const float *)eq_tensor_data(m, op->inputs[1]);
    float *y = (float *)eq_tensor_data(m, op->outputs[0]);
    const size_t n = eq_features(&m->blob.tensors[op->inputs[0]]) * m->batch;
    size_t i;
    for (i = 0; i < n; i++) y[i] = a[i] + b[i];
}

/* Per sample, head and query: scores over the valid keys (scratch: T floats), softmax, weighted V. */
static void op_attention(edgeq_model_t *m, const edgeq_op_t *op, float *scores) {
    const edgeq_tensor_t *qt = &m->blob.tensors[op->inputs[0]];
    const float *q = (const float *)eq_tensor_data(m, op->inputs[0]);
    const float *k = (const float *)eq_tensor_data(m, op->inputs[1]);
    const float *v = (const float *)eq_tensor_data(m, op->inputs[2]);
    const int32_t *mask = (const int32_t *)eq_tensor_data(m, op->inputs[3]);
    float *y = (float *)eq_tensor_data(m, op->outputs[0]);
    const size_t T = (size_t)qt->shape[1], H = (size_t)qt->shape[2], heads = (size_t)op->attrs[EDGEQ_ATTR_HEADS];
    const size_t D = H / heads;
    const float scale = 1.0f / sqrtf((float)D);
    size_t n, h, i, j, d;
    for (n = 0; n < m->batch; n++) {
        const int32_t *valid = mask + n * T;
        const size_t base = n * T * H;
        for (h = 0; h < heads; h++)
            for (i = 0; i < T; i++) {
                const float *qi = q + base + i * H + h * D;
                float *out = y + base + i * H + h * D, max = -INFINITY, sum = 0.0f;
                for (j = 0; j < T; j++) {
                    const float *kj = k + base + j * H + h * D;
                    float s = 0.0f;
                    if (!valid[j]) continue;
                    for (d = 0; d < D; d++) s += qi[d] * kj[d];
                    scores[j] = s * scale;
                    max = scores[j] > max ? scores[j] : max;
                }
                for (d = 0; d < D; d++) out[d] = 0.0f;
                if (max == -INFINITY) continue; /* no valid key: zeros */
                for (j = 0; j < T; j++)
                    if (valid[j]) {
                        scores[j] = expf(scores[j] - max);
                        sum += scores[j];
                    }
                for (j = 0; j < T; j++) {
                    const float *vj = v + base + j * H + h * D;
                    float p;
                    if (!valid[j]) continue;
                    p = scores[j] / sum;
                    for (d = 0; d < D; d++) out[d] += p * vj[d];
                }
            }
    }
}

/* Mean over the valid tokens (sum in token order / count), then optionally x / max(||x||, 1e-12). */
static void op_meanpool(edgeq_model_t *m, const edgeq_op_t *op) {
    const edgeq_tensor_t *xt = &m->blob.tensors[op->inputs[0]];
    const float *x = (const float *)eq_tensor_data(m, op->inputs[0]);
    const int32_t *mask = (const int32_t *)eq_tensor_data(m, op->inputs[1]);
    float *y = (float *)eq_tensor_data(m, op->outputs[0]);
    const size_t T = (size_t)xt->shape[1], H = (size_t)xt->shape[2];
    size_t n, t, h;
    for (n = 0; n < m->batch; n++) {
        float *o = y + n * H, count = 0.0f, norm = 0.0f;
        for (h = 0; h < H; h++) o[h] = 0.0f;
        for (t = 0; t < T; t++)
            if (mask[n * T + t]) {
                count += 1.0f;
                for (h = 0; h < H; h++) o[h] += x[(n * T + t) * H + h];
            }
        if (count == 0.0f) continue;
        for (h = 0; h < H; h++) o[h] = o[h] / count;
        if (!op->attrs[EDGEQ_ATTR_L2NORM]) continue;
        for (h = 0; h < H; h++) norm += o[h] * o[h];
        norm = sqrtf(norm);
        norm = norm > 1e-12f ? norm : 1e-12f;
        for (h = 0; h < H; h++) o[h] = o[h] / norm;
    }
}

size_t eq_encoder_scratch_bytes(const eq_blob_t *b, const edgeq_op_t *op) {
    return op->op == EDGEQ_OP_ATTENTION ? (size_t)b->tensors[op->inputs[0]].shape[1] * sizeof(float) : 0;
}

edgeq_status_t eq_run_encoder_op(edgeq_model_t *m, const edgeq_op_t *op, uint8_t *scratch) {
    switch (op->op) {
    case EDGEQ_OP_EMBED: return op_embed(m, op);
    case EDGEQ_OP_LAYERNORM: op_norm(m, op, 0); break;
    case EDGEQ_OP_RMSNORM: op_norm(m, op, 1); break;
    case EDGEQ_OP_ATTENTION: op_attention(m, op, (float *)(void *)scratch); break;
    case EDGEQ_OP_MEANPOOL: op_meanpool(m, op); break;
    default: op_pointwise(m, op); break;
    }
    return EDGEQ_OK;
}
