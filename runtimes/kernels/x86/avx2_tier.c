/* The AVX2 tier's kernel table and the CPUID check that allows it (AVX2 + F16C + POPCNT, OS-enabled YMM). */
#include <cpuid.h>

#include "../kernels.h"

size_t eq_avx2_prep_bytes(const eq_weights_t *w, int n);
void eq_avx2_prep(const eq_weights_t *w, const int8_t *x, size_t stride, int n, void *prep);
size_t eq_avx2_i8_prep_bytes(const eq_weights_t *w, int n);
void eq_avx2_i8_prep(const eq_weights_t *w, const int8_t *x, size_t stride, int n, void *prep);
void eq_avx2_b1_xnor(const eq_weights_t *w, const uint32_t *bits, size_t words_stride, int n, int r0, int r1,
                     int32_t *acc, size_t acc_stride);

#define DECLARE(name) void name(const eq_weights_t *w, const eq_acts_t *a, int r0, int r1, void *acc, size_t stride);
DECLARE(eq_avx2_t2_row_matvec)
DECLARE(eq_avx2_t2_row_gemm)
DECLARE(eq_avx2_t2_block_matvec)
DECLARE(eq_avx2_t2_block_gemm)
DECLARE(eq_avx2_t158_row_matvec)
DECLARE(eq_avx2_t158_row_gemm)
DECLARE(eq_avx2_t158_block_matvec)
DECLARE(eq_avx2_t158_block_gemm)
DECLARE(eq_avx2_b1_row_matvec)
DECLARE(eq_avx2_b1_row_gemm)
DECLARE(eq_avx2_q4_block_matvec)
DECLARE(eq_avx2_q4_block_gemm)
DECLARE(eq_avx2_i8_row_matvec)
DECLARE(eq_avx2_i8_row_gemm)

#define K(fn) {"avx2/" #fn, eq_avx2_##fn}
#define NONE {NULL, NULL}

const eq_kernel_tier_t eq_avx2_tier = {
    "avx2",
    {
        {eq_avx2_prep_bytes, eq_avx2_prep, {{K(t2_row_matvec), K(t2_row_gemm)}, {K(t2_block_matvec), K(t2_block_gemm)}},
         NULL, NULL},
        {eq_avx2_prep_bytes, eq_avx2_prep,
         {{K(t158_row_matvec), K(t158_row_gemm)}, {K(t158_block_matvec), K(t158_block_gemm)}}, NULL, NULL},
        {eq_avx2_prep_bytes, eq_avx2_prep, {{K(b1_row_matvec), K(b1_row_gemm)}, {NONE, NONE}}, "avx2/b1_xnor",
         eq_avx2_b1_xnor},
        {eq_avx2_prep_bytes, eq_avx2_prep, {{NONE, NONE}, {K(q4_block_matvec), K(q4_block_gemm)}}, NULL, NULL},
        {eq_avx2_i8_prep_bytes, eq_avx2_i8_prep, {{K(i8_row_matvec), K(i8_row_gemm)}, {NONE, NONE}}, NULL, NULL},
    },
};

int eq_cpu_has_avx2(void) {
    unsigned a, b, c, d, lo, hi;
    if (!__get_cpuid(1, &a, &b, &c, &d)) return 0;
    if (!(c & bit_OSXSAVE) || !(c & bit_F16C) || !(c & bit_POPCNT)) return 0;
    __asm__("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0)); /* OS saves XMM and YMM state */
    (void)hi;
    if ((lo & 6) != 6) return 0;
    if (!__get_cpuid_count(7, 0, &a, &b, &c, &d)) return 0;
    return (b & bit_AVX2) != 0;
}
