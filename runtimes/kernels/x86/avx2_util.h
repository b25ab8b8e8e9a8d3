/* Small AVX2 helpers shared by the x86 kernels (this directory is compiled with -mavx2 -mf16c -mpopcnt). */
#ifndef EDGEQ_AVX2_UTIL_H
#define EDGEQ_AVX2_UTIL_H

#include <immintrin.h>
#include <stdint.h>
#include <string.h>

#include "../tier_common.h"


/* This directory builds two tiers from one source: AVX2 (-mavx2) and AVX-VNNI (-mavxvnni -DEQ_VNNI,
 * where u8 x s8 dot products are one vpdpbusd). EQ_X86(name) names a symbol of the tier being built. */
#ifdef EQ_VNNI
#define EQ_X86(name) eq_vnni_##name
#define EQ_X86_TIER "avxvnni"
#else
#define EQ_X86(name) eq_avx2_##name
#define EQ_X86_TIER "avx2"
#endif

EQ_INLINE int32_t hsum_i32(__m256i v) {
    __m128i s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0x4E));
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0xB1));
    return _mm_cvtsi128_si32(s);
}

/* v[0..7] -> the two 128-bit halves summed per vector: lo = [sum of v[i] lanes 0..3], hi = lanes 4..7,
 * each as 8 lanes (lane i = vector i). reduce8 adds them: lane i = all 8 lanes of v[i]. */
EQ_INLINE void reduce8_halves(const __m256i *v, __m256i *lo, __m256i *hi) {
    __m256i a = _mm256_hadd_epi32(_mm256_hadd_epi32(v[0], v[1]), _mm256_hadd_epi32(v[2], v[3]));
    __m256i c = _mm256_hadd_epi32(_mm256_hadd_epi32(v[4], v[5]), _mm256_hadd_epi32(v[6], v[7]));
    *lo = _mm256_permute2x128_si256(a, c, 0x20);
    *hi = _mm256_permute2x128_si256(a, c, 0x31);
}

EQ_INLINE __m256i reduce8(const __m256i *v) {
    __m256i lo, hi;
    reduce8_halves(v, &lo, &hi);
    return _mm256_add_epi32(lo, hi);
}

/* acc + per-4-byte sums of u8 x s8 products. Callers keep |sums of two products| < 32768 (their
 * symbols are small), so AVX2's saturating maddubs and VNNI's exact vpdpbusd agree bit for bit. */
EQ_INLINE __m256i dot_u8s8(__m256i acc, __m256i u, __m256i s) {
#ifdef EQ_VNNI
    return _mm256_dpbusd_avx_epi32(acc, u, s);
#else
    return _mm256_add_epi32(acc, _mm256_madd_epi16(_mm256_maddubs_epi16(u, s), _mm256_set1_epi16(1)));
#endif
}

EQ_INLINE uint32_t load_u32(const void *p) {
    uint32_t v;
    memcpy(&v, p, sizeof v);
    return v;
}

EQ_INLINE uint16_t load_u16(const void *p) {
    uint16_t v;
    memcpy(&v, p, sizeof v);
    return v;
}

#endif
