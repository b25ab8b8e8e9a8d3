/*
 * AVX2 dot kernels for T2, T158, B1 (x int8) and Q4: decode a block to unsigned symbols once,
 * _mm256_maddubs_epi16 them against the activations, then correct with the per-block activation
 * sum that prep() computed (value = affine function of the symbol):
 *   T2, T158  isum = raw - xsum         (value = symbol - 1)
 *   Q4        isum = raw - z * xsum     (value = nibble - zero point)
 *   B1        isum = xsum - 2 * raw     (value = 1 - 2 * bit)
 * SCALE_ROW kernels sum raw over the row and correct once; SCALE_BLOCK kernels hold 8 rows in the
 * 8 lanes and walk the blocks in order, as docs/numerics.md requires.
 */
#include "avx2_decode.h"

size_t EQ_X86(prep_bytes)(const eq_weights_t *w, int n) {
    size_t bytes = align64((size_t)n * (size_t)w->n_blocks * sizeof(int32_t));
    if (w->format == EQ_F_Q4) bytes += (size_t)n * (size_t)w->padded_cols;
    return bytes;
}

/* Q4 activations in the decoders' order. Groups of 32 go in pairs (avx2_q4.c): [even(b), even(b+1),
 * odd(b), odd(b+1)], an odd last group [even, odd]; larger groups per chunk of 64: [even, odd]. */
static void q4_permute(const int8_t *x, int cols, int block, int8_t *out) {
    int c, k, g;
    if (block == 32) {
        for (c = 0; c + 64 <= cols; c += 64)
            for (g = 0; g < 2; g++)
                for (k = 0; k < 16; k++) {
                    out[c + 16 * g + k] = x[c + 32 * g + 2 * k];
                    out[c + 32 + 16 * g + k] = x[c + 32 * g + 2 * k + 1];
                }
        for (; c < cols; c += 32)
            for (k = 0; k < 16; k++) {
                out[c + k] = x[c + 2 * k];
                out[c + 16 + k] = x[c + 2 * k + 1];
            }
        return;
    }
    for (c = 0; c < cols; c += 64)
        for (k = 0; k < 32; k++) {
            out[c + k] = x[c + 2 * k];
            out[c + 32 + k] = x[c + 2 * k + 1];
        }
}

void EQ_X86(prep)(const eq_weights_t *w, const int8_t *x, size_t stride, int n, void *prep) {
    int32_t *xsum = (int32_t *)prep;
    int i, b, k;
    for (i = 0; i < n; i++) {
        const int8_t *row = x + (size_t)i * stride;
        for (b = 0; b < w->n_blocks; b++) {
            int32_t s = 0;
            for (k = 0; k < w->block; k++) s += row[(size_t)b * (size_t)w->block + (size_t)k];
            xsum[(size_t)i * (size_t)w->n_blocks + (size_t)b] = s;
        }
    }
    if (w->format == EQ_F_Q4) {
        int8_t *perm = (int8_t *)prep + align64((size_t)n * (size_t)w->n_blocks * sizeof(int32_t));
        for (i = 0; i < n; i++)
            q4_permute(x + (size_t)i * stride, w->padded_cols, w->block, perm + (size_t)i * (size_t)w->padded_cols);
    }
}

EQ_INLINE uint32_t row_fix(int fmt, uint32_t raw, uint32_t xtotal) {
    return fmt == EQ_F_B1 ? xtotal - 2u * raw : raw - xtotal;
}

#ifdef EQ_VNNI
/* T2 SCALE_ROW mat-vec with VNNI: no shifts. Crumb k of each byte, masked in place (value c * 4^k),
 * goes into its own accumulator; acc_k is an exact multiple of 4^k, so acc_k >> 2k recovers the sum
 * exactly while |acc_k| < 2^31: 192 * 128 * padded_cols / 4 < 2^31, so padded_cols <= 2^18. */
static void t2_row_matvec_masked(const eq_weights_t *w, const eq_acts_t *a, int r0, int r1, int32_t *acc) {
    const __m256i m0 = _mm256_set1_epi8(3), m1 = _mm256_set1_epi8(12), m2 = _mm256_set1_epi8(48),
                  m3 = _mm256_set1_epi8((char)192);
    const uint32_t xtotal = total((const int32_t *)a->prep, w->n_blocks);
    int r, b, i;
    for (r = r0; r < r1; r += 2) {
        const uint8_t *row[2];
        __m256i s[2][4];
        for (i = 0; i < 2; i++) {
            row[i] = w->codes + (size_t)(r + i < r1 ? r + i : r1 - 1) * w->row_bytes;
            s[i][0] = s[i][1] = s[i][2] = s[i][3] = _mm256_setzero_si256();
        }
        for (b = 0; b < w->n_blocks; b++) {
            const int8_t *xb = a->x + (size_t)b * 256;
            for (i = 0; i < 2; i++) {
                const uint8_t *q = row[i] + (size_t)b * 64;
                __m256i q0 = _mm256_loadu_si256((const __m256i *)q), q1 = _mm256_loadu_si256((const __m256i *)(q + 32));
#define X(j) _mm256_loadu_si256((const __m256i *)(xb + 32 * (j)))
                s[i][0] = dot_u8s8(dot_u8s8(s[i][0], _mm256_and_si256(q0, m0), X(0)), _mm256_and_si256(q1, m0), X(4));
                s[i][1] = dot_u8s8(dot_u8s8(s[i][1], _mm256_and_si256(q0, m1), X(1)), _mm256_and_si256(q1, m1), X(5));
                s[i][2] = dot_u8s8(dot_u8s8(s[i][2], _mm256_and_si256(q0, m2), X(2)), _mm256_and_si256(q1, m2), X(6));
                s[i][3] = dot_u8s8(dot_u8s8(s[i][3], _mm256_and_si256(q0, m3), X(3)), _mm256_and_si256(q1, m3), X(7));
#undef X
            }
        }
        for (i = 0; i < 2 && r + i < r1; i++) {
            __m256i t = _mm256_add_epi32(_mm256_add_epi32(s[i][0], _mm256_srai_epi32(s[i][1], 2)),
                                         _mm256_add_epi32(_mm256_srai_epi32(s[i][2], 4), _mm256_srai_epi32(s[i][3], 6)));
            acc[r + i] = (int32_t)row_fix(EQ_F_T2, (uint32_t)hsum_i32(t), xtotal);
        }
    }
}
#endif

/* SCALE_ROW, n == 1: four rows at a time (the last group repeats its final row). */
EQ_INLINE void row_matvec(int fmt, const eq_weights_t *w, const eq_acts_t *a, int r0, int r1, int32_t *acc) {
    const acts_view_t v = view(w, a);
    const int nv = nvec(fmt, w->block), B = w->block, nb = w->n_blocks;
    const size_t cb = code_bytes(fmt, B);
    const uint32_t xtotal = total(v.xsum, nb);
    int r, b, i;
    for (r = r0; r < r1; r += 4) {
        const uint8_t *row[4];
        __m256i s[4];
        for (i = 0; i < 4; i++) {
            row[i] = w->codes + (size_t)(r + i < r1 ? r + i : r1 - 1) * w->row_bytes;
            s[i] = _mm256_setzero_si256();
        }
        for (b = 0; b < nb; b++) {
            const int8_t *xb = v.x + (size_t)b * (size_t)B;
            for (i = 0; i < 4; i++) {
                __m256i sym[NVEC_MAX];
                decode(fmt, B, row[i] + (size_t)b * cb, sym);
                s[i] = _mm256_add_epi32(s[i], dot_sym(sym, nv, xb));
            }
        }
        for (i = 0; i < 4 && r + i < r1; i++) acc[r + i] = (int32_t)row_fix(fmt, (uint32_t)hsum_i32(s[i]), xtotal);
    }
}

/* SCALE_ROW, n > 1: each block is decoded once and used for every activation row. */
EQ_INLINE void row_gemm(int fmt, const eq_weights_t *w, const eq_acts_t *a, int r0, int r1, int32_t *acc,
                        size_t acc_stride) {
    const acts_view_t v = view(w, a);
    const int nv = nvec(fmt, w->block), B = w->block, nb = w->n_blocks, n = a->n;
    const size_t cb = code_bytes(fmt, B);
    uint32_t xtotal[EQ_MAX_N];
    __m256i s[EQ_MAX_N];
    int r, b, i;
    for (i = 0; i < n; i++) xtotal[i] = total(v.xsum + (size_t)i * (size_t)nb, nb);
    for (r = r0; r < r1; r++) {
        const uint8_t *row = w->codes + (size_t)r * w->row_bytes;
        for (i = 0; i < n; i++) s[i] = _mm256_setzero_si256();
        for (b = 0; b < nb; b++) {
            __m256i sym[NVEC_MAX];
            decode(fmt, B, row + (size_t)b * cb, sym);
            for (i = 0; i < n; i++)
                s[i] = _mm256_add_epi32(s[i], dot_sym(sym, nv, v.x + (size_t)i * v.stride + (size_t)b * (size_t)B));
        }
        for (i = 0; i < n; i++)
            acc[(size_t)i * acc_stride + (size_t)r] = (int32_t)row_fix(fmt, (uint32_t)hsum_i32(s[i]), xtotal[i]);
    }
}

/* Per-lane correction of 8 rows' raw block sums (T2/T158/Q4; B1 has no block scales). */
EQ_INLINE __m256i block_fix(int fmt, const eq_weights_t *w, const int *rows, int b, __m256i raw, int32_t xs) {
    if (fmt == EQ_F_Q4 && w->zeros) {
        const uint8_t *z = w->zeros + b;
        const size_t nb = (size_t)w->n_blocks;
        __m256i zv = _mm256_setr_epi32(z[rows[0] * nb], z[rows[1] * nb], z[rows[2] * nb], z[rows[3] * nb],
                                       z[rows[4] * nb], z[rows[5] * nb], z[rows[6] * nb], z[rows[7] * nb]);
        return _mm256_sub_epi32(raw, _mm256_mullo_epi32(zv, _mm256_set1_epi32(xs)));
    }
    return _mm256_sub_epi32(raw, _mm256_set1_epi32(fmt == EQ_F_Q4 ? 8 * xs : xs));
}

/* fp16 scales of block b for 8 rows, as fp32 lanes. */
EQ_INLINE __m256 block_scales(const eq_weights_t *w, const int *rows, int b) {
    const uint16_t *d = (const uint16_t *)w->scales + b;
    const size_t nb = (size_t)w->n_blocks;
    return _mm256_cvtph_ps(_mm_setr_epi16((short)d[rows[0] * nb], (short)d[rows[1] * nb], (short)d[rows[2] * nb],
                                          (short)d[rows[3] * nb], (short)d[rows[4] * nb], (short)d[rows[5] * nb],
                                          (short)d[rows[6] * nb], (short)d[rows[7] * nb]));
}

EQ_INLINE __m256 combine(__m256 accf, __m256 d, __m256i isum) {
    return _mm256_add_ps(accf, _mm256_mul_ps(d, _mm256_cvtepi32_ps(isum))); /* separate mul, add: no FMA */
}

/* SCALE_BLOCK for any n: 8 rows in the lanes; blocks decoded once per group of 8 rows. */
EQ_INLINE void block_rows(int fmt, int B, const eq_weights_t *w, const eq_acts_t *a, int r0, int r1, float *acc,
                          size_t acc_stride) {
    const acts_view_t v = view(w, a);
    const int nv = nvec(fmt, B), nb = w->n_blocks, n = a->n;
    const size_t cb = code_bytes(fmt, B);
    __m256 accf[EQ_MAX_N];
    int r, b, i, k;
    for (r = r0; r < r1; r += 8) {
        int rows[8];
        for (k = 0; k < 8; k++) rows[k] = r + k < r1 ? r + k : r1 - 1;
        for (i = 0; i < n; i++) accf[i] = _mm256_setzero_ps();
        for (b = 0; b < nb; b++) {
            const __m256 d = block_scales(w, rows, b);
            __m256i sym[8][NVEC_MAX], raw[8];
            for (k = 0; k < 8; k++) decode(fmt, B, w->codes + (size_t)rows[k] * w->row_bytes + (size_t)b * cb, sym[k]);
            for (i = 0; i < n; i++) {
                const int8_t *xb = v.x + (size_t)i * v.stride + (size_t)b * (size_t)B;
                for (k = 0; k < 8; k++) raw[k] = dot_sym(sym[k], nv, xb);
                accf[i] = combine(accf[i], d, block_fix(fmt, w, rows, b, reduce8(raw), v.xsum[(size_t)i * (size_t)nb + (size_t)b]));
            }
        }
        for (i = 0; i < n; i++) {
            float lanes[8];
            _mm256_storeu_ps(lanes, accf[i]);
            for (k = 0; k < 8 && r + k < r1; k++) acc[(size_t)i * acc_stride + (size_t)(r + k)] = lanes[k];
        }
    }
}

/* SCALE_BLOCK, n == 1: the same walk with decode and dot interleaved per row (no staging). */
EQ_INLINE void block_matvec(int fmt, int B, const eq_weights_t *w, const eq_acts_t *a, int r0, int r1, float *acc) {
    const acts_view_t v = view(w, a);
    const int nv = nvec(fmt, B), nb = w->n_blocks;
    const size_t cb = code_bytes(fmt, B);
    int r, b, k;
    for (r = r0; r < r1; r += 8) {
        const uint8_t *row[8];
        int rows[8];
        __m256 accf = _mm256_setzero_ps();
        float lanes[8];
        for (k = 0; k < 8; k++) {
            rows[k] = r + k < r1 ? r + k : r1 - 1;
            row[k] = w->codes + (size_t)rows[k] * w->row_bytes;
        }
        for (b = 0; b < nb; b++) {
            const int8_t *xb = v.x + (size_t)b * (size_t)B;
            __m256i raw[8];
            for (k = 0; k < 8; k++) {
                __m256i sym[NVEC_MAX];
                decode(fmt, B, row[k] + (size_t)b * cb, sym);
                raw[k] = dot_sym(sym, nv, xb);
            }
            accf = combine(accf, block_scales(w, rows, b), block_fix(fmt, w, rows, b, reduce8(raw), v.xsum[b]));
        }
        _mm256_storeu_ps(lanes, accf);
        for (k = 0; k < 8 && r + k < r1; k++) acc[r + k] = lanes[k];
    }
}

EQ_INLINE void row_matvec_best(int fmt, const eq_weights_t *w, const eq_acts_t *a, int r0, int r1, int32_t *acc) {
#ifdef EQ_VNNI
    if (fmt == EQ_F_T2 && w->padded_cols <= (1 << 18)) {
        t2_row_matvec_masked(w, a, r0, r1, acc);
        return;
    }
#endif
    row_matvec(fmt, w, a, r0, r1, acc);
}

#define ROW_KERNELS(name, FMT)                                                                                \
    void EQ_X86(name##_row_matvec)(const eq_weights_t *w, const eq_acts_t *a, int r0, int r1, void *acc,     \
                                     size_t acc_stride) {                                                     \
        (void)acc_stride;                                                                                     \
        row_matvec_best(FMT, w, a, r0, r1, (int32_t *)acc);                                                   \
    }                                                                                                         \
    void EQ_X86(name##_row_gemm)(const eq_weights_t *w, const eq_acts_t *a, int r0, int r1, void *acc,       \
                                   size_t acc_stride) {                                                       \
        row_gemm(FMT, w, a, r0, r1, (int32_t *)acc, acc_stride);                                              \
    }

#define BLOCK_KERNELS(name, FMT) /* T2, T158: blocks of 256 */                                      \
    void EQ_X86(name##_block_matvec)(const eq_weights_t *w, const eq_acts_t *a, int r0, int r1, void *acc,   \
                                       size_t acc_stride) {                                                   \
        (void)acc_stride;                                                                                     \
        block_matvec(FMT, 256, w, a, r0, r1, (float *)acc);                                                   \
    }                                                                                                         \
    void EQ_X86(name##_block_gemm)(const eq_weights_t *w, const eq_acts_t *a, int r0, int r1, void *acc,     \
                                     size_t acc_stride) {                                                     \
        block_rows(FMT, 256, w, a, r0, r1, (float *)acc, acc_stride);                                         \
    }

ROW_KERNELS(t2, EQ_F_T2)
ROW_KERNELS(t158, EQ_F_T158)
ROW_KERNELS(b1, EQ_F_B1)
BLOCK_KERNELS(t2, EQ_F_T2)
BLOCK_KERNELS(t158, EQ_F_T158)

void EQ_X86(q4_32_matvec)(const eq_weights_t *w, const int32_t *xsum, const int8_t *xp, int r0, int r1, float *acc);
void EQ_X86(q4_32_gemm)(const eq_weights_t *w, const int32_t *xsum, const int8_t *xp, size_t xp_stride, int n, int r0,
                        int r1, float *acc, size_t acc_stride);

void EQ_X86(q4_block_matvec)(const eq_weights_t *w, const eq_acts_t *a, int r0, int r1, void *acc, size_t acc_stride) {
    const acts_view_t v = view(w, a);
    (void)acc_stride;
    if (w->block == 32)
        EQ_X86(q4_32_matvec)(w, v.xsum, v.x, r0, r1, (float *)acc);
    else if (w->block == 64)
        block_matvec(EQ_F_Q4, 64, w, a, r0, r1, (float *)acc);
    else
        block_matvec(EQ_F_Q4, 128, w, a, r0, r1, (float *)acc);
}

void EQ_X86(q4_block_gemm)(const eq_weights_t *w, const eq_acts_t *a, int r0, int r1, void *acc, size_t acc_stride) {
    const acts_view_t v = view(w, a);
    if (w->block == 32)
        EQ_X86(q4_32_gemm)(w, v.xsum, v.x, v.stride, a->n, r0, r1, (float *)acc, acc_stride);
    else if (w->block == 64)
        block_rows(EQ_F_Q4, 64, w, a, r0, r1, (float *)acc, acc_stride);
    else
        block_rows(EQ_F_Q4, 128, w, a, r0, r1, (float *)acc, acc_stride);
}
