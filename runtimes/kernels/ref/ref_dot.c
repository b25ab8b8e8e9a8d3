/* The reference tier: decode a block to integers, multiply, add. Slow, plain C, the truth. */
#include "ref.h"

static uint32_t load_le32(const uint8_t *p) {
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static int popcount32(uint32_t v) {
    v = v - ((v >> 1) & 0x55555555u);
    v = (v & 0x33333333u) + ((v >> 2) & 0x33333333u);
    return (int)((((v + (v >> 4)) & 0x0F0F0F0Fu) * 0x01010101u) >> 24);
}

static int32_t block_isum(const int8_t *vals, const int8_t *x, int block) {
    int32_t s = 0;
    int i;
    for (i = 0; i < block; i++) s += (int32_t)vals[i] * (int32_t)x[i];
    return s;
}

static void ref_dot(const eq_weights_t *w, const eq_acts_t *a, int r0, int r1, void *acc, size_t acc_stride) {
    int8_t vals[EQ_MAX_BLOCK];
    uint32_t iacc[EQ_MAX_N]; /* unsigned: SCALE_ROW sums wrap mod 2^32 like every SIMD tier */
    float facc[EQ_MAX_N];
    int r, b, i;
    for (r = r0; r < r1; r++) {
        for (i = 0; i < a->n; i++) {
            iacc[i] = 0;
            facc[i] = 0.0f;
        }
        for (b = 0; b < w->n_blocks; b++) {
            eq_ref_decode_block(w, r, b, vals);
            for (i = 0; i < a->n; i++) {
                int32_t isum = block_isum(vals, a->x + (size_t)i * a->stride + (size_t)b * (size_t)w->block, w->block);
                if (w->acc_kind == EQ_ACC_ROW) {
                    iacc[i] += (uint32_t)isum;
                } else {
                    uint16_t d = ((const uint16_t *)w->scales)[(size_t)r * (size_t)w->n_blocks + (size_t)b];
                    facc[i] = facc[i] + eq_f16_to_f32(d) * (float)isum;
                }
            }
        }
        for (i = 0; i < a->n; i++) {
            if (w->acc_kind == EQ_ACC_ROW)
                ((int32_t *)acc)[(size_t)i * acc_stride + (size_t)r] = (int32_t)iacc[i];
            else
                ((float *)acc)[(size_t)i * acc_stride + (size_t)r] = facc[i];
        }
    }
}

static void ref_xnor(const eq_weights_t *w, const uint32_t *bits, size_t words_stride, int n, int r0, int r1,
                     int32_t *acc, size_t acc_stride) {
    int words = w->padded_cols / 32, r, i, k;
    for (r = r0; r < r1; r++) {
        const uint8_t *row = w->codes + (size_t)r * w->row_bytes;
        for (i = 0; i < n; i++) {
            const uint32_t *x = bits + (size_t)i * words_stride;
            int mismatches = 0;
            for (k = 0; k < words; k++) {
                uint32_t valid = 32 * (k + 1) <= w->cols ? 0xFFFFFFFFu
                                 : 32 * k >= w->cols     ? 0u
                                                         : (1u << (w->cols - 32 * k)) - 1u;
                mismatches += popcount32((load_le32(row + 4 * k) ^ x[k]) & valid); /* padding bits never count */
            }
            acc[(size_t)i * acc_stride + (size_t)r] = w->cols - 2 * mismatches;
        }
    }
}

#define REF_DOTS(fmt)                                                                                         \
    {{{"ref/" fmt "_row_matvec", ref_dot}, {"ref/" fmt "_row_gemm", ref_dot}},                                 \
     {{"ref/" fmt "_block_matvec", ref_dot}, {"ref/" fmt "_block_gemm", ref_dot}}}

const eq_kernel_tier_t eq_ref_tier = {
    "ref",
    {
        {NULL, NULL, REF_DOTS("t2"), NULL, NULL},
        {NULL, NULL, REF_DOTS("t158"), NULL, NULL},
        {NULL, NULL, REF_DOTS("b1"), "ref/b1_xnor", ref_xnor},
        {NULL, NULL, REF_DOTS("q4"), NULL, NULL},
        {NULL, NULL, REF_DOTS("i8"), NULL, NULL},
    },
};
