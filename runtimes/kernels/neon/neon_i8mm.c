/*
 * ARMv8.6 i8mm tier: the dotprod tier's mat-vec kernels, plus small-batch GEMM kernels built on SMMLA
 * (vmmlaq_s32), which multiplies a 2x8 int8 matrix by an 8x2 one into a 2x2 int32 accumulator: two
 * weight rows x two activation rows x 8 columns per instruction, twice the multiply-adds of an SDOT.
 * Compiled with -march=armv8.6-a+i8mm; only ever called once eq_neon_i8mm_cpu_ok() said yes.
 *
 * Operands. prep() interleaves the activation rows in pairs, 8 columns at a time (16 bytes = rows 2q
 * and 2q+1 at columns 8c..8c+7; an odd batch pairs its last row with zeros). Weight rows become symbols
 * as in neon_decode.h, and the same 64-bit zip pairs two rows into 16-byte operands.
 * One accumulator then holds lanes (row 2p, act 2q), (2p, 2q+1), (2p+1, 2q), (2p+1, 2q+1), and the
 * affine symbol corrections of neon_dot.c become lane-wise vector operations with duplicated scales
 * [d(2p), d(2p), d(2p+1), d(2p+1)] and activation sums [s(2q), s(2q+1), s(2q), s(2q+1)].
 *
 * Order: four weight rows (two pairs) per pass; per 64-column part of a block, the 16 weight operands
 * are built straight from the codes and stay in registers while every activation pair streams past
 * (1 load, 2 SMMLA per 8 columns). SCALE_BLOCK kernels correct and combine each block in order (fp32
 * mul, then add).
 */
#include "edgeq/edgeq_blob.h"
#include "neon_decode.h"

/* What the tier borrows from the dotprod tier (kernels/neon, built with -DEQ_DOTPROD). */
size_t eq_neon_dotprod_prep_bytes(const eq_weights_t *w, int n);
void eq_neon_dotprod_prep(const eq_weights_t *w, const int8_t *x, size_t stride, int n, void *prep);
void eq_neon_dotprod_b1_xnor(const eq_weights_t *w, const uint32_t *bits, size_t words_stride, int n, int r0, int r1,
                             int32_t *acc, size_t acc_stride);
#define DOT_ARGS const eq_weights_t *w, const eq_acts_t *a, int r0, int r1, void *acc, size_t acc_stride
void eq_neon_dotprod_t2_row_matvec(DOT_ARGS);
void eq_neon_dotprod_t2_block_matvec(DOT_ARGS);
void eq_neon_dotprod_t158_row_matvec(DOT_ARGS);
void eq_neon_dotprod_t158_block_matvec(DOT_ARGS);
void eq_neon_dotprod_b1_row_matvec(DOT_ARGS);
void eq_neon_dotprod_q4_block_matvec(DOT_ARGS);
void eq_neon_dotprod_i8_row_matvec(DOT_ARGS);
void eq_neon_dotprod_i8_block(DOT_ARGS);

#define MM_ROWS 4    /* weight rows per pass: two SMMLA row pairs */
#define MM_PART 8    /* 8-column chunks per part: 64 columns, 16 weight operands in registers */
#define MAX_PAIRS (EQ_MAX_N / 2)

EQ_INLINE int pairs(int n) { return (n + 1) / 2; }

/* prep() for n >= 2: per-block activation sums [block][2 * pairs] (pairs adjacent), then the paired rows. */
static size_t pair_bytes(const eq_weights_t *w, int n) {
    return align64((size_t)2 * (size_t)pairs(n) * (size_t)w->n_blocks * sizeof(int32_t)) +
           (size_t)2 * (size_t)pairs(n) * (size_t)w->padded_cols;
}

EQ_INLINE const int8_t *paired_rows(const eq_weights_t *w, const eq_acts_t *a) {
    return (const int8_t *)a->prep + align64((size_t)2 * (size_t)pairs(a->n) * (size_t)w->n_blocks * sizeof(int32_t));
}

/* Mat-vec (n == 1) keeps the dotprod tier's preparation; I8 mat-vec needs none. */
size_t eq_neon_i8mm_prep_bytes(const eq_weights_t *w, int n) {
    const size_t sdot = w->format == EQ_F_I8 ? 0 : eq_neon_dotprod_prep_bytes(w, n);
    const size_t mm = n > 1 ? pair_bytes(w, n) : 0;
    return sdot > mm ? sdot : mm;
}

EQ_INLINE int32_t block_sum(const int8_t *x, int block) {
    int16x8_t s = vdupq_n_s16(0);
    int k;
    for (k = 0; k < block; k += 16) s = vpadalq_s8(s, ld16(x + k)); /* <= 32 values per int16 lane */
    return vaddlvq_s16(s);
}

EQ_INLINE int8x16_t zip_lo(int8x16_t a, int8x16_t b) {
    return vreinterpretq_s8_s64(vzip1q_s64(vreinterpretq_s64_s8(a), vreinterpretq_s64_s8(b)));
}
EQ_INLINE int8x16_t zip_hi(int8x16_t a, int8x16_t b) {
    return vreinterpretq_s8_s64(vzip2q_s64(vreinterpretq_s64_s8(a), vreinterpretq_s64_s8(b)));
}

void eq_neon_i8mm_prep(const eq_weights_t *w, const int8_t *x, size_t stride, int n, void *prep) {
    const int np = pairs(n), nb = w->n_blocks, kp = w->padded_cols;
    int32_t *xsum = (int32_t *)prep;
    int8_t *out;
    int q, i, b, k;
    if (n == 1) {
        if (w->format != EQ_F_I8) eq_neon_dotprod_prep(w, x, stride, n, prep);
        return;
    }
    out = (int8_t *)prep + align64((size_t)2 * (size_t)np * (size_t)nb * sizeof(int32_t));
    if (w->format != EQ_F_I8) /* I8 weights are used as they are: no symbol correction */
        for (b = 0; b < nb; b++)
            for (i = 0; i < 2 * np; i++)
                xsum[(size_t)b * (size_t)(2 * np) + (size_t)i] =
                    i < n ? block_sum(x + (size_t)i * stride + (size_t)b * (size_t)w->block, w->block) : 0;
    for (q = 0; q < np; q++) {
        const int8_t *x0 = x + (size_t)(2 * q) * stride, *x1 = x0 + stride;
        const int odd = 2 * q + 1 == n; /* the last row of an odd batch pairs with zeros */
        int8_t *o = out + (size_t)q * 2 * (size_t)kp;
        if (w->format == EQ_F_Q4) { /* each 32 activations -> [16 even, 16 odd], the nibble order */
            for (k = 0; k < kp; k += 32, o += 64) {
                const int8x16x2_t a = vld2q_s8(x0 + k);
                int8x16x2_t c;
                if (odd)
                    c.val[0] = c.val[1] = vdupq_n_s8(0);
                else
                    c = vld2q_s8(x1 + k);
                vst1q_s8(o, zip_lo(a.val[0], c.val[0]));
                vst1q_s8(o + 16, zip_hi(a.val[0], c.val[0]));
                vst1q_s8(o + 32, zip_lo(a.val[1], c.val[1]));
                vst1q_s8(o + 48, zip_hi(a.val[1], c.val[1]));
            }
        } else {
            for (k = 0; k < kp; k += 16, o += 32) {
                const int8x16_t a = ld16(x0 + k), c = odd ? vdupq_n_s8(0) : ld16(x1 + k);
                vst1q_s8(o, zip_lo(a, c));
                vst1q_s8(o + 16, zip_hi(a, c));
            }
        }
    }
}

/* What finishing one SCALE_BLOCK block needs, per lane of the 2x2 accumulators. */
typedef struct {
    const int32_t *xsum;  /* this block's activation sums, pairs adjacent */
    int32x4_t zp[2];      /* zero point (symbol offset) per row pair's lanes */
    float32x4_t d[2];     /* block scale per row pair's lanes */
    float32x4_t (*f)[2];  /* fp32 sums so far */
} block_fix_t;

/* Symbol vector v of the block at q: the 16 symbols lined up with activations 16 v..16 v + 15, i.e.
 * vector v of neon_decode.h's decoders, computed alone (v is a constant once mm_block is unrolled, so
 * offsets, shifts and multipliers are immediates). T2: crumb (v >> 1) & 3 of bytes 32 (v >> 3) + 16 (v & 1);
 * I8: the bytes. */
EQ_INLINE int8x16_t sym_vector(int fmt, const uint8_t *q, int v) {
    if (fmt == EQ_F_T2) {
        const uint8x16_t x = ldu16(q + 32 * (v >> 3) + 16 * (v & 1));
        const int8x16_t shift = vdupq_n_s8((int8_t)(-2 * ((v >> 1) & 3)));
        return vreinterpretq_s8_u8(vandq_u8(vshlq_u8(x, shift), vdupq_n_u8(3)));
    }
    if (fmt == EQ_F_T158) { /* neon_decode.h's decode_t158, one vector: trit n is the top trit of q 3^n */
        static const uint8_t pow3[5] = {1, 3, 9, 27, 81};
        static const uint8_t tail_mul[16] = {1, 1, 1, 1, 3, 3, 3, 3, 9, 9, 9, 9, 27, 27, 27, 27};
        uint32_t t;
        if (v < 10) return top_trit(vmulq_u8(ldu16(q + 16 * (v & 1)), vdupq_n_u8(pow3[v >> 1])));
        if (v < 15) return top_trit(vmulq_u8(ldu16(q + 32), vdupq_n_u8(pow3[v - 10])));
        memcpy(&t, q + 48, 4);
        return top_trit(vmulq_u8(vreinterpretq_u8_u32(vdupq_n_u32(t)), vld1q_u8(tail_mul)));
    }
    if (fmt == EQ_F_Q4) { /* decode_q4, one vector: nibble v & 1 of bytes 16 (v >> 1) */
        const uint8x16_t x = ldu16(q + 16 * (v >> 1));
        return vreinterpretq_s8_u8((v & 1) ? vshrq_n_u8(x, 4) : vandq_u8(x, vdupq_n_u8(15)));
    }
    if (fmt == EQ_F_B1) { /* decode_b1, one vector: bits 16 v..16 v + 15 as 0 / -1 bytes */
        static const uint8_t bit[16] = {1, 2, 4, 8, 16, 32, 64, 128, 1, 2, 4, 8, 16, 32, 64, 128};
        const uint8x8_t x = vld1_u8(q);
        const uint8x16_t spread = vcombine_u8(vdup_n_u8((uint8_t)(2 * v)), vdup_n_u8((uint8_t)(2 * v + 1)));
        return vreinterpretq_s8_u8(vtstq_u8(vqtbl1q_u8(vcombine_u8(x, x), spread), vld1q_u8(bit)));
    }
    return ld16((const int8_t *)q + 16 * v);
}

/* acc[q][p] (zero when `fresh`) += (weight pair p) x (activation pair q) over `chunks` 8-column chunks,
 * for all q < np; act points at the part's first chunk of activation pair 0. The 2 x chunks weight
 * operands, symbol vectors v0.. of block b of the four rows straight from the codes, stay in registers.
 * With fix != NULL the sums are not stored but finish a SCALE_BLOCK block. */
EQ_INLINE void mm_part(int fmt, int B, const uint8_t *const *row, int b, int v0, int chunks, const int8_t *act,
                       size_t pair_stride, int np, int32x4_t (*acc)[2], int fresh, const block_fix_t *fix) {
    const block_fix_t k = fix ? *fix : (block_fix_t){0}; /* in registers: the f stores cannot change them */
    const size_t cb = fmt == EQ_F_I8 ? (size_t)B : code_bytes(fmt, B);
    int8x16_t w0[MM_PART], w1[MM_PART];
    int q, c;
    for (c = 0; c < chunks; c += 2) { /* chunk c: first 8 symbols of vector v of both rows, c + 1: last 8 */
        const int v = v0 + c / 2;
        const int8x16_t s0 = sym_vector(fmt, row[0] + (size_t)b * cb, v);
        const int8x16_t s1 = sym_vector(fmt, row[1] + (size_t)b * cb, v);
        const int8x16_t s2 = sym_vector(fmt, row[2] + (size_t)b * cb, v);
        const int8x16_t s3 = sym_vector(fmt, row[3] + (size_t)b * cb, v);
        w0[c] = zip_lo(s0, s1);
        w0[c + 1] = zip_hi(s0, s1);
        w1[c] = zip_lo(s2, s3);
        w1[c + 1] = zip_hi(s2, s3);
    }
    for (q = 0; q < np; q++, act += pair_stride) {
        int32x4_t s0 = fresh ? vdupq_n_s32(0) : acc[q][0], s1 = fresh ? vdupq_n_s32(0) : acc[q][1];
        for (c = 0; c < chunks; c++) {
            const int8x16_t xv = ld16(act + 16 * c);
            s0 = vmmlaq_s32(s0, w0[c], xv);
            s1 = vmmlaq_s32(s1, w1[c], xv);
        }
        if (fix) { /* isum = raw - zero point x activation sum (I8: raw); then a separate fp32 mul and add */
            if (fmt != EQ_F_I8) {
                const int32x2_t xs2 = vld1_s32(k.xsum + 2 * q);
                const int32x4_t xs = vcombine_s32(xs2, xs2);
                s0 = vmlsq_s32(s0, k.zp[0], xs);
                s1 = vmlsq_s32(s1, k.zp[1], xs);
            }
            k.f[q][0] = vaddq_f32(k.f[q][0], vmulq_f32(k.d[0], vcvtq_f32_s32(s0)));
            k.f[q][1] = vaddq_f32(k.f[q][1], vmulq_f32(k.d[1], vcvtq_f32_s32(s1)));
        } else {
            acc[q][0] = s0;
            acc[q][1] = s1;
        }
    }
}

/* All of block b (B columns) for every activation pair, 64 columns (one part) at a time: SCALE_ROW adds
 * to acc; SCALE_BLOCK (fix != NULL) sums the block afresh, in acc up to its last part, and finishes it. */
EQ_INLINE void mm_block(int fmt, int B, const uint8_t *const *row, int b, const int8_t *xp, size_t pair_stride,
                        int np, int32x4_t (*acc)[2], const block_fix_t *fix) {
    const int chunks = B < 8 * MM_PART ? B / 8 : MM_PART, parts = B / (8 * chunks);
    const int8_t *act = xp + 2 * (size_t)b * (size_t)B;
    int g;
#pragma GCC unroll 4 /* constant g: each part's code offsets, shifts and multipliers fold to immediates */
    for (g = 0; g < parts; g++, act += 16 * chunks)
        mm_part(fmt, B, row, b, g * chunks / 2, chunks, act, pair_stride, np, acc, fix && g == 0,
                g == parts - 1 ? fix : NULL);
}

EQ_INLINE void four_rows(const eq_weights_t *w, int r, int r1, const uint8_t **row, int *rows) {
    int k;
    for (k = 0; k < MM_ROWS; k++) {
        rows[k] = r + k < r1 ? r + k : r1 - 1; /* the last pass repeats its final row */
        row[k] = w->codes + (size_t)rows[k] * w->row_bytes;
    }
}

/* Lanes (2p + i, 2q + j) -> acc[act][row], inside the batch and the row range only. */
EQ_INLINE void store_pairs(int32x4_t (*v)[2], int np, int n, int r, int r1, void *acc, size_t acc_stride) {
    int q, p, i, j;
    for (q = 0; q < np; q++)
        for (p = 0; p < 2; p++) {
            int32_t lanes[4];
            vst1q_s32(lanes, v[q][p]);
            for (i = 0; i < 2; i++)
                for (j = 0; j < 2; j++)
                    if (2 * q + j < n && r + 2 * p + i < r1)
                        ((int32_t *)acc)[(size_t)(2 * q + j) * acc_stride + (size_t)(r + 2 * p + i)] = lanes[2 * i + j];
        }
}

/* SCALE_ROW: raw sums over the whole row, corrected once with each activation row's total. */
EQ_INLINE void mm_row_gemm(int fmt, int B, const eq_weights_t *w, const eq_acts_t *a, int r0, int r1, int32_t *acc,
                           size_t acc_stride) {
    const int n = a->n, np = pairs(n), nb = w->n_blocks;
    const size_t pair_stride = (size_t)2 * (size_t)w->padded_cols;
    const int32_t *xsum = (const int32_t *)a->prep;
    const int8_t *xp = paired_rows(w, a);
    int32x4_t tot[MAX_PAIRS], s[MAX_PAIRS][2];
    int r, b, q, p;
    for (q = 0; q < np; q++) { /* [total(2q), total(2q+1), total(2q), total(2q+1)], wrapping */
        int32x2_t t = vdup_n_s32(0);
        if (fmt != EQ_F_I8)
            for (b = 0; b < nb; b++) t = vadd_s32(t, vld1_s32(xsum + (size_t)b * (size_t)(2 * np) + 2 * q));
        tot[q] = vcombine_s32(t, t);
    }
    for (r = r0; r < r1; r += MM_ROWS) {
        const uint8_t *row[MM_ROWS];
        int rows[MM_ROWS];
        four_rows(w, r, r1, row, rows);
        for (q = 0; q < np; q++) s[q][0] = s[q][1] = vdupq_n_s32(0);
        for (b = 0; b < w->padded_cols / B; b++) {
            mm_block(fmt, B, row, b, xp, pair_stride, np, s, NULL);
        }
        for (q = 0; q < np; q++)
            for (p = 0; p < 2; p++) /* B1: value = 1 + 2 symbol; T2, T158: symbol - 1; I8: the value */
                s[q][p] = fmt == EQ_F_B1 ? vaddq_s32(tot[q], vshlq_n_s32(s[q][p], 1))
                        : fmt == EQ_F_I8 ? s[q][p]
                                         : vsubq_s32(s[q][p], tot[q]);
        store_pairs(s, np, n, r, r1, acc, acc_stride);
    }
}

/* SCALE_BLOCK: per block, exact integer sums, corrected, scaled and added to the fp32 sums in block order. */
EQ_INLINE void mm_block_gemm(int fmt, int B, const eq_weights_t *w, const eq_acts_t *a, int r0, int r1, float *acc,
                             size_t acc_stride) {
    const int n = a->n, np = pairs(n), nb = w->n_blocks;
    const size_t pair_stride = (size_t)2 * (size_t)w->padded_cols;
    const int8_t *xp = paired_rows(w, a);
    float32x4_t f[MAX_PAIRS][2];
    int32x4_t s[MAX_PAIRS][2];
    block_fix_t fix;
    int r, b, q, p, k;
    fix.f = f;
    for (r = r0; r < r1; r += MM_ROWS) {
        const uint8_t *row[MM_ROWS];
        const uint16_t *d[MM_ROWS];
        int rows[MM_ROWS];
        four_rows(w, r, r1, row, rows);
        for (k = 0; k < MM_ROWS; k++) d[k] = (const uint16_t *)w->scales + (size_t)rows[k] * (size_t)nb;
        for (q = 0; q < np; q++) f[q][0] = f[q][1] = vdupq_n_f32(0.0f);
        fix.zp[0] = fix.zp[1] = vdupq_n_s32(fmt == EQ_F_Q4 ? 8 : 1); /* symbol - zero point (T2, T158: - 1; I8: none) */
        for (b = 0; b < nb; b++) {
            uint16x4_t h = vld1_dup_u16(d[0] + b);
            float32x4_t d4;
            h = vld1_lane_u16(d[1] + b, h, 1);
            h = vld1_lane_u16(d[2] + b, h, 2);
            h = vld1_lane_u16(d[3] + b, h, 3);
            d4 = vcvt_f32_f16(vreinterpret_f16_u16(h)); /* exact fp16 -> fp32 */
            fix.d[0] = vzip1q_f32(d4, d4);              /* [d0, d0, d1, d1] */
            fix.d[1] = vzip2q_f32(d4, d4);              /* [d2, d2, d3, d3] */
            if (fmt == EQ_F_Q4 && w->zeros) {
                const size_t nbs = (size_t)nb;
                const int32_t z[4] = {w->zeros[(size_t)rows[0] * nbs + (size_t)b], w->zeros[(size_t)rows[1] * nbs + (size_t)b],
                                      w->zeros[(size_t)rows[2] * nbs + (size_t)b], w->zeros[(size_t)rows[3] * nbs + (size_t)b]};
                const int32x4_t zv = vld1q_s32(z);
                fix.zp[0] = vzip1q_s32(zv, zv);
                fix.zp[1] = vzip2q_s32(zv, zv);
            }
            fix.xsum = (const int32_t *)a->prep + (size_t)b * (size_t)(2 * np);
            mm_block(fmt, B, row, b, xp, pair_stride, np, s, &fix);
        }
        for (q = 0; q < np; q++) /* store_pairs moves 32-bit lanes: the floats' bit patterns */
            for (p = 0; p < 2; p++) s[q][p] = vreinterpretq_s32_f32(f[q][p]);
        store_pairs(s, np, n, r, r1, acc, acc_stride);
    }
}

static void t2_row_gemm(DOT_ARGS) { mm_row_gemm(EQ_F_T2, 256, w, a, r0, r1, (int32_t *)acc, acc_stride); }
static void t2_block_gemm(DOT_ARGS) { mm_block_gemm(EQ_F_T2, 256, w, a, r0, r1, (float *)acc, acc_stride); }
static void t158_row_gemm(DOT_ARGS) { mm_row_gemm(EQ_F_T158, 256, w, a, r0, r1, (int32_t *)acc, acc_stride); }
static void t158_block_gemm(DOT_ARGS) { mm_block_gemm(EQ_F_T158, 256, w, a, r0, r1, (float *)acc, acc_stride); }
static void b1_row_gemm(DOT_ARGS) { mm_row_gemm(EQ_F_B1, 64, w, a, r0, r1, (int32_t *)acc, acc_stride); }

static void q4_block_gemm(DOT_ARGS) {
    if (w->block == 32)
        mm_block_gemm(EQ_F_Q4, 32, w, a, r0, r1, (float *)acc, acc_stride);
    else if (w->block == 64)
        mm_block_gemm(EQ_F_Q4, 64, w, a, r0, r1, (float *)acc, acc_stride);
    else
        mm_block_gemm(EQ_F_Q4, 128, w, a, r0, r1, (float *)acc, acc_stride);
}

/* I8 with block scales (GGUF Q8_0): blocks of EDGEQ_I8_SCALE_BLOCK. */
static void i8_block_gemm(DOT_ARGS) {
    mm_block_gemm(EQ_F_I8, EDGEQ_I8_SCALE_BLOCK, w, a, r0, r1, (float *)acc, acc_stride);
}

/* I8 rows are only padded to 16 columns: 64-column blocks where the row allows, else 16. */
static void i8_row_gemm(DOT_ARGS) {
    if (w->padded_cols % 64 == 0)
        mm_row_gemm(EQ_F_I8, 64, w, a, r0, r1, (int32_t *)acc, acc_stride);
    else
        mm_row_gemm(EQ_F_I8, 16, w, a, r0, r1, (int32_t *)acc, acc_stride);
}

#define SDOT(fn) {"neon_dotprod/" #fn, eq_neon_dotprod_##fn}
#define MM(fn) {"neon_i8mm/" #fn, fn}
#define NONE {NULL, NULL}
#define PREP eq_neon_i8mm_prep_bytes, eq_neon_i8mm_prep

const eq_kernel_tier_t eq_neon_i8mm_tier = {
    "neon_i8mm",
    {
        {PREP, {{SDOT(t2_row_matvec), MM(t2_row_gemm)}, {SDOT(t2_block_matvec), MM(t2_block_gemm)}}, NULL, NULL},
        {PREP, {{SDOT(t158_row_matvec), MM(t158_row_gemm)}, {SDOT(t158_block_matvec), MM(t158_block_gemm)}}, NULL,
         NULL},
        {PREP, {{SDOT(b1_row_matvec), MM(b1_row_gemm)}, {NONE, NONE}}, "neon_dotprod/b1_xnor",
         eq_neon_dotprod_b1_xnor},
        {PREP, {{NONE, NONE}, {SDOT(q4_block_matvec), MM(q4_block_gemm)}}, NULL, NULL},
        {PREP,
         {{SDOT(i8_row_matvec), MM(i8_row_gemm)}, {{"neon_dotprod/i8_block_matvec", eq_neon_dotprod_i8_block}, MM(i8_block_gemm)}},
         NULL, NULL},
    },
};
