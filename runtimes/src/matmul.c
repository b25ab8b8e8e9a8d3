/*
 * LINEAR, CONV2D and DWCONV2D: bring the activations into kernel rows (zero padded to the weight's
 * padded columns; im2col for convolutions, one tile of up to EQ_MAX_N output pixels at a time),
 * run the dot kernel over weight rows split across threads, then the integer (SCALE_ROW) or
 * block-ordered fp32 (SCALE_BLOCK) requantization of docs/numerics.md. All buffers are this op's
 * scratch, planned in the arena.
 */
#include <math.h>
#include <string.h>

#include "../kernels/ref/ref.h"
#include "internal.h"

/* TFLite MultiplyByQuantizedMultiplier; the left-shifted value saturates to int32 (docs/numerics.md). */
int32_t eq_mbqm(int32_t x, int32_t multiplier, int32_t shift) {
    const int left = shift > 0 ? shift : 0, right = shift > 0 ? 0 : -shift;
    int64_t v = (int64_t)x * ((int64_t)1 << left), ab;
    int32_t high, mask, remainder, threshold;
    if (v > INT32_MAX) v = INT32_MAX;
    if (v < INT32_MIN) v = INT32_MIN;
    if (v == INT32_MIN && multiplier == INT32_MIN) {
        high = INT32_MAX;
    } else { /* SaturatingRoundingDoublingHighMul: C division truncates toward zero, as gemmlowp's */
        ab = v * (int64_t)multiplier;
        high = (int32_t)((ab + (ab >= 0 ? (1ll << 30) : 1 - (1ll << 30))) / (1ll << 31));
    }
    mask = (int32_t)((1ll << right) - 1); /* RoundingDivideByPOT: half away from zero */
    remainder = high & mask;
    threshold = (mask >> 1) + (high < 0);
    return (int32_t)(high >> right) + (remainder > threshold);
}

static int32_t wrap_add(int32_t a, int32_t b) { return (int32_t)((uint32_t)a + (uint32_t)b); }

typedef struct {
    int acc_kind, f32_out;
    const int32_t *bias_i, *mult, *shift;
    const float *bias_f, *multf;
    int32_t zp, act_min, act_max;
    const float *tok_scale, *w_scale; /* LINEAR_DYN: per activation row / per weight row (SCALE_ROW) */
} epilogue_t;

static int8_t clamp8(int64_t v, int32_t lo, int32_t hi) { return (int8_t)(v < lo ? lo : v > hi ? hi : v); }

static void epilogue(const epilogue_t *e, const void *acc, size_t acc_stride, int n, int r0, int r1, void *y,
                     size_t y_stride) {
    int i, r;
    for (i = 0; i < n; i++) {
        int8_t *yq = (int8_t *)y + (size_t)i * y_stride;
        float *yf = (float *)y + (size_t)i * y_stride;
        for (r = r0; r < r1; r++) {
            size_t at = (size_t)i * acc_stride + (size_t)r;
            if (e->tok_scale) { /* LINEAR_DYN: fp32 out, bias added last */
                if (e->acc_kind == EQ_ACC_ROW)
                    yf[r] = (float)((const int32_t *)acc)[at] * (e->tok_scale[i] * e->w_scale[r]) + e->bias_f[r];
                else
                    yf[r] = ((const float *)acc)[at] * e->tok_scale[i] + e->bias_f[r];
            } else if (e->acc_kind == EQ_ACC_ROW) {
                int32_t a = wrap_add(((const int32_t *)acc)[at], e->bias_i[r]);
                if (e->f32_out)
                    yf[r] = (float)a * e->multf[r];
                else /* the zero point is added in int32, wrapping like the reference's int32 arrays */
                    yq[r] = clamp8(wrap_add(eq_mbqm(a, e->mult[r], e->shift[r]), e->zp), e->act_min, e->act_max);
            } else {
                float t = (((const float *)acc)[at] + e->bias_f[r]) * e->multf[r];
                if (e->f32_out) {
                    yf[r] = t;
                } else if (t != t) {
                    yq[r] = (int8_t)e->act_min; /* NaN: the reference's int cast gives INT64_MIN */
                } else {
                    t = rintf(t);
                    t = t > 1073741824.0f ? 1073741824.0f : t < -1073741824.0f ? -1073741824.0f : t;
                    yq[r] = clamp8((int64_t)t + e->zp, e->act_min, e->act_max);
                }
            }
        }
    }
}

typedef struct {
    const eq_weights_t *w;
    const eq_dot_kernel_t *dot;
    eq_xnor_fn xnor;
    const uint32_t *bits;
    eq_acts_t acts;
    void *acc;
    size_t acc_stride;
    const epilogue_t *e;
    void *y;
    size_t y_stride;
    int r0, r1;
} rows_task_t;

/* One thread's share of the weight rows (multiples of 8, the widest SIMD row group). */
static void rows_part(void *ctx, int part, int parts) {
    rows_task_t *t = (rows_task_t *)ctx;
    int total = t->r1 - t->r0, chunk = ((total + parts - 1) / parts + 7) & ~7;
    int r0 = t->r0 + part * chunk, r1 = r0 + chunk < t->r1 ? r0 + chunk : t->r1;
    if (r0 >= r1) return;
    if (t->xnor)
        t->xnor(t->w, t->bits, (size_t)t->w->padded_cols / 32, t->acts.n, r0, r1, (int32_t *)t->acc, t->acc_stride);
    else
        t->dot->fn(t->w, &t->acts, r0, r1, t->acc, t->acc_stride);
    if (t->e) epilogue(t->e, t->acc, t->acc_stride, t->acts.n, r0, r1, t->y, t->y_stride);
}

typedef struct {
    size_t pad, prep, acc, tok; /* offsets inside the op's scratch */
    size_t bytes;
} layout_t;

/* Scratch of a tile of n activation rows: padded rows, tier prep, accumulators (+ LINEAR_DYN's per-row
 * activation scales). */
static layout_t scratch_layout(const eq_weights_t *w, int n, int need_pad, int xnor, int dyn,
                               const eq_kernel_tier_t *tier, const eq_lut_kernels_t *lut) {
    const eq_format_kernels_t *k = eq_format_kernels(tier, w);
    size_t prep = !xnor && k->prep_bytes ? k->prep_bytes(w, n) : 0, lut_prep = lut ? lut->prep_bytes(w, 1) : 0;
    layout_t l;
    l.pad = 0;
    l.prep = eq_align64(need_pad ? (size_t)n * (size_t)w->padded_cols : 0);
    l.acc = eq_align64(l.prep + (prep > lut_prep ? prep : lut_prep));
    l.tok = eq_align64(l.acc + (size_t)n * (size_t)w->rows * 4);
    l.bytes = l.tok + (dyn ? (size_t)n * (size_t)w->n_blocks * sizeof(float) : 0); /* per row, or per row and block */
    return l;
}

typedef struct {
    int32_t xi, yi; /* tensor indices */
    const edgeq_tensor_t *x, *y;
    eq_weights_t w;
    epilogue_t e;
    int tile;       /* activation rows per kernel call */
    int need_pad;   /* activations are copied into padded kernel rows */
    int xnor;
    int dyn;        /* LINEAR_DYN: F32 rows quantized per row (int8 absmax) */
    uint32_t row_count; /* LINEAR_DYN: activation rows (tokens) per sample */
    const eq_lut_kernels_t *lut; /* lookup-table mat-vec the op asks for and the tier has (w.packed at run) */
} plan_t;

static int32_t out_pixels(const edgeq_tensor_t *y) { return y->shape[1] * y->shape[2]; }

static void make_plan(const eq_blob_t *b, const edgeq_op_t *op, uint32_t batch, const eq_kernel_tier_t *tier,
                      plan_t *p) {
    p->xi = op->inputs[0];
    p->yi = op->outputs[0];
    p->x = &b->tensors[p->xi];
    p->y = &b->tensors[p->yi];
    eq_weights(b, (uint32_t)op->inputs[1], &p->w);
    p->xnor = p->x->format == EDGEQ_FMT_B1 && p->w.format == EQ_F_B1;
    p->need_pad = op->op != EDGEQ_OP_LINEAR || p->x->format == EDGEQ_FMT_B1 || p->w.cols != p->w.padded_cols;
    p->dyn = op->op == EDGEQ_OP_LINEAR_DYN;
    p->need_pad |= p->dyn;
    p->row_count = p->dyn ? (uint32_t)(eq_features(p->x) / (size_t)p->w.cols) : 1;
    if (p->dyn) {
        uint64_t rows = (uint64_t)batch * p->row_count;
        p->tile = rows < EQ_MAX_N ? (int)rows : EQ_MAX_N;
    } else if (op->op == EDGEQ_OP_LINEAR) {
        p->tile = batch < EQ_MAX_N ? (int)batch : EQ_MAX_N;
    } else {
        int64_t pixels = (int64_t)batch * out_pixels(p->y);
        p->tile = pixels < EQ_MAX_N ? (int)pixels : EQ_MAX_N;
    }
    p->e.acc_kind = p->w.acc_kind;
    p->e.f32_out = p->y->format == EDGEQ_FMT_F32;
    p->e.bias_i = (const int32_t *)eq_const_data(b, (uint32_t)op->inputs[2]);
    p->e.bias_f = (const float *)eq_const_data(b, (uint32_t)op->inputs[2]);
    p->e.mult = op->n_inputs > 3 ? (const int32_t *)eq_const_data(b, (uint32_t)op->inputs[3]) : NULL;
    p->e.multf = op->n_inputs > 3 ? (const float *)eq_const_data(b, (uint32_t)op->inputs[3]) : NULL;
    p->e.shift = op->n_inputs > 4 && op->inputs[4] >= 0 ? (const int32_t *)eq_const_data(b, (uint32_t)op->inputs[4]) : NULL;
    p->e.zp = p->y->qzero;
    p->e.act_min = op->attrs[EDGEQ_ATTR_ACT_MIN];
    p->e.act_max = op->attrs[EDGEQ_ATTR_ACT_MAX];
    p->e.tok_scale = NULL;
    p->e.w_scale = (const float *)p->w.scales;
    p->lut = (op->flags & EDGEQ_OPF_LUT) && !p->xnor ? eq_lut_kernels(tier, p->w.format) : NULL;
    if (p->dyn) {
        p->e.f32_out = 1;
        p->e.mult = p->e.shift = NULL;
        p->e.multf = NULL;
    }
}

size_t eq_matmul_scratch_bytes(const eq_blob_t *b, const edgeq_op_t *op, uint32_t max_batch,
                               const eq_kernel_tier_t *tier) {
    plan_t p;
    make_plan(b, op, max_batch, tier, &p);
    if (eq_needs_repack(b, tier, (uint32_t)op->inputs[1])) p.w.layout = EDGEQ_LAYOUT_ROW_MAJOR; /* as it will run */
    return scratch_layout(&p.w, p.tile, p.need_pad, p.xnor, p.dyn, tier, p.lut).bytes;
}

size_t eq_matmul_packed_bytes(const eq_blob_t *b, const edgeq_op_t *op, const eq_kernel_tier_t *tier) {
    plan_t p;
    if (!eq_is_matmul(op->op) || !(op->flags & EDGEQ_OPF_LUT)) return 0;
    make_plan(b, op, 1, tier, &p);
    return p.lut ? p.lut->pack_bytes(&p.w) : 0;
}

/* The lookup-table kernel's weights of op, packed from the weights as the model holds them (repack.c has
 * made a rows4 weight row-major first: eq_needs_repack). */
int eq_matmul_pack(const edgeq_model_t *m, const edgeq_op_t *op, void *out) {
    plan_t p;
    make_plan(&m->blob, op, 1, m->tier, &p);
    eq_model_weights(m, (uint32_t)op->inputs[1], &p.w);
    return p.lut ? p.lut->pack(&p.w, out) : 0;
}

/* Runs the kernel for rows [r0, r1) of a tile of n prepared activation rows, then requantizes into y
 * (e = NULL: accumulate only). */
static const char *run_tile(edgeq_model_t *m, const plan_t *p, const layout_t *l, uint8_t *scratch, const void *x,
                            size_t x_stride, int n, int r0, int r1, size_t acc_stride, const epilogue_t *e, void *y,
                            size_t y_stride, int threaded) {
    const eq_format_kernels_t *k = eq_format_kernels(m->tier, &p->w);
    rows_task_t t;
    memset(&t, 0, sizeof t);
    t.w = &p->w;
    t.acts.n = n;
    t.acc = scratch + l->acc;
    t.acc_stride = acc_stride;
    t.e = e;
    t.y = y;
    t.y_stride = y_stride;
    t.r0 = r0;
    t.r1 = r1;
    if (p->xnor) {
        t.xnor = k->xnor ? k->xnor : eq_ref_tier.fmt[EQ_F_B1].xnor;
        t.bits = (const uint32_t *)x;
    } else if (n == 1 && p->lut && p->w.packed) { /* lookup tables of this activation row, then lookups */
        t.dot = &p->lut->matvec[p->w.acc_kind];
        t.acts.x = (const int8_t *)x;
        t.acts.stride = x_stride;
        p->lut->prep(&p->w, t.acts.x, x_stride, 1, scratch + l->prep);
        t.acts.prep = scratch + l->prep;
    } else {
        t.dot = eq_dot_kernel(m->tier, &p->w, n);
        t.acts.x = (const int8_t *)x;
        t.acts.stride = x_stride;
        if (k->prep && t.dot == &k->dot[p->w.acc_kind][n > 1]) {
            k->prep(&p->w, t.acts.x, x_stride, n, scratch + l->prep);
            t.acts.prep = scratch + l->prep;
        }
    }
    if (threaded)
        eq_pool_run(m->pool, rows_part, &t);
    else
        rows_part(&t, 0, 1);
    return p->xnor ? (k->xnor ? k->xnor_name : eq_ref_tier.fmt[EQ_F_B1].xnor_name) : t.dot->name;
}

/* Activation rows -> kernel rows: int8 copied with zero padding, B1 bits expanded to +-1. */
static void pad_rows(const plan_t *p, const uint8_t *x, int n, int8_t *out) {
    const int K = p->w.cols, Kp = p->w.padded_cols;
    const size_t in_stride = eq_sample_bytes(p->x);
    int i, k;
    for (i = 0; i < n; i++) {
        const uint8_t *src = x + (size_t)i * in_stride;
        int8_t *dst = out + (size_t)i * (size_t)Kp;
        if (p->x->format == EDGEQ_FMT_B1)
            for (k = 0; k < K; k++) dst[k] = (int8_t)(((src[k >> 3] >> (k & 7)) & 1) ? -1 : 1);
        else
            memcpy(dst, src, (size_t)K);
        memset(dst + K, 0, (size_t)(Kp - K));
    }
}

static const char *run_linear(edgeq_model_t *m, const plan_t *p, const layout_t *l, uint8_t *scratch) {
    const uint8_t *x = (const uint8_t *)eq_tensor_data(m, p->xi);
    uint8_t *y = (uint8_t *)eq_tensor_data(m, p->yi);
    const size_t x_bytes = eq_sample_bytes(p->x), y_bytes = eq_sample_bytes(p->y);
    const char *name = "";
    uint32_t i;
    for (i = 0; i < m->batch; i += (uint32_t)p->tile) {
        int n = m->batch - i < (uint32_t)p->tile ? (int)(m->batch - i) : p->tile;
        const void *rows = x + i * x_bytes;
        size_t stride = x_bytes;
        if (p->need_pad && !p->xnor) {
            pad_rows(p, x + i * x_bytes, n, (int8_t *)scratch + l->pad);
            rows = scratch + l->pad;
            stride = (size_t)p->w.padded_cols;
        }
        name = run_tile(m, p, l, scratch, rows, stride, n, 0, p->w.rows, (size_t)p->w.rows, &p->e, y + i * y_bytes,
                        (size_t)p->w.rows, 1);
    }
    return name;
}

/* F32 rows -> int8 kernel rows, one absmax scale per row (BitNet; edgeq/quant/activations.py):
 * s = max(amax, 1e-5) / 127, q = clamp(rint(x * fp32(1/s)), -127, 127); NaN gives 0. */
static void quantize_rows(const float *x, int K, int Kp, int n, int8_t *out, float *scales) {
    int i, k;
    for (i = 0; i < n; i++) {
        const float *v = x + (size_t)i * (size_t)K;
        int8_t *q = out + (size_t)i * (size_t)Kp;
        float amax = 1e-5f, inv;
        for (k = 0; k < K; k++) amax = fabsf(v[k]) > amax ? fabsf(v[k]) : amax;
        scales[i] = amax / 127.0f;
        inv = 1.0f / scales[i];
        for (k = 0; k < K; k++) {
            float r = rintf(v[k] * inv);
            q[k] = (int8_t)(r != r ? 0 : r < -127.0f ? -127 : r > 127.0f ? 127 : r);
        }
        memset(q + K, 0, (size_t)(Kp - K));
    }
}

/* GGML activation blocks (llama.cpp parity, docs/llm.md): int8 codes + one scale per block, like
 * ggml's quantize_row_q8_K (256: iscale = -127 / the first largest-magnitude value, fp32 d = 1 / iscale)
 * and quantize_row_q8_0 (32: d = amax / 127, q = rint(x / d), fp16 d). */
static void quantize_blocks(const float *x, int K, int Kp, int block, int n, int q8_k, int8_t *out, float *d) {
    const int nb = K / block;
    int i, b, k;
    for (i = 0; i < n; i++) {
        memset(out + (size_t)i * (size_t)Kp + K, 0, (size_t)(Kp - K));
        for (b = 0; b < nb; b++) {
            const float *v = x + (size_t)i * (size_t)K + (size_t)b * (size_t)block;
            int8_t *q = out + (size_t)i * (size_t)Kp + (size_t)b * (size_t)block;
            float amax = 0.0f, max = 0.0f, mul, scale;
            for (k = 0; k < block; k++)
                if (fabsf(v[k]) > amax) {
                    amax = fabsf(v[k]);
                    max = v[k];
                }
            if (q8_k) {
                mul = max != 0.0f ? -127.0f / max : 0.0f;
                scale = max != 0.0f ? 1.0f / mul : 0.0f;
            } else {
                scale = amax / 127.0f;
                mul = scale > 0.0f ? 1.0f / scale : 0.0f;
                scale = eq_f16_to_f32(eq_f32_to_f16(scale));
            }
            for (k = 0; k < block; k++) {
                float r = rintf(v[k] * mul);
                q[k] = (int8_t)(r != r ? 0 : r < -128.0f ? -128 : r > 127.0f ? 127 : r);
            }
            d[(size_t)i * (size_t)nb + (size_t)b] = scale;
        }
    }
}

typedef struct {
    const plan_t *p;
    const int8_t *x;     /* [n][padded_cols] */
    const float *d;      /* [n][n_blocks] activation block scales */
    int n;
    float *y;
} blocks_task_t;

/* y[i][r] = sum over blocks of isum * (weight d * activation d), in block order, + bias. Weight blocks
 * are decoded by the reference tier: this mode is for agreement with llama.cpp, not for speed. */
static void blocks_part(void *ctx, int part, int parts) {
    const blocks_task_t *t = (const blocks_task_t *)ctx;
    const eq_weights_t *w = &t->p->w;
    const int M = w->rows, chunk = (M + parts - 1) / parts, r0 = part * chunk, r1 = r0 + chunk < M ? r0 + chunk : M;
    int8_t vals[EQ_MAX_BLOCK];
    float acc[EQ_MAX_N];
    int r, b, i, k;
    for (r = r0; r < r1; r++) {
        for (i = 0; i < t->n; i++) acc[i] = 0.0f;
        for (b = 0; b < w->n_blocks; b++) {
            const float dw = eq_f16_to_f32(((const uint16_t *)w->scales)[(size_t)r * (size_t)w->n_blocks + (size_t)b]);
            eq_ref_decode_block(w, r, b, vals);
            for (i = 0; i < t->n; i++) {
                const int8_t *x = t->x + (size_t)i * (size_t)w->padded_cols + (size_t)b * (size_t)w->block;
                int32_t isum = 0;
                for (k = 0; k < w->block; k++) isum += (int32_t)vals[k] * (int32_t)x[k];
                acc[i] = acc[i] + (float)isum * (dw * t->d[(size_t)i * (size_t)w->n_blocks + (size_t)b]);
            }
        }
        for (i = 0; i < t->n; i++) t->y[(size_t)i * (size_t)M + (size_t)r] = acc[i] + t->p->e.bias_f[r];
    }
}

static const char *run_linear_dyn(edgeq_model_t *m, const edgeq_op_t *op, const plan_t *p, const layout_t *l,
                                  uint8_t *scratch) {
    const float *x = (const float *)eq_tensor_data(m, p->xi);
    float *y = (float *)eq_tensor_data(m, p->yi);
    const uint64_t rows = (uint64_t)m->batch * p->row_count;
    const int K = p->w.cols, M = p->w.rows, mode = op->attrs[EDGEQ_ATTR_ACT_QUANT];
    int8_t *xq = (int8_t *)scratch + l->pad;
    float *scales = (float *)(void *)(scratch + l->tok);
    epilogue_t e = p->e;
    const char *name = "";
    uint64_t i;
    e.tok_scale = scales;
    for (i = 0; i < rows; i += (uint64_t)p->tile) {
        int n = rows - i < (uint64_t)p->tile ? (int)(rows - i) : p->tile;
        if (mode == EDGEQ_ACT_ABSMAX_ROW) {
            quantize_rows(x + i * (uint64_t)K, K, p->w.padded_cols, n, xq, scales);
            name = run_tile(m, p, l, scratch, xq, (size_t)p->w.padded_cols, n, 0, M, (size_t)M, &e, y + i * (uint64_t)M,
                            (size_t)M, 1);
        } else {
            blocks_task_t t;
            quantize_blocks(x + i * (uint64_t)K, K, p->w.padded_cols, p->w.block, n, mode == EDGEQ_ACT_GGML_Q8_K, xq,
                            scales);
            t.p = p;
            t.x = xq;
            t.d = scales;
            t.n = n;
            t.y = y + i * (uint64_t)M;
            eq_pool_run(m->pool, blocks_part, &t);
            name = mode == EDGEQ_ACT_GGML_Q8_K ? "ref/ggml_q8_k_blocks" : "ref/ggml_q8_0_blocks";
        }
    }
    return name;
}

typedef struct {
    const int8_t *x;
    int32_t H, W, C, OH, OW, KH, KW, SH, SW, PT, PL;
    int8_t pad; /* the input zero point: the real value 0 */
} window_t;

static window_t window(const edgeq_model_t *m, const edgeq_op_t *op, const plan_t *p) {
    window_t v;
    v.x = (const int8_t *)eq_tensor_data(m, op->inputs[0]);
    v.H = p->x->shape[1];
    v.W = p->x->shape[2];
    v.C = p->x->shape[3];
    v.OH = p->y->shape[1];
    v.OW = p->y->shape[2];
    v.KH = op->attrs[EDGEQ_ATTR_KH];
    v.KW = op->attrs[EDGEQ_ATTR_KW];
    v.SH = op->attrs[EDGEQ_ATTR_STRIDE_H];
    v.SW = op->attrs[EDGEQ_ATTR_STRIDE_W];
    v.PT = op->attrs[EDGEQ_ATTR_PAD_TOP];
    v.PL = op->attrs[EDGEQ_ATTR_PAD_LEFT];
    v.pad = (int8_t)p->x->qzero;
    return v;
}

/* Patch of output pixel `pixel` (batch-major), taps in (kh, kw, c) order, channels [c0, c0 + nc). */
static void patch(const window_t *v, int64_t pixel, int c0, int nc, int8_t *out) {
    const int64_t n = pixel / ((int64_t)v->OH * v->OW), rest = pixel % ((int64_t)v->OH * v->OW);
    const int32_t oy = (int32_t)(rest / v->OW), ox = (int32_t)(rest % v->OW);
    int32_t ky, kx;
    for (ky = 0; ky < v->KH; ky++)
        for (kx = 0; kx < v->KW; kx++, out += nc) {
            int32_t iy = oy * v->SH - v->PT + ky, ix = ox * v->SW - v->PL + kx;
            if (iy < 0 || iy >= v->H || ix < 0 || ix >= v->W)
                memset(out, (unsigned char)v->pad, (size_t)nc);
            else
                memcpy(out, v->x + (((size_t)n * (size_t)v->H + (size_t)iy) * (size_t)v->W + (size_t)ix) * (size_t)v->C + (size_t)c0,
                       (size_t)nc);
        }
}

static const char *run_conv(edgeq_model_t *m, const edgeq_op_t *op, const plan_t *p, const layout_t *l,
                            uint8_t *scratch) {
    const window_t v = window(m, op, p);
    const int dw = op->op == EDGEQ_OP_DWCONV2D, Kp = p->w.padded_cols, K = p->w.cols, M = p->w.rows;
    const int64_t pixels = (int64_t)m->batch * v.OH * v.OW;
    const size_t y_item = p->y->format == EDGEQ_FMT_F32 ? 4 : 1;
    int8_t *rows = (int8_t *)scratch + l->pad;
    uint8_t *y = (uint8_t *)eq_tensor_data(m, op->outputs[0]);
    const char *name = "";
    int64_t p0;
    int i, c;
    for (p0 = 0; p0 < pixels; p0 += p->tile) {
        int n = pixels - p0 < p->tile ? (int)(pixels - p0) : p->tile;
        void *y_tile = y + (size_t)p0 * (size_t)M * y_item;
        if (!dw) {
            for (i = 0; i < n; i++) {
                patch(&v, p0 + i, 0, v.C, rows + (size_t)i * (size_t)Kp);
                memset(rows + (size_t)i * (size_t)Kp + K, 0, (size_t)(Kp - K));
            }
            name = run_tile(m, p, l, scratch, rows, (size_t)Kp, n, 0, M, (size_t)M, &p->e, y_tile, (size_t)M, 1);
            continue;
        }
        for (c = 0; c < v.C; c++) { /* depthwise: channel c is weight row c over its own taps */
            for (i = 0; i < n; i++) {
                patch(&v, p0 + i, c, 1, rows + (size_t)i * (size_t)Kp);
                memset(rows + (size_t)i * (size_t)Kp + K, 0, (size_t)(Kp - K));
            }
            name = run_tile(m, p, l, scratch, rows, (size_t)Kp, n, c, c + 1, (size_t)M, NULL, NULL, 0, 0);
        }
        epilogue(&p->e, scratch + l->acc, (size_t)M, n, 0, M, y_tile, (size_t)M);
    }
    return name;
}

edgeq_status_t eq_run_matmul(edgeq_model_t *m, const edgeq_op_t *op, uint8_t *scratch, const char **kernel) {
    plan_t p;
    layout_t l;
    make_plan(&m->blob, op, m->options.max_batch, m->tier, &p);
    eq_model_weights(m, (uint32_t)op->inputs[1], &p.w);
    p.w.packed = m->op_packed[op - m->blob.ops];
    l = scratch_layout(&p.w, p.tile, p.need_pad, p.xnor, p.dyn, m->tier, p.lut);
    *kernel = p.dyn ? run_linear_dyn(m, op, &p, &l, scratch)
            : op->op == EDGEQ_OP_LINEAR ? run_linear(m, &p, &l, scratch) : run_conv(m, op, &p, &l, scratch);
    return EDGEQ_OK;
}
