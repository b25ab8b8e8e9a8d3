/*
 * Decoder ops (docs/llm.md): RoPE, grouped-query causal attention over a KV cache held in the arena,
 * and SwiGLU -- what a llama-architecture model needs besides the linears, norms and adds. One token
 * is one sample: a step of N tokens (a prompt chunk, or one generated token) is a run of batch N, each
 * token carrying its own position, so prefill and decode are the same graph.
 * fp32 throughout; the KV cache is F32, or F16 as llama.cpp keeps it (then q and the softmax weights
 * are rounded to fp16 too when F16_ROUND is set, as its CPU backend does).
 */
#include <math.h>
#include <string.h>

#include "internal.h"

static float round_f16(float f) { return eq_f16_to_f32(eq_f32_to_f16(f)); }

/* The packer computes the cos/sin table (numpy, float64 rounded to fp32), so no libm is needed here and
 * the rotation is bit-exact with the reference. */
static void op_rope(edgeq_model_t *m, const edgeq_op_t *op) {
    const edgeq_tensor_t *xt = &m->blob.tensors[op->inputs[0]];
    const float *x = (const float *)eq_tensor_data(m, op->inputs[0]);
    const int32_t *pos = (const int32_t *)eq_tensor_data(m, op->inputs[1]);
    const float *table = (const float *)eq_tensor_data(m, op->inputs[2]);
    float *y = (float *)eq_tensor_data(m, op->outputs[0]);
    const size_t D = (size_t)xt->shape[1], heads = (size_t)op->attrs[EDGEQ_ATTR_HEADS], hd = D / heads;
    size_t n, h, i;
    for (n = 0; n < m->batch; n++) {
        const float *cs = table + (size_t)pos[n] * hd, *sn = cs + hd / 2;
        for (h = 0; h < heads; h++)
            for (i = 0; i < hd / 2; i++) {
                const size_t at = n * D + h * hd + 2 * i;
                const float x0 = x[at], x1 = x[at + 1];
                y[at] = x0 * cs[i] - x1 * sn[i];
                y[at + 1] = x0 * sn[i] + x1 * cs[i];
            }
    }
}

static void op_swiglu(edgeq_model_t *m, const edgeq_op_t *op) {
    const float *g = (const float *)eq_tensor_data(m, op->inputs[0]), *u = (const float *)eq_tensor_data(m, op->inputs[1]);
    float *y = (float *)eq_tensor_data(m, op->outputs[0]);
    const size_t n = eq_features(&m->blob.tensors[op->inputs[0]]) * m->batch;
    size_t i;
    for (i = 0; i < n; i++) y[i] = (g[i] / (1.0f + expf(-g[i]))) * u[i];
}

/* Cache row `row` of a [C, W] F32 or F16 state tensor. */
static void cache_store(void *cache, int f16, size_t row, size_t W, const float *src) {
    size_t i;
    if (f16)
        for (i = 0; i < W; i++) ((uint16_t *)cache)[row * W + i] = eq_f32_to_f16(src[i]);
    else
        memcpy((float *)cache + row * W, src, W * sizeof(float));
}

static float cache_at(const void *cache, int f16, size_t i) {
    return f16 ? eq_f16_to_f32(((const uint16_t *)cache)[i]) : ((const float *)cache)[i];
}

/* Every token of the step first writes its k, v at its position; then each attends to cache rows
 * 0..pos (its own included). Scratch: C scores + one head of q. */
static edgeq_status_t op_attention_kv(edgeq_model_t *m, const edgeq_op_t *op, float *scratch) {
    const edgeq_tensor_t *qt = &m->blob.tensors[op->inputs[0]], *kt = &m->blob.tensors[op->inputs[1]];
    const edgeq_tensor_t *ct = &m->blob.tensors[op->inputs[4]];
    const float *q = (const float *)eq_tensor_data(m, op->inputs[0]);
    const float *k = (const float *)eq_tensor_data(m, op->inputs[1]);
    const float *v = (const float *)eq_tensor_data(m, op->inputs[2]);
    const int32_t *pos = (const int32_t *)eq_tensor_data(m, op->inputs[3]);
    void *kc = eq_tensor_data(m, op->inputs[4]), *vc = eq_tensor_data(m, op->inputs[5]);
    float *y = (float *)eq_tensor_data(m, op->outputs[0]);
    const size_t C = (size_t)ct->shape[0], QW = (size_t)qt->shape[1], KW = (size_t)kt->shape[1];
    const size_t heads = (size_t)op->attrs[EDGEQ_ATTR_HEADS], kv_heads = (size_t)op->attrs[EDGEQ_ATTR_KV_HEADS];
    const size_t hd = QW / heads, group = heads / kv_heads;
    const int f16 = ct->format == EDGEQ_FMT_F16, round = op->attrs[EDGEQ_ATTR_F16_ROUND] != 0;
    const float scale = 1.0f / sqrtf((float)hd);
    float *scores = scratch, *qh = scratch + C;
    size_t n, h, j, d;
    for (n = 0; n < m->batch; n++)
        if (pos[n] < 0 || (size_t)pos[n] >= C)
            return eq_fail(&m->error, EDGEQ_E_ARG, "attention_kv: position %d outside the context of %u tokens",
                           (int)pos[n], (unsigned)C);
    for (n = 0; n < m->batch; n++) {
        cache_store(kc, f16, (size_t)pos[n], KW, k + n * KW);
        cache_store(vc, f16, (size_t)pos[n], KW, v + n * KW);
    }
    for (n = 0; n < m->batch; n++) {
        const size_t last = (size_t)pos[n];
        for (h = 0; h < heads; h++) {
            const size_t kv_off = (h / group) * hd;
            float *out = y + n * QW + h * hd, max = -INFINITY, inv;
            double sum = 0.0;
            for (d = 0; d < hd; d++) qh[d] = round ? round_f16(q[n * QW + h * hd + d]) : q[n * QW + h * hd + d];
            for (j = 0; j <= last; j++) {
                float s = 0.0f;
                for (d = 0; d < hd; d++) s += qh[d] * cache_at(kc, f16, j * KW + kv_off + d);
                scores[j] = s * scale;
                max = scores[j] > max ? scores[j] : max;
            }
            for (j = 0; j <= last; j++) { /* as ggml's softmax: the sum in double, then one reciprocal */
                scores[j] = expf(scores[j] - max);
                sum += (double)scores[j];
            }
            inv = (float)(1.0 / sum);
            for (d = 0; d < hd; d++) out[d] = 0.0f;
            for (j = 0; j <= last; j++) {
                const float p = round ? round_f16(scores[j] * inv) : scores[j] * inv;
                for (d = 0; d < hd; d++) out[d] += p * cache_at(vc, f16, j * KW + kv_off + d);
            }
        }
    }
    return EDGEQ_OK;
}

size_t eq_decoder_scratch_bytes(const eq_blob_t *b, const edgeq_op_t *op) {
    if (op->op != EDGEQ_OP_ATTENTION_KV) return 0;
    return ((size_t)b->tensors[op->inputs[4]].shape[0] +
            (size_t)b->tensors[op->inputs[0]].shape[1] / (size_t)op->attrs[EDGEQ_ATTR_HEADS]) * sizeof(float);
}

edgeq_status_t eq_run_decoder_op(edgeq_model_t *m, const edgeq_op_t *op, uint8_t *scratch) {
    switch (op->op) {
    case EDGEQ_OP_ROPE: {
        const int32_t *pos = (const int32_t *)eq_tensor_data(m, op->inputs[1]);
        const uint32_t C = (uint32_t)m->blob.tensors[op->inputs[2]].shape[0];
        uint32_t n;
        for (n = 0; n < m->batch; n++)
            if (pos[n] < 0 || (uint32_t)pos[n] >= C)
                return eq_fail(&m->error, EDGEQ_E_ARG, "rope: position %d outside the context of %u tokens", (int)pos[n],
                               (unsigned)C);
        op_rope(m, op);
        return EDGEQ_OK;
    }
    case EDGEQ_OP_SWIGLU: op_swiglu(m, op); return EDGEQ_OK;
    default: return op_attention_kv(m, op, (float *)(void *)scratch);
    }
}
