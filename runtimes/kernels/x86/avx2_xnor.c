/* AVX2 XNOR-popcount (B1 weights x B1 activations): popcount of w XOR a by nibble lookup + SAD. */
#include "avx2_util.h"

EQ_INLINE __m256i popcount_bytes(__m256i v) {
    const __m256i lut = _mm256_setr_epi8(0, 1, 1, 2, 1, 2, 2, 3, 1, 2, 2, 3, 2, 3, 3, 4,
                                         0, 1, 1, 2, 1, 2, 2, 3, 1, 2, 2, 3, 2, 3, 3, 4);
    const __m256i m4 = _mm256_set1_epi8(15);
    return _mm256_add_epi8(_mm256_shuffle_epi8(lut, _mm256_and_si256(v, m4)),
                           _mm256_shuffle_epi8(lut, _mm256_and_si256(_mm256_srli_epi16(v, 4), m4)));
}

/* Mismatching bits of the padding (bits cols..padded_cols of the last 64-bit block), not counted. */
static int padding_mismatches(const uint8_t *w, const uint8_t *x, int cols, int padded_cols) {
    uint64_t a, b;
    if (cols == padded_cols) return 0;
    memcpy(&a, w + padded_cols / 8 - 8, 8);
    memcpy(&b, x + padded_cols / 8 - 8, 8);
    return (int)_mm_popcnt_u64((a ^ b) & ~((1ull << (cols % 64)) - 1ull));
}

static int mismatches(const uint8_t *w, const uint8_t *x, size_t bytes) {
    __m256i acc = _mm256_setzero_si256();
    size_t k = 0;
    uint64_t tail = 0;
    for (; k + 32 <= bytes; k += 32) {
        __m256i v = _mm256_xor_si256(_mm256_loadu_si256((const __m256i *)(w + k)),
                                     _mm256_loadu_si256((const __m256i *)(x + k)));
        acc = _mm256_add_epi64(acc, _mm256_sad_epu8(popcount_bytes(v), _mm256_setzero_si256()));
    }
    for (; k < bytes; k += 8) { /* rows are whole 64-bit blocks */
        uint64_t a, b;
        memcpy(&a, w + k, 8);
        memcpy(&b, x + k, 8);
        tail += (uint64_t)_mm_popcnt_u64(a ^ b);
    }
    return (int)((uint64_t)_mm256_extract_epi64(acc, 0) + (uint64_t)_mm256_extract_epi64(acc, 1) +
                 (uint64_t)_mm256_extract_epi64(acc, 2) + (uint64_t)_mm256_extract_epi64(acc, 3) + tail);
}

void EQ_X86(b1_xnor)(const eq_weights_t *w, const uint32_t *bits, size_t words_stride, int n, int r0, int r1,
                     int32_t *acc, size_t acc_stride) {
    const size_t bytes = (size_t)w->padded_cols / 8;
    int r, i;
    for (r = r0; r < r1; r++)
        for (i = 0; i < n; i++) {
            const uint8_t *row = w->codes + (size_t)r * w->row_bytes;
            const uint8_t *x = (const uint8_t *)(bits + (size_t)i * words_stride);
            int differ = mismatches(row, x, bytes) - padding_mismatches(row, x, w->cols, w->padded_cols);
            acc[(size_t)i * acc_stride + (size_t)r] = w->cols - 2 * differ;
        }
}
