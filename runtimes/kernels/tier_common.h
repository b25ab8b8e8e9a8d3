/*
 * Plain-C pieces every SIMD tier's dot kernels share (kernels/x86, kernels/neon): the view of a call's
 * activations after prep() and the per-row activation total the affine symbol correction needs.
 */
#ifndef EDGEQ_TIER_COMMON_H
#define EDGEQ_TIER_COMMON_H

#include <stddef.h>
#include <stdint.h>

#include "kernels.h"

#define EQ_INLINE static inline __attribute__((always_inline))

EQ_INLINE size_t align64(size_t n) { return (n + 63) & ~(size_t)63; }

typedef struct {
    const int32_t *xsum; /* [n][n_blocks] */
    const int8_t *x;     /* rows the symbols line up with (Q4: the tier's reordered copy) */
    size_t stride;
} acts_view_t;

/* prep() leaves per-block activation sums first; Q4's reordered activation rows follow them. */
EQ_INLINE acts_view_t view(const eq_weights_t *w, const eq_acts_t *a) {
    acts_view_t v;
    v.xsum = (const int32_t *)a->prep;
    if (w->format == EQ_F_Q4) {
        v.x = (const int8_t *)a->prep + align64((size_t)a->n * (size_t)w->n_blocks * sizeof(int32_t));
        v.stride = (size_t)w->padded_cols;
    } else {
        v.x = a->x;
        v.stride = a->stride;
    }
    return v;
}

EQ_INLINE uint32_t total(const int32_t *xsum, int nb) {
    uint32_t t = 0;
    int b;
    for (b = 0; b < nb; b++) t += (uint32_t)xsum[b];
    return t;
}

#endif
