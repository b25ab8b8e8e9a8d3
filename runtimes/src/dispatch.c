/* Kernel tier selection: the best tier this CPU and build support (or the one asked for), and per
 * format/scale kind the tier's kernel where it has one, else the reference kernel. */
#include "internal.h"

edgeq_status_t eq_select_tier(uint32_t requested, const eq_kernel_tier_t **tier, edgeq_diag_t *diag) {
    *tier = &eq_ref_tier;
    if (requested == EDGEQ_TIER_REF) return EDGEQ_OK;
#if defined(__x86_64__) || defined(__i386__)
    if ((requested == EDGEQ_TIER_AUTO || requested == EDGEQ_TIER_AVXVNNI) && eq_vnni_cpu_ok()) {
        *tier = &eq_vnni_tier;
        return EDGEQ_OK;
    }
    if ((requested == EDGEQ_TIER_AUTO || requested == EDGEQ_TIER_AVX2) && eq_avx2_cpu_ok()) {
        *tier = &eq_avx2_tier;
        return EDGEQ_OK;
    }
#endif
#if defined(__ARM_FEATURE_MVE)
    if (requested == EDGEQ_TIER_AUTO) { /* the build targets a core with Helium */
        *tier = &eq_cm_mve_tier;
        return EDGEQ_OK;
    }
#elif defined(__ARM_FEATURE_DSP) && !defined(__aarch64__)
    if (requested == EDGEQ_TIER_AUTO) { /* the build targets a core with the DSP extension */
        *tier = &eq_cm_dsp_tier;
        return EDGEQ_OK;
    }
#endif
#if defined(__aarch64__)
    if ((requested == EDGEQ_TIER_AUTO || requested == EDGEQ_TIER_NEON_I8MM) && eq_neon_i8mm_cpu_ok()) {
        *tier = &eq_neon_i8mm_tier;
        return EDGEQ_OK;
    }
    if ((requested == EDGEQ_TIER_AUTO || requested == EDGEQ_TIER_NEON_DOTPROD) && eq_neon_dotprod_cpu_ok()) {
        *tier = &eq_neon_dotprod_tier;
        return EDGEQ_OK;
    }
    if ((requested == EDGEQ_TIER_AUTO || requested == EDGEQ_TIER_NEON) && eq_neon_cpu_ok()) {
        *tier = &eq_neon_tier;
        return EDGEQ_OK;
    }
#endif
    if (requested == EDGEQ_TIER_AUTO) return EDGEQ_OK;
    return eq_fail(diag, EDGEQ_E_TIER, "kernel tier %u is not available on this CPU or build", requested);
}

const eq_dot_kernel_t *eq_dot_kernel(const eq_kernel_tier_t *tier, const eq_weights_t *w, int n) {
    const eq_dot_kernel_t *k = &eq_format_kernels(tier, w)->dot[w->acc_kind][n > 1];
    return k->fn ? k : &eq_ref_tier.fmt[w->format].dot[w->acc_kind][n > 1];
}

const eq_lut_kernels_t *eq_lut_kernels(const eq_kernel_tier_t *tier, int fmt) {
    const eq_lut_kernels_t *k = NULL;
#if defined(__aarch64__)
    if (tier == &eq_neon_tier) k = &eq_neon_lut[fmt];
    if (tier == &eq_neon_dotprod_tier || tier == &eq_neon_i8mm_tier) k = &eq_neon_dotprod_lut[fmt]; /* i8mm: SDOT mat-vec */
#endif
    (void)tier;
    (void)fmt;
    return k && k->pack_bytes ? k : NULL;
}
