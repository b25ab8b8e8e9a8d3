/*
 * Reference kernels: plain C, the truth every optimised tier is checked against.
 * One weight row times one int8 activation row, per docs/numerics.md.
 */
#include "ref_kernels.h"

#include <string.h>

float edgeq_half_to_float(uint16_t h) {
    uint32_t sign = (uint32_t)(h >> 15) << 31;
    uint32_t exp = (h >> 10) & 0x1f;
    uint32_t man = h & 0x3ff;
    uint32_t bits;
    float f;
    if (exp == 0) {
        if (man == 0) {
            bits = sign;
        } else { /* subnormal: normalise */
            exp = 127 - 15 + 1;
            while (!(man & 0x400)) {
                man <<= 1;
                exp--;
            }
            bits = sign | (exp << 23) | ((man & 0x3ff) << 13);
        }
    } else if (exp == 31) {
        bits = sign | 0x7f800000u | (man << 13);
    } else {
        bits = sign | ((exp + 127 - 15) << 23) | (man << 13);
    }
    memcpy(&f, &bits, sizeof f);
    return f;
}

/* Integer values of one block of codes into out[block]. */
static void decode_block(int format, const uint8_t *codes, int block, int zero, int8_t *out) {
    int i, j, n;
    switch (format) {
    case EDGEQ_FMT_T2:
        for (j = 0; j < 64; j++) {
            int half = j / 32, m = j % 32;
            for (n = 0; n < 4; n++) out[128 * half + 32 * n + m] = (int8_t)(((codes[j] >> (2 * n)) & 3) - 1);
        }
        break;
    case EDGEQ_FMT_T158: {
        static const uint8_t mul[5] = {1, 3, 9, 27, 81};
        for (j = 0; j < 32; j++)
            for (n = 0; n < 5; n++)
                out[j + 32 * n] = (int8_t)((((uint8_t)(codes[j] * mul[n])) * 3 >> 8) - 1);
        for (j = 0; j < 16; j++)
            for (n = 0; n < 5; n++)
                out[160 + j + 16 * n] = (int8_t)((((uint8_t)(codes[32 + j] * mul[n])) * 3 >> 8) - 1);
        for (j = 0; j < 4; j++)
            for (n = 0; n < 4; n++)
                out[240 + j + 4 * n] = (int8_t)((((uint8_t)(codes[48 + j] * mul[n])) * 3 >> 8) - 1);
        break;
    }
    case EDGEQ_FMT_B1:
        for (i = 0; i < block; i++) out[i] = (codes[i / 8] >> (i % 8)) & 1 ? -1 : 1;
        break;
    case EDGEQ_FMT_Q4:
        for (i = 0; i < block / 2; i++) {
            out[2 * i] = (int8_t)((codes[i] & 15) - zero);
            out[2 * i + 1] = (int8_t)((codes[i] >> 4) - zero);
        }
        break;
    default: /* I8 */
        memcpy(out, codes, (size_t)block);
        break;
    }
}

int32_t edgeq_ref_block_dot(int format, const uint8_t *codes, int block, int zero, const int8_t *x) {
    int8_t w[256];
    int32_t acc = 0;
    int i;
    decode_block(format, codes, block, zero, w);
    for (i = 0; i < block; i++) acc += (int32_t)w[i] * x[i];
    return acc;
}

void edgeq_ref_row(const edgeq_weight_t *w, int row, const int8_t *x, int32_t *acc, float *accf) {
    const uint8_t *codes = w->codes + (size_t)row * w->row_bytes;
    int b, zero = w->format == EDGEQ_FMT_Q4 ? 8 : 0;
    int32_t sum = 0;
    float f = 0.0f;
    for (b = 0; b < w->n_blocks; b++) {
        int z = w->zeros ? w->zeros[(size_t)row * w->n_blocks + b] : zero;
        int32_t isum = edgeq_ref_block_dot(w->format, codes + (size_t)b * w->code_bytes, w->block, z,
                                           x + (size_t)b * w->block);
        if (w->scale_kind == EDGEQ_SCALE_BLOCK) {
            float d = edgeq_half_to_float(w->scales16[(size_t)row * w->n_blocks + b]);
            f = f + d * (float)isum;
        } else {
            sum += isum;
        }
    }
    *acc = sum;
    *accf = f;
}

int32_t edgeq_ref_xnor_row(const edgeq_weight_t *w, int row, const uint32_t *x_bits, int cols) {
    const uint32_t *wb = (const uint32_t *)(const void *)(w->codes + (size_t)row * w->row_bytes);
    int words = w->row_bytes / 4, i, pop = 0;
    for (i = 0; i < words; i++) {
        uint32_t v = wb[i] ^ x_bits[i];
        while (v) {
            v &= v - 1;
            pop++;
        }
    }
    return cols - 2 * pop;
}
