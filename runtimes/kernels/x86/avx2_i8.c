/* AVX2 I8 kernels: both operands widened to int16 and _mm256_madd_epi16, exact for every int8 pair
 * (maddubs would saturate on -128 * -128 pairs). prep() widens the activations once. SCALE_ROW sums
 * per row; SCALE_BLOCK (fp16 per 32 = GGUF Q8_0) keeps eight rows in the lanes and adds d * isum per
 * block in block order, lane by lane -- the reference's own arithmetic. */
#include "avx2_util.h"

size_t EQ_X86(i8_prep_bytes)(const eq_weights_t *w, int n) {
    return (size_t)n * (size_t)w->padded_cols * sizeof(int16_t);
}

void EQ_X86(i8_prep)(const eq_weights_t *w, const int8_t *x, size_t stride, int n, void *prep) {
    int16_t *out = (int16_t *)prep;
    int i, k;
    for (i = 0; i < n; i++)
        for (k = 0; k < w->padded_cols; k++) out[(size_t)i * (size_t)w->padded_cols + (size_t)k] = x[(size_t)i * stride + (size_t)k];
}

EQ_INLINE __m256i dot16(const int8_t *w, const int16_t *x) {
    return _mm256_madd_epi16(_mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)w)),
                             _mm256_loadu_si256((const __m256i *)x));
}

/* Four rows at a time (the last group repeats its final row). */
static void i8_matvec(const eq_weights_t *w, const eq_acts_t *a, int r0, int r1, void *acc, size_t acc_stride) {
    const int16_t *x = (const int16_t *)a->prep;
    const int kp = w->padded_cols;
    int r, k, i;
    (void)acc_stride;
    for (r = r0; r < r1; r += 4) {
        const int8_t *row[4];
        __m256i s[4];
        for (i = 0; i < 4; i++) {
            row[i] = (const int8_t *)w->codes + (size_t)(r + i < r1 ? r + i : r1 - 1) * w->row_bytes;
            s[i] = _mm256_setzero_si256();
        }
        for (k = 0; k < kp; k += 16)
            for (i = 0; i < 4; i++) s[i] = _mm256_add_epi32(s[i], dot16(row[i] + k, x + k));
        for (i = 0; i < 4 && r + i < r1; i++) ((int32_t *)acc)[r + i] = hsum_i32(s[i]);
    }
}

/* One row at a time, reused (from L1) for every activation row. */
static void i8_gemm(const eq_weights_t *w, const eq_acts_t *a, int r0, int r1, void *acc, size_t acc_stride) {
    const int16_t *x = (const int16_t *)a->prep;
    const int kp = w->padded_cols;
    int r, k, i;
    for (r = r0; r < r1; r++) {
        const int8_t *row = (const int8_t *)w->codes + (size_t)r * w->row_bytes;
        for (i = 0; i < a->n; i++) {
            const int16_t *xi = x + (size_t)i * (size_t)kp;
            __m256i s0 = _mm256_setzero_si256(), s1 = _mm256_setzero_si256();
            for (k = 0; k + 32 <= kp; k += 32) {
                s0 = _mm256_add_epi32(s0, dot16(row + k, xi + k));
                s1 = _mm256_add_epi32(s1, dot16(row + k + 16, xi + k + 16));
            }
            if (k < kp) s0 = _mm256_add_epi32(s0, dot16(row + k, xi + k));
            ((int32_t *)acc)[(size_t)i * acc_stride + (size_t)r] = hsum_i32(_mm256_add_epi32(s0, s1));
        }
    }
}

/* Rows [r, r + 8) (the last group repeats row r1 - 1) of activation row x: the block-ordered sums. */
EQ_INLINE __m256 block_rows8(const eq_weights_t *w, const int16_t *x, int r, int r1) {
    const uint16_t *d[8];
    const int8_t *row[8];
    __m256 acc = _mm256_setzero_ps();
    int i, b;
    for (i = 0; i < 8; i++) {
        int rr = r + i < r1 ? r + i : r1 - 1;
        row[i] = (const int8_t *)w->codes + (size_t)rr * w->row_bytes;
        d[i] = (const uint16_t *)w->scales + (size_t)rr * (size_t)w->n_blocks;
    }
    for (b = 0; b < w->n_blocks; b++) {
        __m256i s[8];
        const int k = 32 * b;
        for (i = 0; i < 8; i++) s[i] = _mm256_add_epi32(dot16(row[i] + k, x + k), dot16(row[i] + k + 16, x + k + 16));
        acc = _mm256_add_ps(acc, _mm256_mul_ps(_mm256_cvtph_ps(_mm_setr_epi16((short)d[0][b], (short)d[1][b], (short)d[2][b],
                                                                                (short)d[3][b], (short)d[4][b], (short)d[5][b],
                                                                                (short)d[6][b], (short)d[7][b])),
                                               _mm256_cvtepi32_ps(reduce8(s))));
    }
    return acc;
}

static void i8_block(const eq_weights_t *w, const eq_acts_t *a, int r0, int r1, void *acc, size_t acc_stride) {
    const int16_t *x = (const int16_t *)a->prep;
    int r, i, l;
    for (i = 0; i < a->n; i++)
        for (r = r0; r < r1; r += 8) {
            float out[8];
            _mm256_storeu_ps(out, block_rows8(w, x + (size_t)i * (size_t)w->padded_cols, r, r1));
            for (l = 0; l < 8 && r + l < r1; l++) ((float *)acc)[(size_t)i * acc_stride + (size_t)(r + l)] = out[l];
        }
}

void EQ_X86(i8_block_matvec)(const eq_weights_t *w, const eq_acts_t *a, int r0, int r1, void *acc, size_t stride) {
    i8_block(w, a, r0, r1, acc, stride);
}

void EQ_X86(i8_block_gemm)(const eq_weights_t *w, const eq_acts_t *a, int r0, int r1, void *acc, size_t stride) {
    i8_block(w, a, r0, r1, acc, stride);
}

void EQ_X86(i8_row_matvec)(const eq_weights_t *w, const eq_acts_t *a, int r0, int r1, void *acc, size_t stride) {
    i8_matvec(w, a, r0, r1, acc, stride);
}

void EQ_X86(i8_row_gemm)(const eq_weights_t *w, const eq_acts_t *a, int r0, int r1, void *acc, size_t stride) {
    i8_gemm(w, a, r0, r1, acc, stride);
}
