/*
 * Q4 with groups of 32 (GGUF Q4_0's size): one 32-byte load holds two groups, so the low and high
 * nibbles of both are two maddubs against activations that prep() ordered per pair of groups as
 * [even(b), even(b+1), odd(b), odd(b+1)] (16 each); an odd last group uses [even, odd]. Eight rows
 * sit in the lanes; both groups' sums come out of one 8-row reduction and are combined in order.
 */
#include "avx2_util.h"

EQ_INLINE __m256i pair_raw(__m256i lo, __m256i hi, const int8_t *xp) { /* lanes 0..3: group b, 4..7: b + 1 */
#ifdef EQ_VNNI
    return _mm256_dpbusd_avx_epi32(_mm256_dpbusd_avx_epi32(_mm256_setzero_si256(), lo, _mm256_loadu_si256((const __m256i *)xp)),
                                   hi, _mm256_loadu_si256((const __m256i *)(xp + 32)));
#else
    __m256i s = _mm256_add_epi16(_mm256_maddubs_epi16(lo, _mm256_loadu_si256((const __m256i *)xp)),
                                 _mm256_maddubs_epi16(hi, _mm256_loadu_si256((const __m256i *)(xp + 32))));
    return _mm256_madd_epi16(s, _mm256_set1_epi16(1));
#endif
}

EQ_INLINE void pair_decode(const uint8_t *q, __m256i *lo, __m256i *hi) {
    const __m256i m4 = _mm256_set1_epi8(15);
    __m256i v = _mm256_loadu_si256((const __m256i *)q);
    *lo = _mm256_and_si256(v, m4);
    *hi = _mm256_and_si256(_mm256_srli_epi16(v, 4), m4);
}

EQ_INLINE __m256i single_decode(const uint8_t *q) {
    __m128i v = _mm_loadu_si128((const __m128i *)q);
    return _mm256_and_si256(_mm256_set_m128i(_mm_srli_epi16(v, 4), v), _mm256_set1_epi8(15));
}

EQ_INLINE __m256i single_raw(__m256i sym, const int8_t *xp) {
    return dot_u8s8(_mm256_setzero_si256(), sym, _mm256_loadu_si256((const __m256i *)xp));
}

/* Two adjacent 16-bit values (groups b, b+1) of 8 rows -> [row values of b], [row values of b+1]. */
EQ_INLINE void split_pairs(__m256i v32, __m128i *first, __m128i *second) {
    __m256i packed = _mm256_packus_epi32(_mm256_and_si256(v32, _mm256_set1_epi32(0xFFFF)), _mm256_srli_epi32(v32, 16));
    packed = _mm256_permute4x64_epi64(packed, 0xD8);
    *first = _mm256_castsi256_si128(packed);
    *second = _mm256_extracti128_si256(packed, 1);
}

typedef struct {
    const eq_weights_t *w;
    int rows[8];
    size_t nb;
} group_t;

EQ_INLINE void pair_scales(const group_t *g, int b, __m256 *d0, __m256 *d1) {
    const uint16_t *d = (const uint16_t *)g->w->scales + b;
    __m128i s0, s1;
    split_pairs(_mm256_setr_epi32((int)load_u32(d + g->rows[0] * g->nb), (int)load_u32(d + g->rows[1] * g->nb),
                                  (int)load_u32(d + g->rows[2] * g->nb), (int)load_u32(d + g->rows[3] * g->nb),
                                  (int)load_u32(d + g->rows[4] * g->nb), (int)load_u32(d + g->rows[5] * g->nb),
                                  (int)load_u32(d + g->rows[6] * g->nb), (int)load_u32(d + g->rows[7] * g->nb)),
                &s0, &s1);
    *d0 = _mm256_cvtph_ps(s0);
    *d1 = _mm256_cvtph_ps(s1);
}

EQ_INLINE __m256 one_scale(const group_t *g, int b) {
    const uint16_t *d = (const uint16_t *)g->w->scales + b;
    return _mm256_cvtph_ps(_mm_setr_epi16((short)d[g->rows[0] * g->nb], (short)d[g->rows[1] * g->nb],
                                          (short)d[g->rows[2] * g->nb], (short)d[g->rows[3] * g->nb],
                                          (short)d[g->rows[4] * g->nb], (short)d[g->rows[5] * g->nb],
                                          (short)d[g->rows[6] * g->nb], (short)d[g->rows[7] * g->nb]));
}

/* zero point x activation sum of group b for 8 rows, the term each raw sum is corrected by
 * (symmetric groups: zero point 8, one broadcast). */
EQ_INLINE __m256i zero_term(const group_t *g, int b, int32_t xsum) {
    const uint8_t *z = g->w->zeros + b;
    if (!g->w->zeros) return _mm256_set1_epi32(8 * xsum);
    return _mm256_mullo_epi32(_mm256_setr_epi32(z[g->rows[0] * g->nb], z[g->rows[1] * g->nb], z[g->rows[2] * g->nb],
                                                z[g->rows[3] * g->nb], z[g->rows[4] * g->nb], z[g->rows[5] * g->nb],
                                                z[g->rows[6] * g->nb], z[g->rows[7] * g->nb]),
                              _mm256_set1_epi32(xsum));
}

EQ_INLINE __m256 combine(__m256 accf, __m256 d, __m256i raw, __m256i zx) {
    return _mm256_add_ps(accf, _mm256_mul_ps(d, _mm256_cvtepi32_ps(_mm256_sub_epi32(raw, zx)))); /* no FMA */
}

EQ_INLINE group_t group(const eq_weights_t *w, int r, int r1) {
    group_t g;
    int k;
    g.w = w;
    g.nb = (size_t)w->n_blocks;
    for (k = 0; k < 8; k++) g.rows[k] = r + k < r1 ? r + k : r1 - 1;
    return g;
}

EQ_INLINE void store_rows(float *acc, int r, int r1, __m256 v) {
    float lanes[8];
    int k;
    _mm256_storeu_ps(lanes, v);
    for (k = 0; k < 8 && r + k < r1; k++) acc[r + k] = lanes[k];
}

void EQ_X86(q4_32_matvec)(const eq_weights_t *w, const int32_t *xsum, const int8_t *xp, int r0, int r1, float *acc) {
    const int nb = w->n_blocks;
    int r, b, k;
    for (r = r0; r < r1; r += 8) {
        const group_t g = group(w, r, r1);
        __m256 accf = _mm256_setzero_ps(), d0, d1;
        __m256i raw[8], lo, hi;
        for (b = 0; b + 1 < nb; b += 2) {
            for (k = 0; k < 8; k++) {
                pair_decode(w->codes + (size_t)g.rows[k] * w->row_bytes + (size_t)b * 16, &lo, &hi);
                raw[k] = pair_raw(lo, hi, xp + (size_t)b * 32);
            }
            reduce8_halves(raw, &lo, &hi);
            pair_scales(&g, b, &d0, &d1);
            accf = combine(accf, d0, lo, zero_term(&g, b, xsum[b]));
            accf = combine(accf, d1, hi, zero_term(&g, b + 1, xsum[b + 1]));
        }
        if (b < nb) {
            for (k = 0; k < 8; k++)
                raw[k] = single_raw(single_decode(w->codes + (size_t)g.rows[k] * w->row_bytes + (size_t)b * 16),
                                    xp + (size_t)b * 32);
            accf = combine(accf, one_scale(&g, b), reduce8(raw), zero_term(&g, b, xsum[b]));
        }
        store_rows(acc, r, r1, accf);
    }
}

void EQ_X86(q4_32_gemm)(const eq_weights_t *w, const int32_t *xsum, const int8_t *xp, size_t xp_stride, int n, int r0,
                        int r1, float *acc, size_t acc_stride) {
    const int nb = w->n_blocks;
    __m256 accf[EQ_MAX_N];
    int r, b, k, i;
    for (r = r0; r < r1; r += 8) {
        const group_t g = group(w, r, r1);
        for (i = 0; i < n; i++) accf[i] = _mm256_setzero_ps();
        for (b = 0; b < nb; b += 2) {
            const int pair = b + 1 < nb;
            __m256i lo[8], hi[8], raw[8], s0, s1;
            __m256 d0, d1;
            for (k = 0; k < 8; k++) {
                const uint8_t *q = w->codes + (size_t)g.rows[k] * w->row_bytes + (size_t)b * 16;
                if (pair) pair_decode(q, &lo[k], &hi[k]);
                else lo[k] = single_decode(q);
            }
            if (pair) {
                pair_scales(&g, b, &d0, &d1);
            } else {
                d0 = d1 = one_scale(&g, b);
            }
            for (i = 0; i < n; i++) {
                const int8_t *x = xp + (size_t)i * xp_stride + (size_t)b * 32;
                const int32_t *xs = xsum + (size_t)i * (size_t)nb + b;
                if (!pair) {
                    for (k = 0; k < 8; k++) raw[k] = single_raw(lo[k], x);
                    accf[i] = combine(accf[i], d0, reduce8(raw), zero_term(&g, b, xs[0]));
                    continue;
                }
                for (k = 0; k < 8; k++) raw[k] = pair_raw(lo[k], hi[k], x);
                reduce8_halves(raw, &s0, &s1);
                accf[i] = combine(accf[i], d0, s0, zero_term(&g, b, xs[0]));
                accf[i] = combine(accf[i], d1, s1, zero_term(&g, b + 1, xs[1]));
            }
        }
        for (i = 0; i < n; i++) store_rows(acc + (size_t)i * acc_stride, r, r1, accf[i]);
    }
}
