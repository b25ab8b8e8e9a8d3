/*
 * NEON dot kernels for T2, T158, B1 (x int8) and Q4: decode a block to small int8 symbols once, dot
 * them against the activations (SDOT, or widening multiply + pairwise add on ARMv8.0), then correct
 * with the per-block activation sum that prep() computed (value = affine function of the symbol):
 *   T2, T158  isum = raw - xsum         (value = symbol - 1)
 *   Q4        isum = raw - z * xsum     (value = nibble - zero point)
 *   B1        isum = xsum + 2 * raw     (value = 1 + 2 * symbol, symbol = -bit)
 * SCALE_ROW kernels sum raw over the row and correct once; SCALE_BLOCK kernels hold 4 rows in the 4
 * lanes and walk the blocks in order with a separate fp32 multiply and add, as docs/numerics.md requires.
 */
#include "neon_decode.h"

static void t2_permute(const int8_t *x, int cols, int8_t *out);

/* Q4: every row deinterleaved like the nibbles; T2: one row in t2_permute order for mat-vec. The size
 * for n must also hold any call with fewer rows (the executor sizes scratch for its largest tile and
 * then runs mat-vec in it), so T2 always reserves its one-row copy. */
size_t EQ_ARM(prep_bytes)(const eq_weights_t *w, int n) {
    size_t bytes = align64((size_t)n * (size_t)w->n_blocks * sizeof(int32_t));
    if (w->format == EQ_F_Q4) bytes += (size_t)n * (size_t)w->padded_cols;
    if (w->format == EQ_F_T2) bytes += (size_t)w->padded_cols;
    return bytes;
}

/* Sum of one block of activations (block <= 256: the int16 pair sums cannot overflow). */
EQ_INLINE int32_t block_sum(const int8_t *x, int block) {
    int16x8_t s = vdupq_n_s16(0);
    int k;
    for (k = 0; k < block; k += 16) s = vpadalq_s8(s, ld16(x + k));
    return vaddlvq_s16(s);
}

void EQ_ARM(prep)(const eq_weights_t *w, const int8_t *x, size_t stride, int n, void *prep) {
    int32_t *xsum = (int32_t *)prep;
    int i, b, c;
    for (i = 0; i < n; i++)
        for (b = 0; b < w->n_blocks; b++)
            xsum[(size_t)i * (size_t)w->n_blocks + (size_t)b] =
                block_sum(x + (size_t)i * stride + (size_t)b * (size_t)w->block, w->block);
    if (w->format == EQ_F_T2 && n == 1)
        t2_permute(x, w->padded_cols, (int8_t *)prep + align64((size_t)w->n_blocks * sizeof(int32_t)));
    if (w->format == EQ_F_Q4) { /* each 32 activations -> [16 even, 16 odd], the nibble order */
        int8_t *perm = (int8_t *)prep + align64((size_t)n * (size_t)w->n_blocks * sizeof(int32_t));
        for (i = 0; i < n; i++)
            for (c = 0; c < w->padded_cols; c += 32) {
                int8x16x2_t v = vld2q_s8(x + (size_t)i * stride + (size_t)c);
                vst1q_s8(perm + (size_t)i * (size_t)w->padded_cols + (size_t)c, v.val[0]);
                vst1q_s8(perm + (size_t)i * (size_t)w->padded_cols + (size_t)c + 16, v.val[1]);
            }
    }
}

EQ_INLINE uint32_t row_fix(int fmt, uint32_t raw, uint32_t xtotal) {
    return fmt == EQ_F_B1 ? xtotal + 2u * raw : raw - xtotal;
}

EQ_INLINE void four_rows(const eq_weights_t *w, int r, int r1, const uint8_t **row, int *rows) {
    int k;
    for (k = 0; k < 4; k++) {
        rows[k] = r + k < r1 ? r + k : r1 - 1;
        row[k] = w->codes + (size_t)rows[k] * w->row_bytes;
    }
}

/* Where the fp16 scales of 4 rows start (block_scales reads block b of each). */
EQ_INLINE void scale_rows(const eq_weights_t *w, const int *rows, const uint16_t **d) {
    int k;
    for (k = 0; k < 4; k++) d[k] = (const uint16_t *)w->scales + (size_t)rows[k] * (size_t)w->n_blocks;
}

/* fp16 scales of block b for 4 rows, as fp32 lanes (exact conversion). */
EQ_INLINE float32x4_t block_scales(const uint16_t *const *d, int b) {
    uint16x4_t h = vld1_dup_u16(d[0] + b);
    h = vld1_lane_u16(d[1] + b, h, 1);
    h = vld1_lane_u16(d[2] + b, h, 2);
    h = vld1_lane_u16(d[3] + b, h, 3);
    return vcvt_f32_f16(vreinterpret_f16_u16(h));
}

/* Per-lane correction of 4 rows' raw block sums (T2/T158/Q4). */
EQ_INLINE int32x4_t block_fix(int fmt, const eq_weights_t *w, const int *rows, int b, int32x4_t raw, int32_t xs) {
    if (fmt == EQ_F_Q4 && w->zeros) {
        const uint8_t *z = w->zeros + b;
        const size_t nb = (size_t)w->n_blocks;
        int32x4_t zv = vdupq_n_s32(z[(size_t)rows[0] * nb]);
        zv = vsetq_lane_s32(z[(size_t)rows[1] * nb], zv, 1);
        zv = vsetq_lane_s32(z[(size_t)rows[2] * nb], zv, 2);
        zv = vsetq_lane_s32(z[(size_t)rows[3] * nb], zv, 3);
        return vmlsq_n_s32(raw, zv, xs);
    }
    return vsubq_s32(raw, vdupq_n_s32(fmt == EQ_F_Q4 ? 8 * xs : xs));
}

EQ_INLINE float32x4_t combine(float32x4_t accf, float32x4_t d, int32x4_t isum) {
    return vaddq_f32(accf, vmulq_f32(d, vcvtq_f32_s32(isum))); /* separate mul, add: no FMA */
}

EQ_INLINE void store4(float *acc, int r, int r1, float32x4_t v) {
    float lanes[4];
    int k;
    vst1q_f32(lanes, v);
    for (k = 0; k < 4 && r + k < r1; k++) acc[r + k] = lanes[k];
}

/*
 * T2 mat-vec without a full decode: crumbs 0 and 3 of each code byte give their values directly
 * (masked, shifted down), crumbs 1 and 2 are masked to 4 c (crumb 2 shifted by 2 first) and go to a
 * second accumulator whose lanes are exact multiples of 4, so A + (B >> 2) is the raw sum. Two
 * accumulators per row leave registers for four rows, which share each activation load: prep() lays
 * out the activations of each 16 code bytes as the 64 bytes they meet (one 4-register load).
 * The sums run over the whole row (SCALE_BLOCK takes differences at block ends): exact while
 * |B| < 2^31, i.e. padded_cols <= 2^20; longer rows take the decoding kernels.
 */
#define T2_MAX_FAST_COLS (1 << 20)

typedef struct {
    int32x4_t a, b;
} t2_acc_t;

/* Activations of code chunk c (16 bytes = 64 weights) of a 256 block: x[128 (c >> 1) + 16 (c & 1) + 32 l]. */
static void t2_permute(const int8_t *x, int cols, int8_t *out) {
    int b, c, l;
    for (b = 0; b < cols; b += 256)
        for (c = 0; c < 4; c++)
            for (l = 0; l < 4; l++)
                vst1q_s8(out + b + 64 * c + 16 * l, ld16(x + b + 128 * (c >> 1) + 16 * (c & 1) + 32 * l));
}

#define T2_ROWS 8 /* rows per pass: 2 x 4 lanes, 16 accumulators */

EQ_INLINE int32x4_t t2_raw4(const t2_acc_t *s);

/* For each of `groups` groups of `count` code chunks (16 bytes of each row = 64 weights, from byte
 * `off` on): adds the chunks of 8 rows to their accumulators s, then stores the raw sums so far of
 * rows 0..3 and rows 4..7 as raw[2 g], raw[2 g + 1]. */
EQ_INLINE void t2_chunks(const uint8_t *const *row, size_t off, const int8_t *xp, int count, int groups,
                         t2_acc_t *s, int32x4_t *raw) {
#ifdef EQ_DOTPROD
    /* gcc keeps 8 rows' loads in flight and spills accumulators; written out, the loop is 1 activation
     * load (4 registers), then per row 1 code load, 5 mask/shift ops and 4 SDOT, and the branch. The 16
     * accumulators (s[k].a, s[k].b in order) live in v16..v31 for the call. */
#define T2_ROW_ASM(k, A, B)                                                                                       \
    "ldr q4, [%[p" #k "], %[off]]\n\t"                                                                          \
    "and v5.16b, v4.16b, v8.16b\n\t"                                                                            \
    "sdot " A ".4s, v5.16b, v0.16b\n\t"                                                                         \
    "and v6.16b, v4.16b, v9.16b\n\t"                                                                            \
    "sdot " B ".4s, v6.16b, v1.16b\n\t"                                                                         \
    "ushr v7.16b, v4.16b, #2\n\t"                                                                               \
    "and v7.16b, v7.16b, v9.16b\n\t"                                                                            \
    "sdot " B ".4s, v7.16b, v2.16b\n\t"                                                                         \
    "ushr v4.16b, v4.16b, #6\n\t"                                                                               \
    "sdot " A ".4s, v4.16b, v3.16b\n\t"
    __asm__ __volatile__("ld1 {v16.4s-v19.4s}, [%[s]]\n\t"
            "add x16, %[s], #64\n\t"
            "ld1 {v20.4s-v23.4s}, [x16], #64\n\t"
            "ld1 {v24.4s-v27.4s}, [x16], #64\n\t"
            "ld1 {v28.4s-v31.4s}, [x16]\n\t"
            "movi v8.16b, #0x03\n\t"
            "movi v9.16b, #0x0c\n\t"
            "2:\n\t"
            "mov w17, %w[n]\n\t"
            "1:\n\t"
            "ld1 {v0.16b-v3.16b}, [%[xp]], #64\n\t"
            T2_ROW_ASM(0, "v16", "v17") T2_ROW_ASM(1, "v18", "v19") T2_ROW_ASM(2, "v20", "v21")
            T2_ROW_ASM(3, "v22", "v23") T2_ROW_ASM(4, "v24", "v25") T2_ROW_ASM(5, "v26", "v27")
            T2_ROW_ASM(6, "v28", "v29") T2_ROW_ASM(7, "v30", "v31")
            "add %[off], %[off], #16\n\t"
            "subs w17, w17, #1\n\t"
            "b.ne 1b\n\t"
            /* raw = reduce(A) + reduce(B) >> 2 per group of 4 rows, as t2_raw4 */
            "addp v0.4s, v16.4s, v18.4s\n\t"
            "addp v1.4s, v20.4s, v22.4s\n\t"
            "addp v0.4s, v0.4s, v1.4s\n\t"
            "addp v2.4s, v17.4s, v19.4s\n\t"
            "addp v3.4s, v21.4s, v23.4s\n\t"
            "addp v2.4s, v2.4s, v3.4s\n\t"
            "ssra v0.4s, v2.4s, #2\n\t"
            "addp v1.4s, v24.4s, v26.4s\n\t"
            "addp v2.4s, v28.4s, v30.4s\n\t"
            "addp v1.4s, v1.4s, v2.4s\n\t"
            "addp v2.4s, v25.4s, v27.4s\n\t"
            "addp v3.4s, v29.4s, v31.4s\n\t"
            "addp v2.4s, v2.4s, v3.4s\n\t"
            "ssra v1.4s, v2.4s, #2\n\t"
            "st1 {v0.4s, v1.4s}, [%[raw]], #32\n\t"
            "subs %w[groups], %w[groups], #1\n\t"
            "b.ne 2b\n\t"
            "st1 {v16.4s-v19.4s}, [%[s]]\n\t"
            "add x16, %[s], #64\n\t"
            "st1 {v20.4s-v23.4s}, [x16], #64\n\t"
            "st1 {v24.4s-v27.4s}, [x16], #64\n\t"
            "st1 {v28.4s-v31.4s}, [x16]\n\t"
            : [off] "+r"(off), [xp] "+r"(xp), [groups] "+r"(groups), [raw] "+r"(raw)
            : [n] "r"(count), [s] "r"(s), [p0] "r"(row[0]), [p1] "r"(row[1]), [p2] "r"(row[2]), [p3] "r"(row[3]), [p4] "r"(row[4]),
              [p5] "r"(row[5]), [p6] "r"(row[6]), [p7] "r"(row[7])
            : "x16", "x17", "v0", "v1", "v2", "v3", "v4", "v5", "v6", "v7", "v8", "v9", "v16", "v17", "v18", "v19", "v20",
              "v21", "v22", "v23", "v24", "v25", "v26", "v27", "v28", "v29", "v30", "v31", "cc", "memory");
#undef T2_ROW_ASM
#else
    /* ARMv8.0: four rows at a time (their accumulators and the activations fit the registers). */
    const uint8x16_t m0 = vdupq_n_u8(0x03), m1 = vdupq_n_u8(0x0C);
    int g, c, k, h;
    for (h = 0; h < groups; h++, off += (size_t)count * 16, xp += (size_t)count * 64) {
        for (g = 0; g < T2_ROWS; g += 4)
            for (c = 0; c < count; c++) {
                const int8x16x4_t x = vld1q_s8_x4(xp + (size_t)c * 64);
                for (k = g; k < g + 4; k++) {
                    const uint8x16_t q = ldu16(row[k] + off + (size_t)c * 16);
                    s[k].a = dot16(s[k].a, vreinterpretq_s8_u8(vandq_u8(q, m0)), x.val[0]);
                    s[k].b = dot16(s[k].b, vreinterpretq_s8_u8(vandq_u8(q, m1)), x.val[1]);
                    s[k].b = dot16(s[k].b, vreinterpretq_s8_u8(vandq_u8(vshrq_n_u8(q, 2), m1)), x.val[2]);
                    s[k].a = dot16(s[k].a, vreinterpretq_s8_u8(vshrq_n_u8(q, 6)), x.val[3]);
                }
            }
        raw[2 * h] = t2_raw4(s);
        raw[2 * h + 1] = t2_raw4(s + 4);
    }
#endif
}

/* Raw sums of 4 rows so far, one per lane (a sum of multiples of 4 is one: B >> 2 stays exact). */
EQ_INLINE int32x4_t t2_raw4(const t2_acc_t *s) {
    return vsraq_n_s32(reduce4(s[0].a, s[1].a, s[2].a, s[3].a), reduce4(s[0].b, s[1].b, s[2].b, s[3].b), 2);
}

EQ_INLINE void t2_zero(t2_acc_t *s) {
    int k;
    for (k = 0; k < T2_ROWS; k++) s[k].a = s[k].b = vdupq_n_s32(0);
}

EQ_INLINE const int8_t *t2_xperm(const eq_weights_t *w, const eq_acts_t *a) {
    return (const int8_t *)a->prep + align64((size_t)w->n_blocks * sizeof(int32_t));
}

static void t2_row_matvec_fast(const eq_weights_t *w, const eq_acts_t *a, int r0, int r1, int32_t *acc) {
    const uint32_t xtotal = total((const int32_t *)a->prep, w->n_blocks);
    const int8_t *xp = t2_xperm(w, a);
    const int chunks = 4 * w->n_blocks;
    int r, k;
    for (r = r0; r < r1; r += T2_ROWS) {
        const uint8_t *row[T2_ROWS];
        int rows[T2_ROWS];
        t2_acc_t s[T2_ROWS];
        int32x4_t sums[T2_ROWS / 4];
        uint32_t raw[T2_ROWS];
        for (k = 0; k < T2_ROWS; k += 4) four_rows(w, r + k, r1, row + k, rows + k);
        t2_zero(s);
        t2_chunks(row, 0, xp, chunks, 1, s, sums);
        for (k = 0; k < T2_ROWS; k += 4) vst1q_u32(raw + k, vreinterpretq_u32_s32(sums[k / 4]));
        for (k = 0; k < T2_ROWS && r + k < r1; k++) acc[r + k] = (int32_t)row_fix(EQ_F_T2, raw[k], xtotal);
    }
}

#define T2_BATCH 32 /* blocks whose raw sums one assembly call leaves in a buffer */

static void t2_block_matvec_fast(const eq_weights_t *w, const eq_acts_t *a, int r0, int r1, float *acc) {
    const int32_t *xsum = (const int32_t *)a->prep;
    const int8_t *xp = t2_xperm(w, a);
    int r, b, g, j;
    for (r = r0; r < r1; r += T2_ROWS) {
        const uint8_t *row[T2_ROWS];
        int rows[T2_ROWS];
        t2_acc_t s[T2_ROWS];
        const uint16_t *d[T2_ROWS];
        int32x4_t before[T2_ROWS / 4], now[2 * T2_BATCH];
        float32x4_t accf[T2_ROWS / 4];
        for (g = 0; g < T2_ROWS / 4; g++) {
            four_rows(w, r + 4 * g, r1, row + 4 * g, rows + 4 * g);
            scale_rows(w, rows + 4 * g, d + 4 * g);
            before[g] = vdupq_n_s32(0);
            accf[g] = vdupq_n_f32(0.0f);
        }
        t2_zero(s);
        for (b = 0; b < w->n_blocks; b += T2_BATCH) {
            const int nb = w->n_blocks - b < T2_BATCH ? w->n_blocks - b : T2_BATCH;
            t2_chunks(row, (size_t)b * 64, xp + (size_t)b * 256, 4, nb, s, now);
            for (j = 0; j < nb; j++) {
                const int32x4_t xs = vdupq_n_s32(xsum[b + j]);
                for (g = 0; g < T2_ROWS / 4; g++) {
                    const int32x4_t raw = now[2 * j + g];
                    accf[g] = combine(accf[g], block_scales(d + 4 * g, b + j), vsubq_s32(vsubq_s32(raw, before[g]), xs));
                    before[g] = raw;
                }
            }
        }
        for (g = 0; g < T2_ROWS / 4; g++) store4(acc, r + 4 * g, r1, accf[g]);
    }
}

/* SCALE_ROW, n == 1: four rows at a time (the last group repeats its final row). */
EQ_INLINE void row_matvec(int fmt, int B, const eq_weights_t *w, const eq_acts_t *a, int r0, int r1, int32_t *acc) {
    const acts_view_t v = view(w, a);
    const int ns = nsym(B), nb = w->n_blocks;
    const size_t cb = code_bytes(fmt, B);
    const uint32_t xtotal = total(v.xsum, nb);
    int r, b, k;
    for (r = r0; r < r1; r += 4) {
        const uint8_t *row[4];
        int rows[4];
        int32x4_t s[4];
        uint32_t raw[4];
        four_rows(w, r, r1, row, rows);
        for (k = 0; k < 4; k++) s[k] = vdupq_n_s32(0);
        for (b = 0; b < nb; b++)
            for (k = 0; k < 4; k++) {
                int8x16_t sym[NSYM_MAX];
                decode(fmt, B, row[k] + (size_t)b * cb, sym);
                s[k] = dot_sym(s[k], sym, ns, v.x + (size_t)b * (size_t)B);
            }
        vst1q_u32(raw, vreinterpretq_u32_s32(reduce4(s[0], s[1], s[2], s[3])));
        for (k = 0; k < 4 && r + k < r1; k++) acc[r + k] = (int32_t)row_fix(fmt, raw[k], xtotal);
    }
}

/* SCALE_BLOCK, n == 1: four rows in the lanes, blocks in order. */
EQ_INLINE void block_matvec(int fmt, int B, const eq_weights_t *w, const eq_acts_t *a, int r0, int r1, float *acc) {
    const acts_view_t v = view(w, a);
    const int ns = nsym(B), nb = w->n_blocks;
    const size_t cb = code_bytes(fmt, B);
    int r, b, k;
    for (r = r0; r < r1; r += 4) {
        const uint8_t *row[4];
        int rows[4];
        const uint16_t *d[4];
        float32x4_t accf = vdupq_n_f32(0.0f);
        four_rows(w, r, r1, row, rows);
        scale_rows(w, rows, d);
        for (b = 0; b < nb; b++) {
            int32x4_t s[4];
            for (k = 0; k < 4; k++) {
                int8x16_t sym[NSYM_MAX];
                decode(fmt, B, row[k] + (size_t)b * cb, sym);
                s[k] = dot_sym(vdupq_n_s32(0), sym, ns, v.x + (size_t)b * (size_t)B);
            }
            accf = combine(accf, block_scales(d, b),
                           block_fix(fmt, w, rows, b, reduce4(s[0], s[1], s[2], s[3]), v.xsum[b]));
        }
        store4(acc, r, r1, accf);
    }
}

/* SCALE_ROW, n > 1: each block is decoded once and used for every activation row. */
EQ_INLINE void row_gemm(int fmt, int B, const eq_weights_t *w, const eq_acts_t *a, int r0, int r1, int32_t *acc,
                        size_t acc_stride) {
    const acts_view_t v = view(w, a);
    const int ns = nsym(B), nb = w->n_blocks, n = a->n;
    const size_t cb = code_bytes(fmt, B);
    uint32_t xtotal[EQ_MAX_N];
    int32x4_t s[EQ_MAX_N];
    int r, b, i;
    for (i = 0; i < n; i++) xtotal[i] = total(v.xsum + (size_t)i * (size_t)nb, nb);
    for (r = r0; r < r1; r++) {
        const uint8_t *row = w->codes + (size_t)r * w->row_bytes;
        for (i = 0; i < n; i++) s[i] = vdupq_n_s32(0);
        for (b = 0; b < nb; b++) {
            int8x16_t sym[NSYM_MAX];
            decode(fmt, B, row + (size_t)b * cb, sym);
            for (i = 0; i < n; i++) s[i] = dot_sym(s[i], sym, ns, v.x + (size_t)i * v.stride + (size_t)b * (size_t)B);
        }
        for (i = 0; i < n; i++)
            acc[(size_t)i * acc_stride + (size_t)r] =
                (int32_t)row_fix(fmt, (uint32_t)vaddvq_s32(s[i]), xtotal[i]);
    }
}

/* SCALE_BLOCK, n > 1: four rows in the lanes; each block decoded once per group of four rows. */
EQ_INLINE void block_gemm(int fmt, int B, const eq_weights_t *w, const eq_acts_t *a, int r0, int r1, float *acc,
                          size_t acc_stride) {
    const acts_view_t v = view(w, a);
    const int ns = nsym(B), nb = w->n_blocks, n = a->n;
    const size_t cb = code_bytes(fmt, B);
    float32x4_t accf[EQ_MAX_N];
    int r, b, i, k;
    for (r = r0; r < r1; r += 4) {
        const uint8_t *row[4];
        const uint16_t *dr[4];
        int rows[4];
        four_rows(w, r, r1, row, rows);
        scale_rows(w, rows, dr);
        for (i = 0; i < n; i++) accf[i] = vdupq_n_f32(0.0f);
        for (b = 0; b < nb; b++) {
            const float32x4_t d = block_scales(dr, b);
            int8x16_t sym[4][NSYM_MAX];
            for (k = 0; k < 4; k++) decode(fmt, B, row[k] + (size_t)b * cb, sym[k]);
            for (i = 0; i < n; i++) {
                const int8_t *xb = v.x + (size_t)i * v.stride + (size_t)b * (size_t)B;
                int32x4_t s[4];
                for (k = 0; k < 4; k++) s[k] = dot_sym(vdupq_n_s32(0), sym[k], ns, xb);
                accf[i] = combine(accf[i], d, block_fix(fmt, w, rows, b, reduce4(s[0], s[1], s[2], s[3]),
                                                        v.xsum[(size_t)i * (size_t)nb + (size_t)b]));
            }
        }
        for (i = 0; i < n; i++) store4(acc + (size_t)i * acc_stride, r, r1, accf[i]);
    }
}

#define DOT_ARGS const eq_weights_t *w, const eq_acts_t *a, int r0, int r1, void *acc, size_t acc_stride

void EQ_ARM(t2_row_matvec)(DOT_ARGS) {
    (void)acc_stride;
    if (w->padded_cols <= T2_MAX_FAST_COLS)
        t2_row_matvec_fast(w, a, r0, r1, (int32_t *)acc);
    else
        row_matvec(EQ_F_T2, 256, w, a, r0, r1, (int32_t *)acc);
}
void EQ_ARM(t2_row_gemm)(DOT_ARGS) { row_gemm(EQ_F_T2, 256, w, a, r0, r1, (int32_t *)acc, acc_stride); }
void EQ_ARM(t2_block_matvec)(DOT_ARGS) {
    (void)acc_stride;
    if (w->padded_cols <= T2_MAX_FAST_COLS)
        t2_block_matvec_fast(w, a, r0, r1, (float *)acc);
    else
        block_matvec(EQ_F_T2, 256, w, a, r0, r1, (float *)acc);
}
void EQ_ARM(t2_block_gemm)(DOT_ARGS) { block_gemm(EQ_F_T2, 256, w, a, r0, r1, (float *)acc, acc_stride); }

void EQ_ARM(t158_row_matvec)(DOT_ARGS) {
    (void)acc_stride;
    row_matvec(EQ_F_T158, 256, w, a, r0, r1, (int32_t *)acc);
}
void EQ_ARM(t158_row_gemm)(DOT_ARGS) { row_gemm(EQ_F_T158, 256, w, a, r0, r1, (int32_t *)acc, acc_stride); }
void EQ_ARM(t158_block_matvec)(DOT_ARGS) {
    (void)acc_stride;
    block_matvec(EQ_F_T158, 256, w, a, r0, r1, (float *)acc);
}
void EQ_ARM(t158_block_gemm)(DOT_ARGS) { block_gemm(EQ_F_T158, 256, w, a, r0, r1, (float *)acc, acc_stride); }

void EQ_ARM(b1_row_matvec)(DOT_ARGS) {
    (void)acc_stride;
    row_matvec(EQ_F_B1, 64, w, a, r0, r1, (int32_t *)acc);
}
void EQ_ARM(b1_row_gemm)(DOT_ARGS) { row_gemm(EQ_F_B1, 64, w, a, r0, r1, (int32_t *)acc, acc_stride); }

void EQ_ARM(q4_block_matvec)(DOT_ARGS) {
    (void)acc_stride;
    if (w->block == 32)
        block_matvec(EQ_F_Q4, 32, w, a, r0, r1, (float *)acc);
    else if (w->block == 64)
        block_matvec(EQ_F_Q4, 64, w, a, r0, r1, (float *)acc);
    else
        block_matvec(EQ_F_Q4, 128, w, a, r0, r1, (float *)acc);
}
void EQ_ARM(q4_block_gemm)(DOT_ARGS) {
    if (w->block == 32)
        block_gemm(EQ_F_Q4, 32, w, a, r0, r1, (float *)acc, acc_stride);
    else if (w->block == 64)
        block_gemm(EQ_F_Q4, 64, w, a, r0, r1, (float *)acc, acc_stride);
    else
        block_gemm(EQ_F_Q4, 128, w, a, r0, r1, (float *)acc, acc_stride);
}
