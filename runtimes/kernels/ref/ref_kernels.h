/* Reference kernel interface: a weight tensor resolved from the blob, and row dot products. */
#ifndef EDGEQ_REF_KERNELS_H
#define EDGEQ_REF_KERNELS_H

#include <stdint.h>

#include "edgeq/edgeq_blob.h"

typedef struct {
    int format, block, scale_kind, rows, cols, n_blocks, code_bytes, row_bytes;
    const uint8_t *codes;
    const uint16_t *scales16; /* SCALE_BLOCK */
    const float *scales32;    /* SCALE_ROW */
    const uint8_t *zeros;     /* Q4 asymmetric, else NULL */
} edgeq_weight_t;

float edgeq_half_to_float(uint16_t h);
int32_t edgeq_ref_block_dot(int format, const uint8_t *codes, int block, int zero, const int8_t *x);
/* Row `row` times x (int8, padded with 0 to n_blocks*block): int32 sum (SCALE_ROW) or the fp32
 * block-ordered combine (SCALE_BLOCK). */
void edgeq_ref_row(const edgeq_weight_t *w, int row, const int8_t *x, int32_t *acc, float *accf);
/* B1 weights x B1 activations: cols - 2 * popcount(w XOR x). */
int32_t edgeq_ref_xnor_row(const edgeq_weight_t *w, int row, const uint32_t *x_bits, int cols);

#endif
