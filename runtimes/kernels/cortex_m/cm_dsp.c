/*
 * Cortex-M DSP tier (Armv7E-M / Armv8-M Mainline with the DSP extension: M4, M7, M33, M55): T2, T158, Q4 and
 * I8 dot kernels on SMLAD, two 16x16 multiply-accumulates per instruction.
 *
 * prep() widens each activation row once per call to int16 pairs, ordered the way the weight codes
 * unpack: UXTB16/SXTB16 take bytes 0 and 2 (and, rotated by 8, bytes 1 and 3) of a 32-bit word, so
 *   T2, T158, I8: elements e0..e3 of a group of 4 -> pairs (e0, e2), (e1, e3)
 *   Q4:     elements e0..e7 of a group of 8 (4 code bytes) -> (e0, e4), (e2, e6), (e1, e5), (e3, e7)
 * and stores the sum of each block's activations. Weights are multiplied as their unsigned codes (T2
 * c = w + 1, T158 trit t = w + 1, Q4 u) and each block is corrected once: isum = sum(code * x) - offset * sum(x).
 * Every block sum is exact in int32, so SCALE_ROW (wrapping) and SCALE_BLOCK (fp32 in block order, no FMA)
 * results are bit-identical to the reference tier. B1 uses the reference kernels.
 */
#include <string.h>

#include "../kernels.h"
#include "edgeq/edgeq_blob.h"

#if defined(__ARM_FEATURE_DSP) && !defined(__aarch64__)
#include <arm_acle.h>

static uint32_t ror8(uint32_t v) { return (v >> 8) | (v << 24); }

static uint32_t load32(const uint8_t *p) {
    uint32_t v;
    memcpy(&v, p, sizeof v);
    return v;
}

static uint32_t pair(int8_t lo, int8_t hi) { return (uint32_t)(uint16_t)(int16_t)lo | (uint32_t)(uint16_t)(int16_t)hi << 16; }

static size_t row_words(const eq_weights_t *w) { return (size_t)w->padded_cols / 2 + (size_t)w->n_blocks; }

static size_t eq_cm_prep_bytes(const eq_weights_t *w, int n) { return (size_t)n * row_words(w) * sizeof(uint32_t); }

/* Per row: padded_cols / 2 pair words, then n_blocks int32 block sums. */
static void eq_cm_prep(const eq_weights_t *w, const int8_t *x, size_t stride, int n, void *prep) {
    int i, e, b, k;
    for (i = 0; i < n; i++) {
        const int8_t *xi = x + (size_t)i * stride;
        uint32_t *pairs = (uint32_t *)prep + (size_t)i * row_words(w);
        int32_t *sums = (int32_t *)(pairs + w->padded_cols / 2);
        if (w->format == EQ_F_Q4) {
            for (e = 0; e < w->padded_cols; e += 8) {
                pairs[e / 2] = pair(xi[e], xi[e + 4]);
                pairs[e / 2 + 1] = pair(xi[e + 2], xi[e + 6]);
                pairs[e / 2 + 2] = pair(xi[e + 1], xi[e + 5]);
                pairs[e / 2 + 3] = pair(xi[e + 3], xi[e + 7]);
            }
        } else {
            for (e = 0; e < w->padded_cols; e += 4) {
                pairs[e / 2] = pair(xi[e], xi[e + 2]);
                pairs[e / 2 + 1] = pair(xi[e + 1], xi[e + 3]);
            }
        }
        for (b = 0; b < w->n_blocks; b++) {
            int32_t s = 0;
            for (k = 0; k < w->block; k++) s += xi[b * w->block + k];
            sums[b] = s;
        }
    }
}

/* One block: xp = the block's pair words. Returns sum(code * x) with codes as stored (unsigned/signed). */
static int32_t t2_block(const uint8_t *q, const uint32_t *xp) {
    int32_t s = 0;
    int h, m, l;
    for (h = 0; h < 2; h++)
        for (m = 0; m < 32; m += 4) {
            uint32_t word = load32(q + 32 * h + m);
            for (l = 0; l < 4; l++) { /* codes of elements E..E+3, E = 128h + 32l + m */
                uint32_t v = (word >> (2 * l)) & 0x03030303u;
                const uint32_t *xe = xp + (128 * h + 32 * l + m) / 2;
                s = __smlad((int32_t)__uxtb16(v), (int32_t)xe[0], s);
                s = __smlad((int32_t)__uxtb16(ror8(v)), (int32_t)xe[1], s);
            }
        }
    return s;
}

/* T158: 4 code bytes -> 16-bit lanes (b0, b2) and (b1, b3); trit n of a byte is ((b * 3^n mod 256) * 3) >> 8,
 * computed in both lanes at once (b * 81 < 2^16, so lanes never carry into each other). */
static uint32_t t158_trits(uint32_t lanes, uint32_t pow3) {
    return ((((lanes * pow3) & 0x00FF00FFu) * 3u) >> 8) & 0x00030003u;
}

static int32_t t158_block(const uint8_t *q, const uint32_t *xp) {
    static const int first[3] = {0, 160, 240}, trits[3] = {5, 5, 4}, width[3] = {32, 16, 4}, at[3] = {0, 32, 48};
    static const uint32_t pow3[5] = {1, 3, 9, 27, 81};
    int32_t s = 0;
    int g, m, n;
    for (g = 0; g < 3; g++)
        for (m = 0; m < width[g]; m += 4) {
            uint32_t word = load32(q + at[g] + m), lo = __uxtb16(word), hi = __uxtb16(ror8(word));
            for (n = 0; n < trits[g]; n++) { /* elements E..E+3, E = first + m + width * n */
                const uint32_t *xe = xp + (first[g] + m + width[g] * n) / 2;
                s = __smlad((int32_t)t158_trits(lo, pow3[n]), (int32_t)xe[0], s);
                s = __smlad((int32_t)t158_trits(hi, pow3[n]), (int32_t)xe[1], s);
            }
        }
    return s;
}

static int32_t q4_block(const uint8_t *q, const uint32_t *xp, int block) {
    int32_t s = 0;
    int j;
    for (j = 0; j < block / 2; j += 4) { /* 4 bytes = elements 2j..2j+7 */
        uint32_t word = load32(q + j), lo = word & 0x0F0F0F0Fu, hi = (word >> 4) & 0x0F0F0F0Fu;
        const uint32_t *xe = xp + j;
        s = __smlad((int32_t)__uxtb16(lo), (int32_t)xe[0], s);
        s = __smlad((int32_t)__uxtb16(ror8(lo)), (int32_t)xe[1], s);
        s = __smlad((int32_t)__uxtb16(hi), (int32_t)xe[2], s);
        s = __smlad((int32_t)__uxtb16(ror8(hi)), (int32_t)xe[3], s);
    }
    return s;
}

static int32_t i8_block(const uint8_t *q, const uint32_t *xp, int block) {
    int32_t s = 0;
    int e;
    for (e = 0; e < block; e += 4) {
        uint32_t word = load32(q + e);
        s = __smlad(__sxtb16((int32_t)word), (int32_t)xp[e / 2], s);
        s = __smlad(__sxtb16((int32_t)ror8(word)), (int32_t)xp[e / 2 + 1], s);
    }
    return s;
}

/* isum of block b of row r against one prepared activation row. */
static int32_t block_isum(const eq_weights_t *w, int r, int b, const uint32_t *pairs, const int32_t *sums) {
    const uint8_t *row = w->codes + (size_t)r * w->row_bytes;
    const uint32_t *xp = pairs + (size_t)b * (size_t)w->block / 2;
    switch (w->format) {
    case EQ_F_T2:
        return (int32_t)((uint32_t)t2_block(row + (size_t)b * EDGEQ_T2_CODE_BYTES, xp) - (uint32_t)sums[b]);
    case EQ_F_T158:
        return (int32_t)((uint32_t)t158_block(row + (size_t)b * EDGEQ_T158_CODE_BYTES, xp) - (uint32_t)sums[b]);
    case EQ_F_Q4: {
        int32_t zero = w->zeros ? w->zeros[(size_t)r * (size_t)w->n_blocks + (size_t)b] : 8;
        return q4_block(row + (size_t)b * (size_t)(w->block / 2), xp, w->block) - zero * sums[b];
    }
    default:
        return i8_block(row + (size_t)b * (size_t)w->block, xp, w->block);
    }
}

static void cm_dot(const eq_weights_t *w, const eq_acts_t *a, int r0, int r1, void *acc, size_t acc_stride) {
    int r, i, b;
    for (r = r0; r < r1; r++)
        for (i = 0; i < a->n; i++) {
            const uint32_t *pairs = (const uint32_t *)a->prep + (size_t)i * row_words(w);
            const int32_t *sums = (const int32_t *)(pairs + w->padded_cols / 2);
            if (w->acc_kind == EQ_ACC_ROW) {
                uint32_t s = 0; /* wraps mod 2^32 like the reference */
                for (b = 0; b < w->n_blocks; b++) s += (uint32_t)block_isum(w, r, b, pairs, sums);
                ((int32_t *)acc)[(size_t)i * acc_stride + (size_t)r] = (int32_t)s;
            } else {
                const uint16_t *d = (const uint16_t *)w->scales + (size_t)r * (size_t)w->n_blocks;
                float f = 0.0f;
                for (b = 0; b < w->n_blocks; b++) f = f + eq_f16_to_f32(d[b]) * (float)block_isum(w, r, b, pairs, sums);
                ((float *)acc)[(size_t)i * acc_stride + (size_t)r] = f;
            }
        }
}

#define CM_DOTS(fmt)                                                                                          \
    {{{"cortex_m_dsp/" fmt "_row_matvec", cm_dot}, {"cortex_m_dsp/" fmt "_row_gemm", cm_dot}},                 \
     {{"cortex_m_dsp/" fmt "_block_matvec", cm_dot}, {"cortex_m_dsp/" fmt "_block_gemm", cm_dot}}}
#define NONE {NULL, NULL}

const eq_kernel_tier_t eq_cm_dsp_tier = {
    "cortex_m_dsp",
    {
        {eq_cm_prep_bytes, eq_cm_prep, CM_DOTS("t2"), NULL, NULL},
        {eq_cm_prep_bytes, eq_cm_prep, CM_DOTS("t158"), NULL, NULL},
        {NULL, NULL, {{NONE, NONE}, {NONE, NONE}}, NULL, NULL},
        {eq_cm_prep_bytes, eq_cm_prep, CM_DOTS("q4"), NULL, NULL},
        {eq_cm_prep_bytes, eq_cm_prep, CM_DOTS("i8"), NULL, NULL},
    },
};

#else
typedef int eq_cm_dsp_unused; /* ISO C forbids an empty translation unit */
#endif /* __ARM_FEATURE_DSP */
