/*
 * Helium (M-profile Vector Extension) tier for the Cortex-M55: T2, T158, Q4 and I8 dot kernels on VMLADAVA, a
 * 16-lane int8 multiply with the sum accumulated into a scalar; B1 weights as lane predicates of VADDVA.
 *
 * T2 needs no reordering: the 16 code bytes at 32h + m hold, in bit pair l, the codes of the 16
 * consecutive elements 128h + 32l + m ..; one VLDRB and four shift/mask steps give four code vectors.
 * Q4 de-interleaves the activations with VLD2 (even elements meet the low nibbles, odd the high).
 * As in the DSP tier, codes are multiplied unsigned and each block is corrected once with its activation
 * sum (prepared once per call), so every block sum is exact and results are bit-identical to ref.
 */
#include <string.h>

#include "../kernels.h"
#include "edgeq/edgeq_blob.h"

#if defined(__ARM_FEATURE_MVE)
#include <arm_mve.h>

static size_t mve_prep_bytes(const eq_weights_t *w, int n) { return (size_t)n * (size_t)w->n_blocks * sizeof(int32_t); }

/* Per activation row: the sum of each block's activations. */
static void mve_prep(const eq_weights_t *w, const int8_t *x, size_t stride, int n, void *prep) {
    int i, b, k;
    for (i = 0; i < n; i++)
        for (b = 0; b < w->n_blocks; b++) {
            const int8_t *xb = x + (size_t)i * stride + (size_t)b * (size_t)w->block;
            int32_t s = 0;
            for (k = 0; k < w->block; k += 16) s = vaddvaq_s8(s, vld1q_s8(xb + k));
            ((int32_t *)prep)[(size_t)i * (size_t)w->n_blocks + (size_t)b] = s;
        }
}

static int32_t t2_block(const uint8_t *q, const int8_t *x) {
    const uint8x16_t three = vdupq_n_u8(3);
    int32_t s = 0;
    int h, m;
    for (h = 0; h < 2; h++)
        for (m = 0; m < 32; m += 16) {
            uint8x16_t v = vld1q_u8(q + 32 * h + m);
            const int8_t *xe = x + 128 * h + m;
            s = vmladavaq_s8(s, vreinterpretq_s8_u8(vandq_u8(v, three)), vld1q_s8(xe));
            s = vmladavaq_s8(s, vreinterpretq_s8_u8(vandq_u8(vshrq_n_u8(v, 2), three)), vld1q_s8(xe + 32));
            s = vmladavaq_s8(s, vreinterpretq_s8_u8(vandq_u8(vshrq_n_u8(v, 4), three)), vld1q_s8(xe + 64));
            s = vmladavaq_s8(s, vreinterpretq_s8_u8(vshrq_n_u8(v, 6)), vld1q_s8(xe + 96));
        }
    return s;
}

/* T158: trit n of code byte b is ((b * 3^n mod 256) * 3) >> 8: VMUL (low byte) then VMULH (high byte). Groups:
 * bytes 0..31 x 5 trits -> elements 32n + m; 32..47 x 5 -> 160 + 16n + m; 48..51 x 4 -> 240 + 4n + m. */
static int32_t t158_block(const uint8_t *q, const int8_t *x) {
    static const uint8_t pow3[5] = {1, 3, 9, 27, 81};
    static const uint8_t tail_pow3[16] = {1, 1, 1, 1, 3, 3, 3, 3, 9, 9, 9, 9, 27, 27, 27, 27};
    const uint8x16_t three = vdupq_n_u8(3);
    uint32_t tail;
    int32_t s = 0;
    int n;
    for (n = 0; n < 5; n++) {
        s = vmladavaq_s8(s, vreinterpretq_s8_u8(vmulhq_u8(vmulq_n_u8(vld1q_u8(q), pow3[n]), three)),
                         vld1q_s8(x + 32 * n));
        s = vmladavaq_s8(s, vreinterpretq_s8_u8(vmulhq_u8(vmulq_n_u8(vld1q_u8(q + 16), pow3[n]), three)),
                         vld1q_s8(x + 32 * n + 16));
        s = vmladavaq_s8(s, vreinterpretq_s8_u8(vmulhq_u8(vmulq_n_u8(vld1q_u8(q + 32), pow3[n]), three)),
                         vld1q_s8(x + 160 + 16 * n));
    }
    memcpy(&tail, q + 48, sizeof tail); /* the 4 last bytes, repeated in each group of 4 lanes */
    s = vmladavaq_s8(s, vreinterpretq_s8_u8(vmulhq_u8(vmulq_u8(vreinterpretq_u8_u32(vdupq_n_u32(tail)),
                                                               vld1q_u8(tail_pow3)), three)), vld1q_s8(x + 240));
    return s;
}

/* B1 (bit set = -1): the block's 64 bits are four 16-lane predicates; sum(w x) = sum(x) - 2 * sum(x where set). */
static int32_t b1_set_sum(const uint8_t *q, const int8_t *x) {
    int32_t s = 0;
    int k;
    for (k = 0; k < 4; k++) {
        uint16_t bits;
        memcpy(&bits, q + 2 * k, sizeof bits);
        s = vaddvaq_p_s8(s, vld1q_s8(x + 16 * k), (mve_pred16_t)bits);
    }
    return s;
}

static int32_t q4_block(const uint8_t *q, const int8_t *x, int block) {
    const uint8x16_t low = vdupq_n_u8(15);
    int32_t s = 0;
    int j;
    for (j = 0; j < block / 2; j += 16) { /* 16 bytes = elements 2j .. 2j+31 */
        uint8x16_t v = vld1q_u8(q + j);
        int8x16x2_t xx = vld2q_s8(x + 2 * j);
        s = vmladavaq_s8(s, vreinterpretq_s8_u8(vandq_u8(v, low)), xx.val[0]);
        s = vmladavaq_s8(s, vreinterpretq_s8_u8(vshrq_n_u8(v, 4)), xx.val[1]);
    }
    return s;
}

static int32_t i8_block(const uint8_t *q, const int8_t *x, int block) {
    int32_t s = 0;
    int e;
    for (e = 0; e < block; e += 16) s = vmladavaq_s8(s, vld1q_s8((const int8_t *)q + e), vld1q_s8(x + e));
    return s;
}

static int32_t block_isum(const eq_weights_t *w, int r, int b, const int8_t *x, const int32_t *sums) {
    const uint8_t *row = w->codes + (size_t)r * w->row_bytes;
    const int8_t *xb = x + (size_t)b * (size_t)w->block;
    switch (w->format) {
    case EQ_F_T2:
        return (int32_t)((uint32_t)t2_block(row + (size_t)b * EDGEQ_T2_CODE_BYTES, xb) - (uint32_t)sums[b]);
    case EQ_F_T158:
        return (int32_t)((uint32_t)t158_block(row + (size_t)b * EDGEQ_T158_CODE_BYTES, xb) - (uint32_t)sums[b]);
    case EQ_F_B1:
        return sums[b] - 2 * b1_set_sum(row + (size_t)b * EDGEQ_B1_CODE_BYTES, xb);
    case EQ_F_Q4: {
        int32_t zero = w->zeros ? w->zeros[(size_t)r * (size_t)w->n_blocks + (size_t)b] : 8;
        return q4_block(row + (size_t)b * (size_t)(w->block / 2), xb, w->block) - zero * sums[b];
    }
    default:
        return i8_block(row + (size_t)b * (size_t)w->block, xb, w->block);
    }
}

static void mve_dot(const eq_weights_t *w, const eq_acts_t *a, int r0, int r1, void *acc, size_t acc_stride) {
    int r, i, b;
    for (r = r0; r < r1; r++)
        for (i = 0; i < a->n; i++) {
            const int8_t *x = a->x + (size_t)i * a->stride;
            const int32_t *sums = (const int32_t *)a->prep + (size_t)i * (size_t)w->n_blocks;
            if (w->acc_kind == EQ_ACC_ROW) {
                uint32_t s = 0; /* wraps mod 2^32 like the reference */
                for (b = 0; b < w->n_blocks; b++) s += (uint32_t)block_isum(w, r, b, x, sums);
                ((int32_t *)acc)[(size_t)i * acc_stride + (size_t)r] = (int32_t)s;
            } else {
                const uint16_t *d = (const uint16_t *)w->scales + (size_t)r * (size_t)w->n_blocks;
                float f = 0.0f;
                for (b = 0; b < w->n_blocks; b++) f = f + eq_f16_to_f32(d[b]) * (float)block_isum(w, r, b, x, sums);
                ((float *)acc)[(size_t)i * acc_stride + (size_t)r] = f;
            }
        }
}

#define MVE_DOTS(fmt)                                                                                         \
    {{{"helium/" fmt "_row_matvec", mve_dot}, {"helium/" fmt "_row_gemm", mve_dot}},                           \
     {{"helium/" fmt "_block_matvec", mve_dot}, {"helium/" fmt "_block_gemm", mve_dot}}}
#define NONE {NULL, NULL}

const eq_kernel_tier_t eq_cm_mve_tier = {
    "helium",
    {
        {mve_prep_bytes, mve_prep, MVE_DOTS("t2"), NULL, NULL},
        {mve_prep_bytes, mve_prep, MVE_DOTS("t158"), NULL, NULL},
        {mve_prep_bytes, mve_prep, MVE_DOTS("b1"), NULL, NULL}, /* B1 x B1 (XNOR) stays on ref */
        {mve_prep_bytes, mve_prep, MVE_DOTS("q4"), NULL, NULL},
        {mve_prep_bytes, mve_prep, MVE_DOTS("i8"), NULL, NULL},
    },
};

#else
typedef int eq_cm_mve_unused; /* ISO C forbids an empty translation unit */
#endif /* __ARM_FEATURE_MVE */
