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
 * weights. Two groups at a time share each activation load.
 */
/* Crumbs of the 4 words v (one 64-byte load) into the accumulators a, b, c of one group. */
#define T2_WORD(a, b, c, v, x, t)                                                                                 \
    do {                                                                                                          \
        a = DOT_LANE(a, vreinterpretq_s8_u8(vandq_u8(v, m0)), x.val[0], t);                                      \
        b = DOT_LANE(b, vreinterpretq_s8_u8(vandq_u8(v, m1)), x.val[1], t);                                      \
        c = DOT_LANE(c, vreinterpretq_s8_u8(vandq_u8(v, m2)), x.val[2], t);                                      \
        a = DOT_LANE(a, vreinterpretq_s8_u8(vshrq_n_u8(v, 6)), x.val[3], t);                                     \
    } while (0)
#define T2_CHUNK(a, b, c, q, x)                                                                                   \
    do {                                                                                                          \
        const uint8x16x4_t v_ = vld1q_u8_x4(q);                                                                   \
        q += 64;                                                                                                  \
        T2_WORD(a, b, c, v_.val[0], x, 0);                                                                        \
        T2_WORD(a, b, c, v_.val[1], x, 1);                                                                        \
        T2_WORD(a, b, c, v_.val[2], x, 2);                                                                        \
        T2_WORD(a, b, c, v_.val[3], x, 3);                                                                        \
    } while (0)

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
        for (c = 0; c < 4; c++) {
            const int8x16x4_t x = vld1q_s8_x4(xp);
            xp += 64;
            T2_CHUNK(a0, b0, c0, q0, x);
            T2_CHUNK(a1, b1, c1, q1, x);
        }
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

/* Q4 correction of 4 rows' raw block sums: raw - z * xsum (z = 8 when symmetric). */
EQ_INLINE int32x4_t q4_fix(const eq_weights_t *w, int g, int b, int32x4_t raw, int32_t xs) {
    if (w->zeros) return vmlsq_n_s32(raw, zeros4(w->zeros + ((size_t)g * (size_t)w->n_blocks + (size_t)b) * GROUP), xs);
    return vsubq_s32(raw, vdupq_n_s32(8 * xs));
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
 * GEMM (n > 1): each group block is decoded once to symbol vectors (sym[4 v + t] pairs with lane t of the
 * block's activation vector v, in the activation order the tier's row-major GEMM uses: T2 the plain row,
 * Q4 prep()'s deinterleaved one), then dotted with every activation row.
 */
EQ_INLINE void decode_group_block(int fmt, int B, const uint8_t *q, int8x16_t *sym) {
    int j, v, t;
    if (fmt == EQ_F_T2) { /* vector v = 8 h + 2 l + u holds x[128 h + 32 l + 16 u]: crumb l of word 8 h + 4 u + t */
        for (v = 0; v < 16; v++) {
            const int h = v >> 3, l = (v >> 1) & 3, u = v & 1;
            for (t = 0; t < 4; t++) {
                const uint8x16_t word = ldu16(q + 16 * (8 * h + 4 * u + t));
                uint8x16_t c = word;
                if (l == 1) c = vshrq_n_u8(word, 2);
                if (l == 2) c = vshrq_n_u8(word, 4);
                if (l == 3) c = vshrq_n_u8(word, 6);
                sym[4 * v + t] = vreinterpretq_s8_u8(vandq_u8(c, vdupq_n_u8(3)));
            }
        }
        return;
    }
    for (j = 0; j < B / 8; j++) { /* Q4: word j of chunk c = j / 4 -> vectors 2 c (low) and 2 c + 1 (high) */
        const uint8x16_t word = ldu16(q + 16 * j);
        const int c = j / 4;
        t = j % 4;
        sym[4 * (2 * c) + t] = vreinterpretq_s8_u8(vandq_u8(word, vdupq_n_u8(15)));
        sym[4 * (2 * c + 1) + t] = vreinterpretq_s8_u8(vshrq_n_u8(word, 4));
    }
}

EQ_INLINE int32x4_t dot_group_block(const int8x16_t *sym, int B, const int8_t *x) {
    int32x4_t s = vdupq_n_s32(0);
    int v;
    for (v = 0; v < B / 16; v++) {
        const int8x16_t xv = ld16(x + 16 * v);
        s = DOT_LANE(s, sym[4 * v + 0], xv, 0);
        s = DOT_LANE(s, sym[4 * v + 1], xv, 1);
        s = DOT_LANE(s, sym[4 * v + 2], xv, 2);
        s = DOT_LANE(s, sym[4 * v + 3], xv, 3);
    }
    return s;
}

EQ_INLINE void gemm(int fmt, int B, const eq_weights_t *w, const eq_acts_t *a, int r0, int r1, void *acc,
                    size_t acc_stride) {
    const acts_view_t v = view(w, a);
    const int nb = w->n_blocks, n = a->n, block_scales = w->acc_kind == EQ_ACC_BLOCK;
    const size_t cb = code_bytes(fmt, B);
    int32x4_t s[EQ_MAX_N];
    float32x4_t accf[EQ_MAX_N];
    int8x16_t sym[EQ_MAX_BLOCK / 4];
    int g, b, i;
    for (g = r0 / GROUP; g <= (r1 - 1) / GROUP; g++) {
        const uint8_t *q = group_codes(w, g);
        for (i = 0; i < n; i++) {
            s[i] = vdupq_n_s32(0);
            accf[i] = vdupq_n_f32(0.0f);
        }
        for (b = 0; b < nb; b++) {
            decode_group_block(fmt, B, q + (size_t)b * GROUP * cb, sym);
            for (i = 0; i < n; i++) {
                const int32_t xs = v.xsum[(size_t)i * (size_t)nb + (size_t)b];
                const int32x4_t raw = dot_group_block(sym, B, v.x + (size_t)i * v.stride + (size_t)b * (size_t)B);
                if (!block_scales) {
                    s[i] = vaddq_s32(s[i], vsubq_s32(raw, vdupq_n_s32(xs)));
                } else {
                    const int32x4_t isum = fmt == EQ_F_Q4 ? q4_fix(w, g, b, raw, xs) : vsubq_s32(raw, vdupq_n_s32(xs));
                    accf[i] = vaddq_f32(accf[i], vmulq_f32(group_scales(w, g, b), vcvtq_f32_s32(isum)));
                }
            }
        }
        for (i = 0; i < n; i++)
            store_lanes((char *)acc + (size_t)i * acc_stride * 4, g, r0, r1,
                        block_scales ? vreinterpretq_s32_f32(accf[i]) : s[i]);
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
