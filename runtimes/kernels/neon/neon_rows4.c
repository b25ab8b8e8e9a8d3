/*
 * dotprod kernels for T2 and Q4 weights in EDGEQ_LAYOUT_ROWS4 (edgeq_blob.h, docs/formats.md): groups of 4
 * rows interleaved in 4-byte words, so one 16-byte load holds the same 4 code bytes of 4 rows and one SDOT
 * by element (vdotq_laneq_s32) dots all 4 with the same 4 activations. The accumulator lanes ARE the rows:
 * no per-row reduction, one activation load serves every group, and block scales of a group are one
 * 8-byte load. Only the dotprod tier has them (SDOT by element is ARMv8.2); prep() is the tier's own
 * (neon_dot.c: per-block activation sums, T2 mat-vec's permuted row, Q4's deinterleaved rows), and the
 * symbol / correction arithmetic is the row-major kernels' (value = symbol - 1, or nibble - zero point).
 */
#include "neon_decode.h"

#ifdef EQ_DOTPROD

#define GROUP 4

/* lane k of x (4 int8) dotted with each of the 4 rows of w, added to acc (lane = row). */
#define DOT_LANE(acc, w, x, k) vdotq_laneq_s32(acc, w, x, k)

EQ_INLINE const uint8_t *group_codes(const eq_weights_t *w, int g) {
    return w->codes + (size_t)g * GROUP * w->row_bytes;
}

/* fp16 scales of group g, block b (4 rows, contiguous in ROWS4) as fp32 lanes. */
EQ_INLINE float32x4_t group_scales(const eq_weights_t *w, int g, int b) {
    const uint16_t *d = (const uint16_t *)w->scales + ((size_t)g * (size_t)w->n_blocks + (size_t)b) * GROUP;
    return vcvt_f32_f16(vreinterpret_f16_u16(vld1_u16(d)));
}

/* Lanes of v for rows 4 g .. 4 g + 3 that lie in [r0, r1). */
EQ_INLINE void store_lanes(void *acc, int g, int r0, int r1, int32x4_t v) {
    int32_t lanes[GROUP];
    int k;
    vst1q_s32(lanes, v);
    for (k = 0; k < GROUP; k++) {
        const int r = GROUP * g + k;
        if (r >= r0 && r < r1) memcpy((char *)acc + (size_t)r * 4, &lanes[k], 4); /* int32 or fp32 bits */
    }
}

/*
 * T2 mat-vec. A 64-byte load (4 words x 4 rows) is 16 code bytes of each row, the bytes one 64-byte
 * chunk of prep()'s permuted activation row (t2_permute) lines up with: crumb l of word t pairs with
 * lane t of activation vector l. Crumbs 0 and 3 give their codes directly (mask, shift down); crumb 1
 * (masked in place, 4 c) and crumb 2 (masked in place, 16 c) go to accumulators B and C, folded into A
 * at each block end (B >> 2, C >> 4 are exact: every term is a multiple). 4 ALU ops + 4 SDOT per 64
 * weights. Two groups at a time share each activation load. One chunk of both groups is written out in
 * assembly (3 loads, 32 mask/shift ops, 32 SDOT): gcc hoists the masks of all 8 words and spills
 * accumulators, 8 % more instructions.
 */
EQ_INLINE void t2_chunk2(const int8_t **xp, const uint8_t **q0, const uint8_t **q1, int32x4_t *a0, int32x4_t *b0,
                         int32x4_t *c0, int32x4_t *a1, int32x4_t *b1, int32x4_t *c1, uint8x16_t m0, uint8x16_t m1,
                         uint8x16_t m2) {
#define T2_WORD_ASM(W, A, B, C, T)                                                                                \
    "and v28.16b, " W ".16b, %[m0].16b\n\t"                                                                        \
    "and v29.16b, " W ".16b, %[m1].16b\n\t"                                                                        \
    "and v30.16b, " W ".16b, %[m2].16b\n\t"                                                                        \
    "ushr v31.16b, " W ".16b, #6\n\t"                                                                              \
    "sdot %[" A "].4s, v28.16b, v0.4b[" T "]\n\t"                                                                  \
    "sdot %[" B "].4s, v29.16b, v1.4b[" T "]\n\t"                                                                  \
    "sdot %[" C "].4s, v30.16b, v2.4b[" T "]\n\t"                                                                  \
    "sdot %[" A "].4s, v31.16b, v3.4b[" T "]\n\t"
    __asm__("ld1 {v0.16b-v3.16b}, [%[xp]], #64\n\t"
            "ld1 {v4.16b-v7.16b}, [%[q0]], #64\n\t"
            "ld1 {v24.16b-v27.16b}, [%[q1]], #64\n\t"
            T2_WORD_ASM("v4", "a0", "b0", "c0", "0") T2_WORD_ASM("v5", "a0", "b0", "c0", "1")
            T2_WORD_ASM("v6", "a0", "b0", "c0", "2") T2_WORD_ASM("v7", "a0", "b0", "c0", "3")
            T2_WORD_ASM("v24", "a1", "b1", "c1", "0") T2_WORD_ASM("v25", "a1", "b1", "c1", "1")
            T2_WORD_ASM("v26", "a1", "b1", "c1", "2") T2_WORD_ASM("v27", "a1", "b1", "c1", "3")
            : [xp] "+r"(*xp), [q0] "+r"(*q0), [q1] "+r"(*q1), [a0] "+w"(*a0), [b0] "+w"(*b0), [c0] "+w"(*c0),
              [a1] "+w"(*a1), [b1] "+w"(*b1), [c1] "+w"(*c1)
            : [m0] "w"(m0), [m1] "w"(m1), [m2] "w"(m2)
            : "v0", "v1", "v2", "v3", "v4", "v5", "v6", "v7", "v24", "v25", "v26", "v27", "v28", "v29", "v30", "v31",
              "memory");
#undef T2_WORD_ASM
}

/* Raw block sums of groups g and g + 1 (two == 0: g only; its twin is computed on g's codes and dropped),
 * as rows in lanes; block scales combine per block, row scales keep the running raw sum. */
EQ_INLINE void t2_matvec_groups(const eq_weights_t *w, const eq_acts_t *a, int g, int two, int r0, int r1, void *acc) {
    const uint8x16_t m0 = vdupq_n_u8(0x03), m1 = vdupq_n_u8(0x0C), m2 = vdupq_n_u8(0x30);
    const int32_t *xsum = (const int32_t *)a->prep;
    const int8_t *xp = (const int8_t *)a->prep + align64((size_t)w->n_blocks * sizeof(int32_t));
    const int nb = w->n_blocks, block_scales = w->acc_kind == EQ_ACC_BLOCK;
    const uint8_t *q0 = group_codes(w, g), *q1 = group_codes(w, two ? g + 1 : g);
    int32x4_t a0 = vdupq_n_s32(0), a1 = vdupq_n_s32(0);
    float32x4_t f0 = vdupq_n_f32(0.0f), f1 = vdupq_n_f32(0.0f);
    int b, c;
    for (b = 0; b < nb; b++) {
        int32x4_t b0 = vdupq_n_s32(0), c0 = vdupq_n_s32(0), b1 = vdupq_n_s32(0), c1 = vdupq_n_s32(0);
        for (c = 0; c < 4; c++) t2_chunk2(&xp, &q0, &q1, &a0, &b0, &c0, &a1, &b1, &c1, m0, m1, m2);
        a0 = vsraq_n_s32(vsraq_n_s32(a0, b0, 2), c0, 4); /* every B term is 4 c x, every C term 16 c x */
        a1 = vsraq_n_s32(vsraq_n_s32(a1, b1, 2), c1, 4);
        if (block_scales) { /* separate multiply and add: no FMA (docs/numerics.md) */
            const int32x4_t xs = vdupq_n_s32(xsum[b]);
            f0 = vaddq_f32(f0, vmulq_f32(group_scales(w, g, b), vcvtq_f32_s32(vsubq_s32(a0, xs))));
            f1 = vaddq_f32(f1, vmulq_f32(group_scales(w, two ? g + 1 : g, b), vcvtq_f32_s32(vsubq_s32(a1, xs))));
            a0 = a1 = vdupq_n_s32(0);
        }
    }
    if (block_scales) {
        store_lanes(acc, g, r0, r1, vreinterpretq_s32_f32(f0));
        if (two) store_lanes(acc, g + 1, r0, r1, vreinterpretq_s32_f32(f1));
    } else {
        const int32x4_t xt = vdupq_n_s32((int32_t)total(xsum, nb));
        store_lanes(acc, g, r0, r1, vsubq_s32(a0, xt));
        if (two) store_lanes(acc, g + 1, r0, r1, vsubq_s32(a1, xt));
    }
}

/*
 * Q4 mat-vec: a 64-byte load is one 32-weight chunk of each of the 4 rows; low nibbles of word t pair
 * with lane t of prep()'s 16 even activations of the chunk, high nibbles with the 16 odd ones.
 */
EQ_INLINE int32x4_t q4_word(int32x4_t s, uint8x16_t v, int8x16_t xe, int8x16_t xo, int t) {
    const int8x16_t lo = vreinterpretq_s8_u8(vandq_u8(v, vdupq_n_u8(15))), hi = vreinterpretq_s8_u8(vshrq_n_u8(v, 4));
    switch (t) {
    case 0: return DOT_LANE(DOT_LANE(s, lo, xe, 0), hi, xo, 0);
    case 1: return DOT_LANE(DOT_LANE(s, lo, xe, 1), hi, xo, 1);
    case 2: return DOT_LANE(DOT_LANE(s, lo, xe, 2), hi, xo, 2);
    default: return DOT_LANE(DOT_LANE(s, lo, xe, 3), hi, xo, 3);
    }
}

/* 4 words (one 64-byte load = one 32-weight chunk of 4 rows) into accumulator a. */
#define Q4_CHUNK(a, q, xe, xo)                                                                                    \
    do {                                                                                                          \
        const uint8x16x4_t v_ = vld1q_u8_x4(q);                                                                   \
        q += 64;                                                                                                  \
        a = q4_word(a, v_.val[0], xe, xo, 0);                                                                     \
        a = q4_word(a, v_.val[1], xe, xo, 1);                                                                     \
        a = q4_word(a, v_.val[2], xe, xo, 2);                                                                     \
        a = q4_word(a, v_.val[3], xe, xo, 3);                                                                     \
    } while (0)

/* Zero points of 4 rows (4 bytes) as int32 lanes. */
EQ_INLINE int32x4_t zeros4(const uint8_t *z) {
    uint32_t z4;
    memcpy(&z4, z, 4);
    return vreinterpretq_s32_u32(vmovl_u16(vget_low_u16(vmovl_u8(vcreate_u8(z4)))));
}

/* Groups g and g + 1 (two == 0: g only, its twin recomputed on g's codes and dropped), blocks of B. The
 * symmetric accumulator starts at -8 xsum (value = nibble - 8); with zero points it starts at 0 and
 * subtracts z xsum per lane. */
EQ_INLINE void q4_matvec_groups(int B, int has_zeros, const eq_weights_t *w, const eq_acts_t *a, int g, int two,
                                int r0, int r1, float *acc) {
    const acts_view_t v = view(w, a);
    const int nb = w->n_blocks, g1 = two ? g + 1 : g;
    const uint8_t *q0 = group_codes(w, g), *q1 = group_codes(w, g1);
    const uint16_t *d0 = (const uint16_t *)w->scales + (size_t)g * (size_t)nb * GROUP;
    const uint16_t *d1 = (const uint16_t *)w->scales + (size_t)g1 * (size_t)nb * GROUP;
    const uint8_t *z0 = has_zeros ? w->zeros + (size_t)g * (size_t)nb * GROUP : NULL;
    const uint8_t *z1 = has_zeros ? w->zeros + (size_t)g1 * (size_t)nb * GROUP : NULL;
    const int8_t *x = v.x;
    float32x4_t f0 = vdupq_n_f32(0.0f), f1 = vdupq_n_f32(0.0f);
    int b, c;
    for (b = 0; b < nb; b++) {
        const int32_t xs = v.xsum[b];
        int32x4_t s0 = vdupq_n_s32(has_zeros ? 0 : -8 * xs), s1 = s0;
        for (c = 0; c < B; c += 32) {
            const int8x16x2_t xv = vld1q_s8_x2(x);
            x += 32;
            Q4_CHUNK(s0, q0, xv.val[0], xv.val[1]);
            Q4_CHUNK(s1, q1, xv.val[0], xv.val[1]);
        }
        if (has_zeros) {
            s0 = vmlsq_n_s32(s0, zeros4(z0), xs);
            s1 = vmlsq_n_s32(s1, zeros4(z1), xs);
            z0 += GROUP;
            z1 += GROUP;
        }
        /* separate multiply and add: no FMA (docs/numerics.md) */
        f0 = vaddq_f32(f0, vmulq_f32(vcvt_f32_f16(vreinterpret_f16_u16(vld1_u16(d0))), vcvtq_f32_s32(s0)));
        f1 = vaddq_f32(f1, vmulq_f32(vcvt_f32_f16(vreinterpret_f16_u16(vld1_u16(d1))), vcvtq_f32_s32(s1)));
        d0 += GROUP;
        d1 += GROUP;
    }
    store_lanes(acc, g, r0, r1, vreinterpretq_s32_f32(f0));
    if (two) store_lanes(acc, g + 1, r0, r1, vreinterpretq_s32_f32(f1));
}

/* Groups covering rows [r0, r1), two at a time. */
#define FOR_GROUP_PAIRS(r0, r1, body)                                                                               \
    do {                                                                                                            \
        int g_, last_ = ((r1) - 1) / GROUP;                                                                         \
        for (g_ = (r0) / GROUP; g_ <= last_; g_ += 2) {                                                             \
            const int ng_ = g_ < last_ ? 2 : 1;                                                                     \
            (void)ng_;                                                                                              \
            body;                                                                                                   \
        }                                                                                                           \
    } while (0)

/*
 * GEMM (n > 1): one 64-byte chunk of a group (T2: 64 weights of each of the 4 rows, Q4: 32) is decoded
 * once to symbol vectors (T2: crumb values 0..2; Q4: nibbles) and dotted with every activation row, in
 * the activation order the tier's row-major GEMM uses (T2 the plain row, Q4 prep()'s deinterleaved one).
 * Accumulator lanes are the group's rows; SCALE_ROW sums run over the whole row, SCALE_BLOCK ones restart
 * per block and combine in block order.
 */
#define LANES4(s, y, x, t)                                                                                        \
    do {                                                                                                          \
        s = DOT_LANE(s, y[0], x[0], t);                                                                           \
        s = DOT_LANE(s, y[1], x[1], t);                                                                           \
        s = DOT_LANE(s, y[2], x[2], t);                                                                           \
        s = DOT_LANE(s, y[3], x[3], t);                                                                           \
    } while (0)

/* T2 chunk c of a block: word t, crumb l pairs with lane t of x[128 (c >> 1) + 32 l + 16 (c & 1)]. */
EQ_INLINE void t2_gemm_chunk(const uint8_t *q, int c, const acts_view_t *v, int b, int n, int32x4_t *s) {
    const uint8x16x4_t code = vld1q_u8_x4(q);
    const uint8x16_t m3 = vdupq_n_u8(3);
    int8x16_t y[4][4];
    int t, i;
    for (t = 0; t < 4; t++) {
        y[t][0] = vreinterpretq_s8_u8(vandq_u8(code.val[t], m3));
        y[t][1] = vreinterpretq_s8_u8(vandq_u8(vshrq_n_u8(code.val[t], 2), m3));
        y[t][2] = vreinterpretq_s8_u8(vandq_u8(vshrq_n_u8(code.val[t], 4), m3));
        y[t][3] = vreinterpretq_s8_u8(vshrq_n_u8(code.val[t], 6));
    }
    for (i = 0; i < n; i++) {
        const int8_t *xi = v->x + (size_t)i * v->stride + (size_t)b * 256 + 128 * (c >> 1) + 16 * (c & 1);
        const int8x16_t x[4] = {ld16(xi), ld16(xi + 32), ld16(xi + 64), ld16(xi + 96)};
        int32x4_t acc = s[i];
        LANES4(acc, y[0], x, 0);
        LANES4(acc, y[1], x, 1);
        LANES4(acc, y[2], x, 2);
        LANES4(acc, y[3], x, 3);
        s[i] = acc;
    }
}

/* Q4 chunk c (32 weights) of a block: low nibbles of word t pair with lane t of the 16 even activations,
 * high nibbles with the 16 odd ones. */
EQ_INLINE void q4_gemm_chunk(const uint8_t *q, int c, const acts_view_t *v, int b, int B, int n, int32x4_t *s) {
    const uint8x16x4_t code = vld1q_u8_x4(q);
    int8x16_t lo[4], hi[4];
    int t, i;
    for (t = 0; t < 4; t++) {
        lo[t] = vreinterpretq_s8_u8(vandq_u8(code.val[t], vdupq_n_u8(15)));
        hi[t] = vreinterpretq_s8_u8(vshrq_n_u8(code.val[t], 4));
    }
    for (i = 0; i < n; i++) {
        const int8_t *xi = v->x + (size_t)i * v->stride + (size_t)b * (size_t)B + 32 * (size_t)c;
        const int8x16_t xe = ld16(xi), xo = ld16(xi + 16);
        int32x4_t acc = s[i];
        acc = DOT_LANE(DOT_LANE(acc, lo[0], xe, 0), hi[0], xo, 0);
        acc = DOT_LANE(DOT_LANE(acc, lo[1], xe, 1), hi[1], xo, 1);
        acc = DOT_LANE(DOT_LANE(acc, lo[2], xe, 2), hi[2], xo, 2);
        acc = DOT_LANE(DOT_LANE(acc, lo[3], xe, 3), hi[3], xo, 3);
        s[i] = acc;
    }
}

EQ_INLINE void gemm(int fmt, int B, const eq_weights_t *w, const eq_acts_t *a, int r0, int r1, void *acc,
                    size_t acc_stride) {
    const acts_view_t v = view(w, a);
    const int nb = w->n_blocks, n = a->n, block_scales = w->acc_kind == EQ_ACC_BLOCK;
    const int chunks = fmt == EQ_F_T2 ? 4 : B / 32; /* 64-byte chunks per group block */
    int32x4_t s[EQ_MAX_N];
    float32x4_t f[EQ_MAX_N];
    int g, b, c, i;
    for (g = r0 / GROUP; g <= (r1 - 1) / GROUP; g++) {
        const uint8_t *q = group_codes(w, g);
        for (i = 0; i < n; i++) {
            s[i] = vdupq_n_s32(0);
            f[i] = vdupq_n_f32(0.0f);
        }
        for (b = 0; b < nb; b++) {
            for (c = 0; c < chunks; c++, q += 64) {
                if (fmt == EQ_F_T2)
                    t2_gemm_chunk(q, c, &v, b, n, s);
                else
                    q4_gemm_chunk(q, c, &v, b, B, n, s);
            }
            if (block_scales) { /* value = symbol - z: z = 1 (T2), 8 or the zero points (Q4) */
                const float32x4_t d = group_scales(w, g, b);
                const int32x4_t z = fmt == EQ_F_T2 ? vdupq_n_s32(1)
                                    : w->zeros ? zeros4(w->zeros + ((size_t)g * (size_t)nb + (size_t)b) * GROUP)
                                               : vdupq_n_s32(8);
                for (i = 0; i < n; i++) {
                    const int32x4_t isum = vmlsq_n_s32(s[i], z, v.xsum[(size_t)i * (size_t)nb + (size_t)b]);
                    f[i] = vaddq_f32(f[i], vmulq_f32(d, vcvtq_f32_s32(isum)));
                    s[i] = vdupq_n_s32(0);
                }
            }
        }
        for (i = 0; i < n; i++) {
            const int32x4_t out = block_scales ? vreinterpretq_s32_f32(f[i])
                                               : vsubq_s32(s[i], vdupq_n_s32((int32_t)total(v.xsum + (size_t)i * (size_t)nb, nb)));
            store_lanes((char *)acc + (size_t)i * acc_stride * 4, g, r0, r1, out);
        }
    }
}

#define DOT_ARGS const eq_weights_t *w, const eq_acts_t *a, int r0, int r1, void *acc, size_t acc_stride

static void t2_rows4_matvec(DOT_ARGS) {
    (void)acc_stride;
    FOR_GROUP_PAIRS(r0, r1, t2_matvec_groups(w, a, g_, ng_ == 2, r0, r1, acc));
}
static void t2_rows4_gemm(DOT_ARGS) { gemm(EQ_F_T2, 256, w, a, r0, r1, acc, acc_stride); }

static void q4_rows4_matvec(DOT_ARGS) {
    (void)acc_stride;
#define Q4_MATVEC(B, Z) FOR_GROUP_PAIRS(r0, r1, q4_matvec_groups(B, Z, w, a, g_, ng_ == 2, r0, r1, (float *)acc))
    if (w->block == 32 && !w->zeros)
        Q4_MATVEC(32, 0);
    else if (w->block == 32)
        Q4_MATVEC(32, 1);
    else if (w->block == 64 && !w->zeros)
        Q4_MATVEC(64, 0);
    else if (w->block == 64)
        Q4_MATVEC(64, 1);
    else if (!w->zeros)
        Q4_MATVEC(128, 0);
    else
        Q4_MATVEC(128, 1);
#undef Q4_MATVEC
}
static void q4_rows4_gemm(DOT_ARGS) {
    if (w->block == 32)
        gemm(EQ_F_Q4, 32, w, a, r0, r1, acc, acc_stride);
    else if (w->block == 64)
        gemm(EQ_F_Q4, 64, w, a, r0, r1, acc, acc_stride);
    else
        gemm(EQ_F_Q4, 128, w, a, r0, r1, acc, acc_stride);
}

#define K(name, fn) {EQ_ARM_TIER "/" name, fn}

size_t EQ_ARM(prep_bytes)(const eq_weights_t *w, int n); /* neon_dot.c */
void EQ_ARM(prep)(const eq_weights_t *w, const int8_t *x, size_t stride, int n, void *prep);

/* The tier's T2 and Q4 kernels for ROWS4 weights (kernels.h eq_rows4_kernels). */
const eq_format_kernels_t EQ_ARM(t2_rows4) = {
    EQ_ARM(prep_bytes), EQ_ARM(prep),
    {{K("t2_rows4_row_matvec", t2_rows4_matvec), K("t2_rows4_row_gemm", t2_rows4_gemm)},
     {K("t2_rows4_block_matvec", t2_rows4_matvec), K("t2_rows4_block_gemm", t2_rows4_gemm)}},
    NULL, NULL};
const eq_format_kernels_t EQ_ARM(q4_rows4) = {
    EQ_ARM(prep_bytes), EQ_ARM(prep),
    {{{NULL, NULL}, {NULL, NULL}}, {K("q4_rows4_block_matvec", q4_rows4_matvec), K("q4_rows4_block_gemm", q4_rows4_gemm)}},
    NULL, NULL};

#else
typedef int eq_neon_rows4_needs_dotprod; /* SDOT by element: the ARMv8.0 tier reads row-major weights only */
#endif
