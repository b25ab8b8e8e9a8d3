/* Small NEON helpers shared by the aarch64 kernels. This directory builds two tiers from one source:
 * plain ARMv8.0 NEON, and ARMv8.2 dotprod (-march=armv8.2-a+dotprod -DEQ_DOTPROD, where an int8 x int8
 * dot product of 4 lanes is one SDOT). EQ_ARM(name) names a symbol of the tier being built. */
#ifndef EDGEQ_NEON_UTIL_H
#define EDGEQ_NEON_UTIL_H

#include <arm_neon.h>
#include <stdint.h>
#include <string.h>

#include "../tier_common.h"


#ifdef EQ_DOTPROD
#define EQ_ARM(name) eq_neon_dotprod_##name
#define EQ_ARM_TIER "neon_dotprod"
#else
#define EQ_ARM(name) eq_neon_##name
#define EQ_ARM_TIER "neon"
#endif

/* acc + per-4-byte sums of products of 16 int8 pairs. Without SDOT: widening multiply, pairwise add
 * of two int16 products, then pairwise accumulate into int32 -- exact while |w| * 128 * 2 < 32768,
 * which every caller keeps (|w| <= 48); I8 weights use dot16_wide. The lanes differ between the two
 * tiers, their sum does not. */
EQ_INLINE int32x4_t dot16(int32x4_t acc, int8x16_t w, int8x16_t x) {
#ifdef EQ_DOTPROD
    return vdotq_s32(acc, w, x);
#else
    int16x8_t p = vmull_s8(vget_low_s8(w), vget_low_s8(x));
    p = vmlal_high_s8(p, w, x);
    return vpadalq_s16(acc, p);
#endif
}

/* dot16 for any int8 pair (I8 weights: -128 * -128 twice would overflow an int16 pair sum). */
EQ_INLINE int32x4_t dot16_wide(int32x4_t acc, int8x16_t w, int8x16_t x) {
#ifdef EQ_DOTPROD
    return vdotq_s32(acc, w, x);
#else
    acc = vpadalq_s16(acc, vmull_s8(vget_low_s8(w), vget_low_s8(x)));
    return vpadalq_s16(acc, vmull_high_s8(w, x));
#endif
}

EQ_INLINE int8x16_t ld16(const int8_t *p) { return vld1q_s8(p); }
EQ_INLINE uint8x16_t ldu16(const uint8_t *p) { return vld1q_u8(p); }

/* The four lanes of a, b, c, d each summed: lane k = sum of the k-th vector. */
EQ_INLINE int32x4_t reduce4(int32x4_t a, int32x4_t b, int32x4_t c, int32x4_t d) {
    return vpaddq_s32(vpaddq_s32(a, b), vpaddq_s32(c, d));
}

#endif
