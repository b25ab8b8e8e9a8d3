/*
 * kernels.h -- the contract between the executor and every kernel tier (ref, avx2, ...).
 *
 * A "dot" kernel computes, for weight rows [r0, r1) and activation rows 0..n-1, the per-row
 * accumulator of docs/numerics.md WITHOUT bias or requantization:
 *   SCALE_ROW   int32  acc = sum over blocks of isum          (order-free, wraps mod 2^32)
 *   SCALE_BLOCK float  acc = ((0 + d0*isum0) + d1*isum1) + ...  (block order, fp32, no FMA)
 * and stores it at acc[i * acc_stride + r]. Activations are int8 rows padded with 0 to the
 * weight's padded column count. Every tier must match the ref tier bit for bit.
 */
#ifndef EDGEQ_KERNELS_H
#define EDGEQ_KERNELS_H

#include <stddef.h>
#include <stdint.h>

#define EQ_MAX_N 64     /* activation rows per kernel call (the executor chunks larger batches) */
#define EQ_MAX_BLOCK 256

/* Weight formats in kernel-table order. */
enum { EQ_F_T2, EQ_F_T158, EQ_F_B1, EQ_F_Q4, EQ_F_I8, EQ_N_FORMATS };
/* Accumulator kinds: index of the dot[] tables. */
enum { EQ_ACC_ROW, EQ_ACC_BLOCK };

typedef struct {
    int format;            /* EQ_F_* */
    int acc_kind;          /* EQ_ACC_* */
    int block;             /* weights per block */
    int rows, cols, padded_cols, n_blocks;
    size_t row_bytes;
    const uint8_t *codes;  /* rows x row_bytes */
    const void *scales;    /* SCALE_ROW: float[rows] (unused by dot); SCALE_BLOCK: fp16 [rows][n_blocks] */
    const uint8_t *zeros;  /* Q4 asymmetric: [rows][n_blocks]; NULL = symmetric (u - 8) */
    int layout;            /* EDGEQ_LAYOUT_*: ROWS4 codes, block scales and zeros are in groups of 4 rows */
    const void *packed;    /* lookup-table kernels: what the tier's lut.pack() made at load, else NULL */
} eq_weights_t;

typedef struct {
    const int8_t *x;       /* [n][stride] int8, zero padded to padded_cols */
    size_t stride;
    int n;
    const void *prep;      /* what the tier's prep() derived from x, or NULL */
} eq_acts_t;

typedef size_t (*eq_prep_bytes_fn)(const eq_weights_t *w, int n); /* must also cover every call with fewer rows */
typedef void (*eq_prep_fn)(const eq_weights_t *w, const int8_t *x, size_t stride, int n, void *prep);
typedef void (*eq_dot_fn)(const eq_weights_t *w, const eq_acts_t *a, int r0, int r1, void *acc,
                          size_t acc_stride);
/* B1 weights x B1 activations: isum = cols - 2 * popcount(w XOR a), int32. */
typedef void (*eq_xnor_fn)(const eq_weights_t *w, const uint32_t *bits, size_t words_stride, int n, int r0,
                           int r1, int32_t *acc, size_t acc_stride);

typedef struct {
    const char *name;
    eq_dot_fn fn;
} eq_dot_kernel_t;

/* Lookup-table mat-vec (ternary, kernels/neon/neon_lut.c): the weights are repacked once at load into
 * the arena (pack), the call's activation tables are built by prep, the kernel reads w->packed. */
typedef size_t (*eq_pack_bytes_fn)(const eq_weights_t *w);
typedef int (*eq_pack_fn)(const eq_weights_t *w, void *out); /* 0: not ternary (T2 code 3): use dot */
typedef struct {
    eq_pack_bytes_fn pack_bytes; /* NULL: the tier has no lookup-table kernel for the format */
    eq_pack_fn pack;
    eq_prep_bytes_fn prep_bytes;
    eq_prep_fn prep;
    eq_dot_kernel_t matvec[2];   /* [EQ_ACC_*], n == 1 only */
} eq_lut_kernels_t;

typedef struct {
    eq_prep_bytes_fn prep_bytes; /* NULL: the tier needs no preparation */
    eq_prep_fn prep;
    eq_dot_kernel_t dot[2][2];   /* [EQ_ACC_*][0 = mat-vec (n == 1), 1 = GEMM (n > 1)] */
    const char *xnor_name;
    eq_xnor_fn xnor;
} eq_format_kernels_t;

typedef struct {
    const char *name;
    eq_format_kernels_t fmt[EQ_N_FORMATS];
} eq_kernel_tier_t;

extern const eq_kernel_tier_t eq_ref_tier;
#if defined(__x86_64__) || defined(__i386__)
extern const eq_kernel_tier_t eq_avx2_tier, eq_vnni_tier; /* one source, kernels/x86 */
int eq_avx2_cpu_ok(void);
int eq_vnni_cpu_ok(void);
#endif
#if defined(__ARM_FEATURE_DSP) && !defined(__aarch64__)
extern const eq_kernel_tier_t eq_cm_dsp_tier; /* Cortex-M DSP extension: known at compile time */
#endif
#if defined(__ARM_FEATURE_MVE)
extern const eq_kernel_tier_t eq_cm_mve_tier; /* Helium (Cortex-M55) */
#endif
#if defined(__aarch64__)
extern const eq_kernel_tier_t eq_neon_tier, eq_neon_dotprod_tier; /* one source, kernels/neon */
extern const eq_format_kernels_t eq_neon_dotprod_t2_rows4, eq_neon_dotprod_q4_rows4; /* neon_rows4.c */
int eq_neon_cpu_ok(void);
int eq_neon_dotprod_cpu_ok(void);
/* Per format (EQ_F_*), the tier's lookup-table kernels; chosen per op by the blob's EDGEQ_OPF_LUT hint. */
extern const eq_lut_kernels_t eq_neon_lut[EQ_N_FORMATS], eq_neon_dotprod_lut[EQ_N_FORMATS];
extern const eq_kernel_tier_t eq_neon_i8mm_tier; /* dotprod mat-vec + SMMLA GEMM, kernels/neon/neon_i8mm.c */
int eq_neon_i8mm_cpu_ok(void);
#endif

/* A tier's kernels for format fmt in EDGEQ_LAYOUT_ROWS4, or NULL. Every tier's own table reads row-major
 * weights; the runtime repacks a ROWS4 weight at load when this is NULL (docs/formats.md). */
static inline const eq_format_kernels_t *eq_rows4_kernels(const eq_kernel_tier_t *tier, int fmt) {
#if defined(__aarch64__)
    if (tier == &eq_neon_dotprod_tier)
        return fmt == EQ_F_T2 ? &eq_neon_dotprod_t2_rows4 : fmt == EQ_F_Q4 ? &eq_neon_dotprod_q4_rows4 : NULL;
#endif
    (void)tier;
    (void)fmt;
    return NULL;
}

/* Exact IEEE half -> single conversion (the ref tier's; SIMD tiers use F16C). */
float eq_f16_to_f32(uint16_t h);
/* Single -> half, round to nearest even (the KV cache and GGML activation scales of docs/llm.md). */
uint16_t eq_f32_to_f16(float f);

#endif /* EDGEQ_KERNELS_H */
