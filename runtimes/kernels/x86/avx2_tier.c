/* An x86 tier's kernel table (AVX2, or AVX-VNNI when built with -DEQ_VNNI) and the CPUID check that
 * allows it: AVX2 + F16C + POPCNT with OS-enabled YMM state, plus AVX-VNNI for the VNNI tier. */
#include <cpuid.h>

#include "avx2_util.h"

size_t EQ_X86(prep_bytes)(const eq_weights_t *w, int n);
void EQ_X86(prep)(const eq_weights_t *w, const int8_t *x, size_t stride, int n, void *prep);
size_t EQ_X86(i8_prep_bytes)(const eq_weights_t *w, int n);
void EQ_X86(i8_prep)(const eq_weights_t *w, const int8_t *x, size_t stride, int n, void *prep);
void EQ_X86(b1_xnor)(const eq_weights_t *w, const uint32_t *bits, size_t words_stride, int n, int r0, int r1,
                     int32_t *acc, size_t acc_stride);

#define DECLARE(name) void name(const eq_weights_t *w, const eq_acts_t *a, int r0, int r1, void *acc, size_t stride);
DECLARE(EQ_X86(t2_row_matvec))
DECLARE(EQ_X86(t2_row_gemm))
DECLARE(EQ_X86(t2_block_matvec))
DECLARE(EQ_X86(t2_block_gemm))
DECLARE(EQ_X86(t158_row_matvec))
DECLARE(EQ_X86(t158_row_gemm))
DECLARE(EQ_X86(t158_block_matvec))
DECLARE(EQ_X86(t158_block_gemm))
DECLARE(EQ_X86(b1_row_matvec))
DECLARE(EQ_X86(b1_row_gemm))
DECLARE(EQ_X86(q4_block_matvec))
DECLARE(EQ_X86(q4_block_gemm))
DECLARE(EQ_X86(i8_row_matvec))
DECLARE(EQ_X86(i8_row_gemm))
DECLARE(EQ_X86(i8_block_matvec))
DECLARE(EQ_X86(i8_block_gemm))

#define K(fn) {EQ_X86_TIER "/" #fn, EQ_X86(fn)}
#define NONE {NULL, NULL}

const eq_kernel_tier_t EQ_X86(tier) = {
    EQ_X86_TIER,
    {
        {EQ_X86(prep_bytes), EQ_X86(prep), {{K(t2_row_matvec), K(t2_row_gemm)}, {K(t2_block_matvec), K(t2_block_gemm)}},
         NULL, NULL},
        {EQ_X86(prep_bytes), EQ_X86(prep),
         {{K(t158_row_matvec), K(t158_row_gemm)}, {K(t158_block_matvec), K(t158_block_gemm)}}, NULL, NULL},
        {EQ_X86(prep_bytes), EQ_X86(prep), {{K(b1_row_matvec), K(b1_row_gemm)}, {NONE, NONE}}, EQ_X86_TIER "/b1_xnor",
         EQ_X86(b1_xnor)},
        {EQ_X86(prep_bytes), EQ_X86(prep), {{NONE, NONE}, {K(q4_block_matvec), K(q4_block_gemm)}}, NULL, NULL},
        {EQ_X86(i8_prep_bytes), EQ_X86(i8_prep), {{K(i8_row_matvec), K(i8_row_gemm)}, {K(i8_block_matvec), K(i8_block_gemm)}},
         NULL, NULL},
    },
};

int EQ_X86(cpu_ok)(void) {
    unsigned a, b, c, d, lo, hi;
    if (!__get_cpuid(1, &a, &b, &c, &d)) return 0;
    if (!(c & bit_OSXSAVE) || !(c & bit_F16C) || !(c & bit_POPCNT)) return 0;
    __asm__("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0)); /* OS saves XMM and YMM state */
    (void)hi;
    if ((lo & 6) != 6) return 0;
    if (!__get_cpuid_count(7, 0, &a, &b, &c, &d) || !(b & bit_AVX2)) return 0;
#ifdef EQ_VNNI
    if (!__get_cpuid_count(7, 1, &a, &b, &c, &d) || !(a & (1u << 4))) return 0; /* CPUID.(7,1):EAX[4] AVX-VNNI */
#endif
    return 1;
}
