/*
 * AVX2 block decoders: one block of codes -> NVEC vectors of 32 unsigned symbols each, vector j
 * lined up with the 32 activations at (block start + 32 j) of the kernel's activation row (Q4's row
 * is permuted, see q4_permute). The weight value is a per-format affine function of the symbol,
 * corrected once per block with the activation sum (avx2_dot.c).
 */
#ifndef EDGEQ_AVX2_DECODE_H
#define EDGEQ_AVX2_DECODE_H

#include "avx2_util.h"

#define NVEC_MAX 8

EQ_INLINE int nvec(int fmt, int block) {
    return fmt == EQ_F_B1 ? 2 : fmt == EQ_F_Q4 ? block / 32 : 8;
}

EQ_INLINE size_t code_bytes(int fmt, int block) {
    return fmt == EQ_F_T2 ? 64 : fmt == EQ_F_T158 ? 52 : fmt == EQ_F_B1 ? 8 : (size_t)block / 2;
}

/* T2: symbol = 2-bit code c (value c - 1); vector 4h + l = bits 2l of bytes 32h..32h+31. */
EQ_INLINE void decode_t2(const uint8_t *q, __m256i *sym) {
    const __m256i m3 = _mm256_set1_epi8(3);
    __m256i q0 = _mm256_loadu_si256((const __m256i *)q), q1 = _mm256_loadu_si256((const __m256i *)(q + 32));
    sym[0] = _mm256_and_si256(q0, m3);
    sym[1] = _mm256_and_si256(_mm256_srli_epi16(q0, 2), m3);
    sym[2] = _mm256_and_si256(_mm256_srli_epi16(q0, 4), m3);
    sym[3] = _mm256_and_si256(_mm256_srli_epi16(q0, 6), m3);
    sym[4] = _mm256_and_si256(q1, m3);
    sym[5] = _mm256_and_si256(_mm256_srli_epi16(q1, 2), m3);
    sym[6] = _mm256_and_si256(_mm256_srli_epi16(q1, 4), m3);
    sym[7] = _mm256_and_si256(_mm256_srli_epi16(q1, 6), m3);
}

EQ_INLINE __m256i times3(__m256i v) { return _mm256_add_epi8(v, _mm256_add_epi8(v, v)); }
EQ_INLINE __m128i times3_128(__m128i v) { return _mm_add_epi8(v, _mm_add_epi8(v, v)); }

/* Top trit of a byte, ((3 v) >> 8), exactly: avg(v', avg(v', 0)) with v' = v -sat 1 is floor(3v/4)
 * rounded so that its top two bits are the trit (checked for all 256 bytes). */
EQ_INLINE __m256i top_trit(__m256i v) {
    __m256i w = _mm256_subs_epu8(v, _mm256_set1_epi8(1));
    w = _mm256_avg_epu8(w, _mm256_avg_epu8(w, _mm256_setzero_si256()));
    return _mm256_and_si256(_mm256_srli_epi16(w, 6), _mm256_set1_epi8(3));
}

/* T158: symbol = trit t (value t - 1). Trit n of byte q is the top trit of (q * 3^n mod 256).
 * Bytes 0..31 give vectors 0..4; bytes 32..47 (16 lanes) give trits 0|1, 2|3, 4 and the last four
 * bytes (x[240 + 4n + m]) fill the upper half of vector 7. */
EQ_INLINE void decode_t158(const uint8_t *q, __m256i *sym) {
    __m256i p = _mm256_loadu_si256((const __m256i *)q);
    __m128i g = _mm_loadu_si128((const __m128i *)(q + 32)), g1, g2, g3, g4;
    __m128i h = _mm_set1_epi32((int)load_u32(q + 48)), h1, h2, h3, tail;
    int n;
    sym[0] = top_trit(p);
    for (n = 1; n < 5; n++) {
        p = times3(p);
        sym[n] = top_trit(p);
    }
    g1 = times3_128(g);
    g2 = times3_128(g1);
    g3 = times3_128(g2);
    g4 = times3_128(g3);
    h1 = times3_128(h);
    h2 = times3_128(h1);
    h3 = times3_128(h2);
    tail = _mm_blend_epi32(_mm_blend_epi32(h, h1, 0x2), _mm_blend_epi32(h2, h3, 0x8), 0xC); /* dword n * 3^n */
    sym[5] = top_trit(_mm256_set_m128i(g1, g));
    sym[6] = top_trit(_mm256_set_m128i(g3, g2));
    sym[7] = top_trit(_mm256_set_m128i(tail, g4));
}

/* B1: symbol = bit (value 1 - 2 bit); vector k = the 32 bits of word k spread one per byte. */
EQ_INLINE void decode_b1(const uint8_t *q, __m256i *sym) {
    const __m256i spread = _mm256_setr_epi8(0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1,
                                            2, 2, 2, 2, 2, 2, 2, 2, 3, 3, 3, 3, 3, 3, 3, 3);
    const __m256i bit = _mm256_set1_epi64x(0x8040201008040201LL), one = _mm256_set1_epi8(1);
    int k;
    for (k = 0; k < 2; k++) {
        __m256i v = _mm256_shuffle_epi8(_mm256_set1_epi32((int)load_u32(q + 4 * k)), spread);
        sym[k] = _mm256_min_epu8(_mm256_and_si256(v, bit), one);
    }
}

/* Q4 groups of 64 or 128: symbol = nibble u (value u - zero point). A chunk of 64 weights is stored
 * as its low nibbles (even elements) then its high nibbles (odd ones); q4_permute orders x the same
 * way. (Groups of 32 have their own kernels, avx2_q4.c.) */
EQ_INLINE void decode_q4(const uint8_t *q, int block, __m256i *sym) {
    const __m256i m4 = _mm256_set1_epi8(15);
    int c = 0;
    do {
        __m256i v = _mm256_loadu_si256((const __m256i *)(q + 32 * c));
        sym[2 * c] = _mm256_and_si256(v, m4);
        sym[2 * c + 1] = _mm256_and_si256(_mm256_srli_epi16(v, 4), m4);
    } while (++c < block / 64);
}

EQ_INLINE void decode(int fmt, int block, const uint8_t *q, __m256i *sym) {
    switch (fmt) {
    case EQ_F_T2: decode_t2(q, sym); break;
    case EQ_F_T158: decode_t158(q, sym); break;
    case EQ_F_B1: decode_b1(q, sym); break;
    default: decode_q4(q, block, sym); break;
    }
}

/* Sum over the block of symbol * activation, as 8 int32 lanes. The int16 partial sums cannot
 * saturate: |sym| <= 15 and NVEC * 2 * 15 * 128 < 32768 for every format (VNNI sums in int32). */
EQ_INLINE __m256i dot_sym(const __m256i *sym, int nv, const int8_t *x) {
#ifdef EQ_VNNI
    /* two vpdpbusd chains (even / odd vectors) halve the dependency latency */
    __m256i s0 = _mm256_setzero_si256(), s1 = s0;
    int j;
    for (j = 0; j + 1 < nv; j += 2) {
        s0 = dot_u8s8(s0, sym[j], _mm256_loadu_si256((const __m256i *)(x + 32 * j)));
        s1 = dot_u8s8(s1, sym[j + 1], _mm256_loadu_si256((const __m256i *)(x + 32 * j + 32)));
    }
    if (j < nv) s0 = dot_u8s8(s0, sym[j], _mm256_loadu_si256((const __m256i *)(x + 32 * j)));
    return _mm256_add_epi32(s0, s1);
#else
    __m256i s = _mm256_maddubs_epi16(sym[0], _mm256_loadu_si256((const __m256i *)x));
    int j;
    for (j = 1; j < nv; j++)
        s = _mm256_add_epi16(s, _mm256_maddubs_epi16(sym[j], _mm256_loadu_si256((const __m256i *)(x + 32 * j))));
    return _mm256_madd_epi16(s, _mm256_set1_epi16(1));
#endif
}

#endif
