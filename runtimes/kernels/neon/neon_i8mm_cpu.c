/* Whether the ARMv8.6 i8mm tier (neon_i8mm.c) may run. Built for plain ARMv8.0 like the rest of the
 * runtime, so the check itself runs on any core (a Cortex-A53 or A76 must get "no", never SIGILL). */
#include "../kernels.h"

#if defined(__linux__) && !defined(EDGEQ_FREESTANDING)
#include <sys/auxv.h>
#ifndef HWCAP_ASIMDDP
#define HWCAP_ASIMDDP (1 << 20)
#endif
#ifndef HWCAP2_I8MM
#define HWCAP2_I8MM (1 << 13)
#endif
#endif

/* The tier also runs the dotprod tier's mat-vec kernels: it needs SDOT as well as SMMLA. */
int eq_neon_i8mm_cpu_ok(void) {
#if defined(EDGEQ_FREESTANDING)
    /* No libc (no getauxval): ID_AA64ISAR0/1_EL1, emulated for user space by Linux (HWCAP_CPUID) and
     * qemu-user. ISAR0.DP (bits 47:44) is nonzero with SDOT, ISAR1.I8MM (bits 55:52) with SMMLA. */
    uint64_t isar0, isar1;
    __asm__("mrs %0, ID_AA64ISAR0_EL1" : "=r"(isar0));
    __asm__("mrs %0, ID_AA64ISAR1_EL1" : "=r"(isar1));
    return ((isar0 >> 44) & 0xF) != 0 && ((isar1 >> 52) & 0xF) != 0;
#elif defined(__linux__)
    return (getauxval(AT_HWCAP) & HWCAP_ASIMDDP) != 0 && (getauxval(AT_HWCAP2) & HWCAP2_I8MM) != 0;
#else
    return 0; /* no way to ask: the dotprod tier is chosen instead */
#endif
}
