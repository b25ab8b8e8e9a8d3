/* An aarch64 tier's I8 and XNOR kernels, its kernel table (NEON, or dotprod when built with
 * -DEQ_DOTPROD) and the HWCAP check that allows it (Linux reports the core's features in the aux vector;
 * qemu-user reports those of its -cpu model). */
#include "neon_util.h"

#if defined(__linux__) && !defined(EDGEQ_FREESTANDING)
#include <sys/auxv.h>
#ifndef HWCAP_ASIMD
#define HWCAP_ASIMD (1 << 1)
#endif
#ifndef HWCAP_ASIMDDP
#define HWCAP_ASIMDDP (1 << 20)
#endif
#endif

/* I8 (SCALE_ROW): four rows at a time share each activation load (the last group repeats its final row). */
void EQ_ARM(i8_row_matvec)(const eq_weights_t *w, const eq_acts_t *a, int r0, int r1, void *acc, size_t acc_stride) {
    const int kp = w->padded_cols;
    int r, k, i;
    (void)acc_stride;
    for (r = r0; r < r1; r += 4) {
        const int8_t *row[4];
        int32x4_t s[4];
        int32_t lanes[4];
        for (i = 0; i < 4; i++) {
            row[i] = (const int8_t *)w->codes + (size_t)(r + i < r1 ? r + i : r1 - 1) * w->row_bytes;
            s[i] = vdupq_n_s32(0);
        }
        for (k = 0; k < kp; k += 16) {
            const int8x16_t x = ld16(a->x + k);
            for (i = 0; i < 4; i++) s[i] = dot16_wide(s[i], ld16(row[i] + k), x);
        }
        vst1q_s32(lanes, vpaddq_s32(vpaddq_s32(s[0], s[1]), vpaddq_s32(s[2], s[3])));
        for (i = 0; i < 4 && r + i < r1; i++) ((int32_t *)acc)[r + i] = lanes[i];
    }
}

/* One row at a time, reused (from L1) for every activation row. */
static void i8_gemm(const eq_weights_t *w, const eq_acts_t *a, int r0, int r1, void *acc, size_t acc_stride) {
    const int kp = w->padded_cols;
    int r, k, i;
    for (r = r0; r < r1; r++) {
        const int8_t *row = (const int8_t *)w->codes + (size_t)r * w->row_bytes;
        for (i = 0; i < a->n; i++) {
            const int8_t *xi = a->x + (size_t)i * a->stride;
            int32x4_t s = vdupq_n_s32(0);
            for (k = 0; k < kp; k += 16) s = dot16_wide(s, ld16(row + k), ld16(xi + k));
            ((int32_t *)acc)[(size_t)i * acc_stride + (size_t)r] = vaddvq_s32(s);
        }
    }
}

/* I8 with fp16 scales per 32 (GGUF Q8_0): four rows in the lanes; per block their integer sums come out
 * of one reduce4 and each lane adds d * isum in block order -- the reference's own arithmetic. */
void EQ_ARM(i8_block)(const eq_weights_t *w, const eq_acts_t *a, int r0, int r1, void *acc, size_t acc_stride) {
    int r, b, i, l;
    for (i = 0; i < a->n; i++) {
        const int8_t *x = a->x + (size_t)i * a->stride;
        for (r = r0; r < r1; r += 4) {
            const int8_t *row[4];
            const uint16_t *d[4];
            float32x4_t sum = vdupq_n_f32(0.0f);
            float out[4];
            for (l = 0; l < 4; l++) {
                int rr = r + l < r1 ? r + l : r1 - 1;
                row[l] = (const int8_t *)w->codes + (size_t)rr * w->row_bytes;
                d[l] = (const uint16_t *)w->scales + (size_t)rr * (size_t)w->n_blocks;
            }
            for (b = 0; b < w->n_blocks; b++) {
                const int k = 32 * b;
                const int8x16_t x0 = ld16(x + k), x1 = ld16(x + k + 16);
                int32x4_t s[4];
                uint16_t h[4];
                for (l = 0; l < 4; l++) {
                    s[l] = dot16_wide(dot16_wide(vdupq_n_s32(0), ld16(row[l] + k), x0), ld16(row[l] + k + 16), x1);
                    h[l] = d[l][b];
                }
                sum = vaddq_f32(sum, vmulq_f32(vcvt_f32_f16(vreinterpret_f16_u16(vld1_u16(h))),
                                               vcvtq_f32_s32(reduce4(s[0], s[1], s[2], s[3]))));
            }
            vst1q_f32(out, sum);
            for (l = 0; l < 4 && r + l < r1; l++) ((float *)acc)[(size_t)i * acc_stride + (size_t)(r + l)] = out[l];
        }
    }
}

/* Mismatching bits of w and x over `bytes` (a multiple of 8): EOR, CNT, pairwise accumulate. */
static uint32_t mismatches(const uint8_t *w, const uint8_t *x, size_t bytes) {
    uint32x4_t total = vdupq_n_u32(0);
    uint32_t tail = 0;
    size_t k = 0;
    while (k + 16 <= bytes) {
        uint16x8_t s = vdupq_n_u16(0);
        size_t end = k + 16 * 2048 < bytes ? k + 16 * 2048 : bytes; /* 2048 * 16 < 65536: no u16 overflow */
        for (; k + 16 <= end; k += 16) s = vpadalq_u8(s, vcntq_u8(veorq_u8(vld1q_u8(w + k), vld1q_u8(x + k))));
        total = vpadalq_u16(total, s);
    }
    if (k < bytes) /* rows are whole 64-bit words */
        tail = vaddv_u8(vcnt_u8(veor_u8(vld1_u8(w + k), vld1_u8(x + k))));
    return vaddvq_u32(total) + tail;
}

/* Mismatching bits of the padding (bits cols..padded_cols of the last 64-bit word), not counted. */
static uint32_t padding_mismatches(const uint8_t *w, const uint8_t *x, int cols, int padded_cols) {
    uint64_t a, b;
    if (cols == padded_cols) return 0;
    memcpy(&a, w + padded_cols / 8 - 8, 8);
    memcpy(&b, x + padded_cols / 8 - 8, 8);
    return (uint32_t)__builtin_popcountll((a ^ b) & ~((1ull << (cols % 64)) - 1ull));
}

void EQ_ARM(b1_xnor)(const eq_weights_t *w, const uint32_t *bits, size_t words_stride, int n, int r0, int r1,
                     int32_t *acc, size_t acc_stride) {
    const size_t bytes = (size_t)w->padded_cols / 8;
    int r, i;
    for (r = r0; r < r1; r++)
        for (i = 0; i < n; i++) {
            const uint8_t *row = w->codes + (size_t)r * w->row_bytes;
            const uint8_t *x = (const uint8_t *)(bits + (size_t)i * words_stride);
            uint32_t differ = mismatches(row, x, bytes) - padding_mismatches(row, x, w->cols, w->padded_cols);
            acc[(size_t)i * acc_stride + (size_t)r] = w->cols - 2 * (int32_t)differ;
        }
}

size_t EQ_ARM(prep_bytes)(const eq_weights_t *w, int n);
void EQ_ARM(prep)(const eq_weights_t *w, const int8_t *x, size_t stride, int n, void *prep);

#define DECLARE(name) void name(const eq_weights_t *w, const eq_acts_t *a, int r0, int r1, void *acc, size_t stride);
DECLARE(EQ_ARM(t2_row_matvec))
DECLARE(EQ_ARM(t2_row_gemm))
DECLARE(EQ_ARM(t2_block_matvec))
DECLARE(EQ_ARM(t2_block_gemm))
DECLARE(EQ_ARM(t158_row_matvec))
DECLARE(EQ_ARM(t158_row_gemm))
DECLARE(EQ_ARM(t158_block_matvec))
DECLARE(EQ_ARM(t158_block_gemm))
DECLARE(EQ_ARM(b1_row_matvec))
DECLARE(EQ_ARM(b1_row_gemm))
DECLARE(EQ_ARM(q4_block_matvec))
DECLARE(EQ_ARM(q4_block_gemm))
DECLARE(EQ_ARM(lut_matvec))
size_t EQ_ARM(lut_pack_bytes)(const eq_weights_t *w);
int EQ_ARM(lut_pack)(const eq_weights_t *w, void *out);
size_t EQ_ARM(lut_prep_bytes)(const eq_weights_t *w, int n);
void EQ_ARM(lut_prep)(const eq_weights_t *w, const int8_t *x, size_t stride, int n, void *prep);

#define K(fn) {EQ_ARM_TIER "/" #fn, EQ_ARM(fn)}
#define KS(name, fn) {EQ_ARM_TIER "/" name, fn}
#define NONE {NULL, NULL}
#define LUT(fmt)                                                                                              \
    {EQ_ARM(lut_pack_bytes), EQ_ARM(lut_pack), EQ_ARM(lut_prep_bytes), EQ_ARM(lut_prep),                       \
     {KS(fmt "_lut_row_matvec", EQ_ARM(lut_matvec)), KS(fmt "_lut_block_matvec", EQ_ARM(lut_matvec))}}

const eq_kernel_tier_t EQ_ARM(tier) = {
    EQ_ARM_TIER,
    {
        {EQ_ARM(prep_bytes), EQ_ARM(prep), {{K(t2_row_matvec), K(t2_row_gemm)}, {K(t2_block_matvec), K(t2_block_gemm)}},
         NULL, NULL},
        {EQ_ARM(prep_bytes), EQ_ARM(prep),
         {{K(t158_row_matvec), K(t158_row_gemm)}, {K(t158_block_matvec), K(t158_block_gemm)}}, NULL, NULL},
        {EQ_ARM(prep_bytes), EQ_ARM(prep), {{K(b1_row_matvec), K(b1_row_gemm)}, {NONE, NONE}}, EQ_ARM_TIER "/b1_xnor",
         EQ_ARM(b1_xnor)},
        {EQ_ARM(prep_bytes), EQ_ARM(prep), {{NONE, NONE}, {K(q4_block_matvec), K(q4_block_gemm)}}, NULL, NULL},
        {NULL, NULL, {{K(i8_row_matvec), KS("i8_row_gemm", i8_gemm)},
                      {KS("i8_block_matvec", EQ_ARM(i8_block)), KS("i8_block_gemm", EQ_ARM(i8_block))}}, NULL, NULL},
    },
};

#define NO_LUT {NULL, NULL, NULL, NULL, {NONE, NONE}}
const eq_lut_kernels_t EQ_ARM(lut)[EQ_N_FORMATS] = {LUT("t2"), LUT("t158"), NO_LUT, NO_LUT, NO_LUT};

int EQ_ARM(cpu_ok)(void) {
#if defined(EDGEQ_FREESTANDING)
    /* No libc (no getauxval): ID_AA64ISAR0_EL1, which Linux (HWCAP_CPUID, since 4.11) and qemu-user
     * emulate for user space; its DP field (bits 47:44) is nonzero with SDOT. */
    uint64_t isar0;
    __asm__("mrs %0, ID_AA64ISAR0_EL1" : "=r"(isar0));
#ifdef EQ_DOTPROD
    return ((isar0 >> 44) & 0xF) != 0;
#else
    (void)isar0;
    return 1; /* Advanced SIMD is mandatory in the Linux/Android aarch64 ABI */
#endif
#elif defined(__linux__)
#ifdef EQ_DOTPROD
    return (getauxval(AT_HWCAP) & HWCAP_ASIMDDP) != 0;
#else
    return (getauxval(AT_HWCAP) & HWCAP_ASIMD) != 0;
#endif
#else
    return 1; /* elsewhere the tier is trusted to match the build's -march */
#endif
}
