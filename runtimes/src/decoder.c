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

/* One head's slice of a cache row as fp32 (F16 caches are widened into `tmp`). */
static const float *cache_row(const void *cache, int f16, size_t at, size_t hd, float *tmp) {
    size_t d;
    if (!f16) return (const float *)cache + at;
    for (d = 0; d < hd; d++) tmp[d] = eq_f16_to_f32(((const uint16_t *)cache)[at + d]);
    return tmp;
}

/* q . k in eight interleaved partial sums (a fixed order the compiler can keep in one vector), then
 * reduced pairwise: fast without -ffast-math, and the same on every target. */
static float dot8(const float *a, const float *b, size_t n) {
    float acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    size_t i, l;
    for (i = 0; i + 8 <= n; i += 8)
        for (l = 0; l < 8; l++) acc[l] += a[i + l] * b[i + l];
    for (l = 0; i < n; i++, l++) acc[l] += a[i] * b[i];
    return ((acc[0] + acc[4]) + (acc[2] + acc[6])) + ((acc[1] + acc[5]) + (acc[3] + acc[7]));
}

typedef struct {
    const edgeq_model_t *m;
    const float *q;
    const int32_t *pos;
    const void *kc, *vc;
    float *y, *scratch;
    size_t C, QW, KW, heads, hd, group;
    int f16, round;
} attention_task_t;

/* Heads [part share) for every token of the step: scores over cache rows 0..pos, softmax (sum in
 * double and one reciprocal, as ggml), weighted sum of the values. Each head owns a scratch slice. */
static void attention_part(void *ctx, int part, int parts) {
    const attention_task_t *t = (const attention_task_t *)ctx;
    const size_t per = (t->heads + (size_t)parts - 1) / (size_t)parts, h0 = (size_t)part * per;
    const size_t h1 = h0 + per < t->heads ? h0 + per : t->heads;
    const float scale = 1.0f / sqrtf((float)t->hd);
    size_t n, h, j, d;
    for (h = h0; h < h1; h++) {
        float *scores = t->scratch + h * (t->C + 2 * t->hd), *qh = scores + t->C, *row = qh + t->hd;
        const size_t kv_off = (h / t->group) * t->hd;
        for (n = 0; n < t->m->batch; n++) {
            const size_t last = (size_t)t->pos[n];
            const float *qn = t->q + n * t->QW + h * t->hd;
            float *out = t->y + n * t->QW + h * t->hd, max = -INFINITY, inv;
            double sum = 0.0;
            for (d = 0; d < t->hd; d++) qh[d] = t->round ? round_f16(qn[d]) : qn[d];
            for (j = 0; j <= last; j++) {
                scores[j] = dot8(qh, cache_row(t->kc, t->f16, j * t->KW + kv_off, t->hd, row), t->hd) * scale;
                max = scores[j] > max ? scores[j] : max;
            }
            for (j = 0; j <= last; j++) {
                scores[j] = expf(scores[j] - max);
                sum += (double)scores[j];
            }
            inv = (float)(1.0 / sum);
            for (d = 0; d < t->hd; d++) out[d] = 0.0f;
            for (j = 0; j <= last; j++) {
                const float p = t->round ? round_f16(scores[j] * inv) : scores[j] * inv;
                const float *v = cache_row(t->vc, t->f16, j * t->KW + kv_off, t->hd, row);
                for (d = 0; d < t->hd; d++) out[d] += p * v[d];
            }
        }
    }
}

/* Every token of the step first writes its k, v at its position; then each attends to cache rows
 * 0..pos (its own included), heads split across the thread pool. */
static edgeq_status_t op_attention_kv(edgeq_model_t *m, const edgeq_op_t *op, float *scratch) {
    const edgeq_tensor_t *qt = &m->blob.tensors[op->inputs[0]], *kt = &m->blob.tensors[op->inputs[1]];
    const edgeq_tensor_t *ct = &m->blob.tensors[op->inputs[4]];
    const float *k = (const float *)eq_tensor_data(m, op->inputs[1]);
    const float *v = (const float *)eq_tensor_data(m, op->inputs[2]);
    attention_task_t t;
    size_t n;
    t.m = m;
    t.q = (const float *)eq_tensor_data(m, op->inputs[0]);
    t.pos = (const int32_t *)eq_tensor_data(m, op->inputs[3]);
    t.kc = eq_tensor_data(m, op->inputs[4]);
    t.vc = eq_tensor_data(m, op->inputs[5]);
    t.y = (float *)eq_tensor_data(m, op->outputs[0]);
    t.scratch = scratch;
    t.C = (size_t)ct->shape[0];
    t.QW = (size_t)qt->shape[1];
    t.KW = (size_t)kt->shape[1];
    t.heads = (size_t)op->attrs[EDGEQ_ATTR_HEADS];
    t.hd = t.QW / t.heads;
    t.group = t.heads / (size_t)op->attrs[EDGEQ_ATTR_KV_HEADS];
    t.f16 = ct->format == EDGEQ_FMT_F16;
    t.round = op->attrs[EDGEQ_ATTR_F16_ROUND] != 0;
    for (n = 0; n < m->batch; n++)
        if (t.pos[n] < 0 || (size_t)t.pos[n] >= t.C)
            return eq_fail(&m->error, EDGEQ_E_ARG, "attention_kv: position %d outside the context of %u tokens",
                           (int)t.pos[n], (unsigned)t.C);
    for (n = 0; n < m->batch; n++) {
        cache_store((void *)(uintptr_t)t.kc, t.f16, (size_t)t.pos[n], t.KW, k + n * t.KW);
        cache_store((void *)(uintptr_t)t.vc, t.f16, (size_t)t.pos[n], t.KW, v + n * t.KW);
    }
    eq_pool_run(m->pool, attention_part, &t);
    return EDGEQ_OK;
}

size_t eq_decoder_scratch_bytes(const eq_blob_t *b, const edgeq_op_t *op) {
    size_t heads, hd;
    if (op->op != EDGEQ_OP_ATTENTION_KV) return 0;
    heads = (size_t)op->attrs[EDGEQ_ATTR_HEADS];
    hd = (size_t)b->tensors[op->inputs[0]].shape[1] / heads;
    return heads * ((size_t)b->tensors[op->inputs[4]].shape[0] + 2 * hd) * sizeof(float); /* a slice per head */
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
