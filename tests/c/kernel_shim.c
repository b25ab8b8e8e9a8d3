/* Test-only shim: calls one kernel of one tier on caller buffers, so pytest can compare tiers with
 * each other and with the numpy reference (tests/test_kernels.py). Not part of libedgeq. */
#include <stdlib.h>

#include "kernels.h"

#define SHIM_API __attribute__((visibility("default")))

static const eq_kernel_tier_t *tier_by_index(int tier) {
    if (tier == 0) return &eq_ref_tier;
#if defined(__x86_64__)
    if (tier == 1 && eq_avx2_cpu_ok()) return &eq_avx2_tier;
    if (tier == 2 && eq_vnni_cpu_ok()) return &eq_vnni_tier;
#endif
#if defined(__aarch64__)
    if (tier == 3 && eq_neon_cpu_ok()) return &eq_neon_tier;
    if (tier == 4 && eq_neon_dotprod_cpu_ok()) return &eq_neon_dotprod_tier;
    if (tier == 5 && eq_neon_i8mm_cpu_ok()) return &eq_neon_i8mm_tier;
#endif
    return NULL;
}

static eq_weights_t weights(int fmt, int acc_kind, int block, int rows, int cols, size_t row_bytes,
                            const uint8_t *codes, const void *scales, const uint8_t *zeros) {
    eq_weights_t w;
    w.format = fmt;
    w.acc_kind = acc_kind;
    w.block = block;
    w.rows = rows;
    w.cols = cols;
    w.n_blocks = (cols + block - 1) / block;
    w.padded_cols = w.n_blocks * block;
    w.row_bytes = row_bytes;
    w.codes = codes;
    w.scales = scales;
    w.zeros = zeros;
    w.layout = 0;
    w.packed = NULL;
    return w;
}

/* Returns the kernel's name, or NULL when the tier has no such kernel. x is [n][padded_cols]. layout:
 * EDGEQ_LAYOUT_* of codes, scales and zeros (1 = ROWS4: the tier's rows4 kernels, if it has them). */
SHIM_API const char *eqt_dot_layout(int tier, int fmt, int acc_kind, int block, int rows, int cols, size_t row_bytes,
                                    const uint8_t *codes, const void *scales, const uint8_t *zeros, const int8_t *x,
                                    int n, int r0, int r1, void *acc, int layout) {
    const eq_kernel_tier_t *t = tier_by_index(tier);
    const eq_format_kernels_t *k;
    const eq_dot_kernel_t *dot;
    eq_weights_t w = weights(fmt, acc_kind, block, rows, cols, row_bytes, codes, scales, zeros);
    eq_acts_t a;
    void *prep = NULL;
    if (!t || n < 1 || n > EQ_MAX_N) return NULL;
    w.layout = layout;
    k = layout ? eq_rows4_kernels(t, fmt) : &t->fmt[fmt];
    if (!k) return NULL;
    dot = &k->dot[acc_kind][n > 1];
    if (!dot->fn) return NULL;
    if (k->prep_bytes) {
        prep = malloc(k->prep_bytes(&w, n) + 1);
        k->prep(&w, x, (size_t)w.padded_cols, n, prep);
    }
    a.x = x;
    a.stride = (size_t)w.padded_cols;
    a.n = n;
    a.prep = prep;
    dot->fn(&w, &a, r0, r1, acc, (size_t)rows);
    free(prep);
    return dot->name;
}

SHIM_API const char *eqt_dot(int tier, int fmt, int acc_kind, int block, int rows, int cols, size_t row_bytes,
                             const uint8_t *codes, const void *scales, const uint8_t *zeros, const int8_t *x, int n,
                             int r0, int r1, void *acc) {
    return eqt_dot_layout(tier, fmt, acc_kind, block, rows, cols, row_bytes, codes, scales, zeros, x, n, r0, r1, acc, 0);
}

SHIM_API const char *eqt_xnor(int tier, int rows, int cols, size_t row_bytes, const uint8_t *codes,
                              const uint32_t *bits, int n, int r0, int r1, int32_t *acc) {
    const eq_kernel_tier_t *t = tier_by_index(tier);
    eq_weights_t w = weights(EQ_F_B1, EQ_ACC_ROW, 64, rows, cols, row_bytes, codes, NULL, NULL);
    if (!t || !t->fmt[EQ_F_B1].xnor) return NULL;
    t->fmt[EQ_F_B1].xnor(&w, bits, (size_t)w.padded_cols / 32, n, r0, r1, acc, (size_t)rows);
    return t->fmt[EQ_F_B1].xnor_name;
}

#if defined(__aarch64__)
/* The tier's lookup-table mat-vec (n == 1): pack the weights as the runtime does at load, then `calls`
 * times build the call's tables and run (instruction counts difference calls). NULL when the tier has
 * no such kernel (aarch64 tiers only). */
SHIM_API const char *eqt_lut(int tier, int fmt, int acc_kind, int block, int rows, int cols, size_t row_bytes,
                             const uint8_t *codes, const void *scales, const int8_t *x, int r0, int r1, void *acc,
                             int calls) {
    const eq_kernel_tier_t *t = tier_by_index(tier);
    const eq_lut_kernels_t *k;
    eq_weights_t w = weights(fmt, acc_kind, block, rows, cols, row_bytes, codes, scales, NULL);
    eq_acts_t a;
    void *packed, *prep;
    if (t != &eq_neon_tier && t != &eq_neon_dotprod_tier) return NULL;
    k = &(t == &eq_neon_tier ? eq_neon_lut : eq_neon_dotprod_lut)[fmt];
    if (!k->pack_bytes) return NULL; /* "" below: the weights are not ternary, nothing ran */
    packed = malloc(k->pack_bytes(&w) + 1);
    if (!packed || !k->pack(&w, packed)) {
        free(packed);
        return "";
    }
    w.packed = packed;
    prep = malloc(k->prep_bytes(&w, 1) + 1);
    a.x = x;
    a.stride = (size_t)w.padded_cols;
    a.n = 1;
    a.prep = prep;
    while (calls-- > 0) {
        k->prep(&w, x, (size_t)w.padded_cols, 1, prep);
        k->matvec[acc_kind].fn(&w, &a, r0, r1, acc, (size_t)rows);
    }
    free(prep);
    free(packed);
    return k->matvec[acc_kind].name;
}
#endif
