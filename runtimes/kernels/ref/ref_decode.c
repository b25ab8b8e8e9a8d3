/* Reference block decoders: one block of packed codes -> its integer weight values (docs/formats.md). */
#include <string.h>

#include "ref.h"

float eq_f16_to_f32(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000u) << 16, exp = (h >> 10) & 0x1Fu, mant = h & 0x3FFu, bits;
    float f;
    if (exp == 0 && mant == 0) {
        bits = sign;
    } else if (exp == 0) { /* subnormal half: normalise into a normal single */
        exp = 113;
        while (!(mant & 0x400u)) {
            mant <<= 1;
            exp--;
        }
        bits = sign | (exp << 23) | ((mant & 0x3FFu) << 13);
    } else if (exp == 31) {
        bits = sign | 0x7F800000u | (mant << 13);
    } else {
        bits = sign | ((exp + 112) << 23) | (mant << 13);
    }
    memcpy(&f, &bits, sizeof f);
    return f;
}

/* IEEE single -> half, round to nearest even (overflow to inf, NaN kept quiet). */
uint16_t eq_f32_to_f16(float f) {
    uint32_t x, sign, mant;
    int32_t exp;
    memcpy(&x, &f, sizeof x);
    sign = (x >> 16) & 0x8000u;
    exp = (int32_t)((x >> 23) & 0xFF);
    mant = x & 0x7FFFFFu;
    if (exp == 0xFF) return (uint16_t)(sign | 0x7C00u | (mant ? 0x200u : 0));
    exp = exp - 127 + 15;
    if (exp >= 0x1F) return (uint16_t)(sign | 0x7C00u);
    if (exp <= 0) { /* subnormal half (or zero) */
        uint32_t shift, half, rest;
        if (exp < -10) return (uint16_t)sign;
        mant |= 0x800000u;
        shift = (uint32_t)(14 - exp);
        half = mant >> shift;
        rest = mant & ((1u << shift) - 1);
        if (rest > (1u << (shift - 1)) || (rest == (1u << (shift - 1)) && (half & 1))) half++;
        return (uint16_t)(sign | half);
    }
    {
        uint32_t h = sign | ((uint32_t)exp << 10) | (mant >> 13), rest = mant & 0x1FFFu;
        if (rest > 0x1000u || (rest == 0x1000u && (h & 1))) h++; /* a carry into the exponent is correct */
        return (uint16_t)h;
    }
}

/* T2: byte 32h+m holds, in bits 2l..2l+1, the code of x[128h + 32l + m]; value = code - 1. */
static void decode_t2(const uint8_t *q, int8_t *out) {
    int h, l, m;
    for (h = 0; h < 2; h++)
        for (l = 0; l < 4; l++)
            for (m = 0; m < 32; m++) out[128 * h + 32 * l + m] = (int8_t)(((q[32 * h + m] >> (2 * l)) & 3) - 1);
}

/* T158: three byte groups (first element, trits per byte, bytes); trit n of byte q is
 * ((uint8)(q * 3^n) * 3) >> 8 and sits at first + m + bytes * n. */
static void decode_t158(const uint8_t *q, int8_t *out) {
    static const int first[3] = {0, 160, 240}, trits[3] = {5, 5, 4}, width[3] = {32, 16, 4}, at[3] = {0, 32, 48};
    static const uint8_t pow3[5] = {1, 3, 9, 27, 81};
    int g, m, n;
    for (g = 0; g < 3; g++)
        for (m = 0; m < width[g]; m++)
            for (n = 0; n < trits[g]; n++) {
                uint8_t v = (uint8_t)(q[at[g] + m] * pow3[n]);
                out[first[g] + m + width[g] * n] = (int8_t)(((v * 3) >> 8) - 1);
            }
}

/* B1: bit i of the block (little-endian words) set = -1, clear = +1. */
static void decode_b1(const uint8_t *q, int8_t *out) {
    int i;
    for (i = 0; i < EDGEQ_B1_BLOCK; i++) out[i] = (int8_t)(((q[i >> 3] >> (i & 7)) & 1) ? -1 : 1);
}

/* Q4: byte j = x[2j] (low nibble), x[2j+1] (high nibble); value = u - zero point (8 if symmetric). */
static void decode_q4(const uint8_t *q, int block, int zero, int8_t *out) {
    int j;
    for (j = 0; j < block / 2; j++) {
        out[2 * j] = (int8_t)((q[j] & 15) - zero);
        out[2 * j + 1] = (int8_t)((q[j] >> 4) - zero);
    }
}

void eq_ref_decode_block(const eq_weights_t *w, int r, int b, int8_t *out) {
    const uint8_t *row = w->codes + (size_t)r * w->row_bytes;
    switch (w->format) {
    case EQ_F_T2: decode_t2(row + (size_t)b * EDGEQ_T2_CODE_BYTES, out); break;
    case EQ_F_T158: decode_t158(row + (size_t)b * EDGEQ_T158_CODE_BYTES, out); break;
    case EQ_F_B1: decode_b1(row + (size_t)b * EDGEQ_B1_CODE_BYTES, out); break;
    case EQ_F_Q4:
        decode_q4(row + (size_t)b * (size_t)(w->block / 2), w->block,
                  w->zeros ? w->zeros[(size_t)r * (size_t)w->n_blocks + (size_t)b] : 8, out);
        break;
    default: memcpy(out, row + (size_t)b * (size_t)w->block, (size_t)w->block); break;
    }
}
