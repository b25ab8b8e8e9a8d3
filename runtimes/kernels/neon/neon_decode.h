/*
 * NEON block decoders: one block of codes -> block/16 vectors of 16 int8 symbols, vector j lined up
 * with the 16 activations at (block start + 16 j) of the kernel's activation row (Q4: the row that
 * prep() deinterleaved). The weight value is a per-format affine function of the symbol, corrected
 * once per block with the activation sum (neon_dot.c).
 */
#ifndef EDGEQ_NEON_DECODE_H
#define EDGEQ_NEON_DECODE_H

#include "neon_util.h"

#define NSYM_MAX 16

EQ_INLINE int nsym(int block) { return block / 16; }

EQ_INLINE size_t code_bytes(int fmt, int block) {
    return fmt == EQ_F_T2 ? 64 : fmt == EQ_F_T158 ? 52 : fmt == EQ_F_B1 ? 8 : (size_t)block / 2;
}

/* T2: symbol = 2-bit code c (value c - 1). Bytes 32h..32h+31, crumb l -> x[128h + 32l + 0..31]. */
EQ_INLINE void decode_t2(const uint8_t *q, int8x16_t *sym) {
    const uint8x16_t m3 = vdupq_n_u8(3);
    int h, j;
    for (h = 0; h < 2; h++)
        for (j = 0; j < 2; j++) {
            uint8x16_t v = ldu16(q + 32 * h + 16 * j);
            sym[8 * h + j] = vreinterpretq_s8_u8(vandq_u8(v, m3));
            sym[8 * h + 2 + j] = vreinterpretq_s8_u8(vandq_u8(vshrq_n_u8(v, 2), m3));
            sym[8 * h + 4 + j] = vreinterpretq_s8_u8(vandq_u8(vshrq_n_u8(v, 4), m3));
            sym[8 * h + 6 + j] = vreinterpretq_s8_u8(vshrq_n_u8(v, 6));
        }
}

/* Top trit of a byte, (3 v) >> 8, exactly: uhadd(v, v >> 1) = floor(3 v / 4), then >> 6. */
EQ_INLINE int8x16_t top_trit(uint8x16_t v) {
    return vreinterpretq_s8_u8(vshrq_n_u8(vhaddq_u8(v, vshrq_n_u8(v, 1)), 6));
}

/* T158: symbol = trit t (value t - 1); trit n of byte q is the top trit of (q * 3^n mod 256).
 * Bytes 0..31 give x[32n + m], bytes 32..47 x[160 + 16n + m], bytes 48..51 x[240 + 4n + m]. */
EQ_INLINE void decode_t158(const uint8_t *q, int8x16_t *sym) {
    static const uint8_t tail_mul[16] = {1, 1, 1, 1, 3, 3, 3, 3, 9, 9, 9, 9, 27, 27, 27, 27};
    const uint8x16_t a = ldu16(q), b = ldu16(q + 16), c = ldu16(q + 32);
    uint32_t t;
    int n;
    uint8_t pow3 = 1;
    for (n = 0; n < 5; n++, pow3 = (uint8_t)(pow3 * 3)) {
        const uint8x16_t p = vdupq_n_u8(pow3);
        sym[2 * n] = top_trit(vmulq_u8(a, p));
        sym[2 * n + 1] = top_trit(vmulq_u8(b, p));
        sym[10 + n] = top_trit(vmulq_u8(c, p));
    }
    memcpy(&t, q + 48, 4);
    sym[15] = top_trit(vmulq_u8(vreinterpretq_u8_u32(vdupq_n_u32(t)), vld1q_u8(tail_mul)));
}

/* B1: symbol = -bit (value 1 - 2 bit = 1 + 2 symbol); vector k = bits 16k..16k+15 as 0 / -1 bytes. */
EQ_INLINE void decode_b1(const uint8_t *q, int8x16_t *sym) {
    static const uint8_t bit[16] = {1, 2, 4, 8, 16, 32, 64, 128, 1, 2, 4, 8, 16, 32, 64, 128};
    const uint8x8_t v = vld1_u8(q);
    const uint8x16_t both = vcombine_u8(v, v), mask = vld1q_u8(bit);
    int k;
    for (k = 0; k < 4; k++) {
        const uint8x16_t spread = vcombine_u8(vdup_n_u8((uint8_t)(2 * k)), vdup_n_u8((uint8_t)(2 * k + 1)));
        sym[k] = vreinterpretq_s8_u8(vtstq_u8(vqtbl1q_u8(both, spread), mask));
    }
}

/* Q4: symbol = nibble u (value u - zero point); 16 bytes -> low nibbles (even elements), high nibbles
 * (odd elements); prep() deinterleaves each 32 activations the same way. */
EQ_INLINE void decode_q4(const uint8_t *q, int block, int8x16_t *sym) {
    int c;
    for (c = 0; c < block / 32; c++) {
        const uint8x16_t v = ldu16(q + 16 * c);
        sym[2 * c] = vreinterpretq_s8_u8(vandq_u8(v, vdupq_n_u8(15)));
        sym[2 * c + 1] = vreinterpretq_s8_u8(vshrq_n_u8(v, 4));
    }
}

EQ_INLINE void decode(int fmt, int block, const uint8_t *q, int8x16_t *sym) {
    switch (fmt) {
    case EQ_F_T2: decode_t2(q, sym); break;
    case EQ_F_T158: decode_t158(q, sym); break;
    case EQ_F_B1: decode_b1(q, sym); break;
    default: decode_q4(q, block, sym); break;
    }
}

/* acc + sum over the block of symbol * activation (|symbol| <= 15: dot16 is exact). */
EQ_INLINE int32x4_t dot_sym(int32x4_t acc, const int8x16_t *sym, int ns, const int8_t *x) {
    int j;
    for (j = 0; j < ns; j++) acc = dot16(acc, sym[j], ld16(x + 16 * j));
    return acc;
}

#endif
