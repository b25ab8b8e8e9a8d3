/*
 * Lookup-table ternary mat-vec (T2 and T158 weights, T-MAC / bitnet.cpp TL style), docs/kernels-arm.md.
 *
 * Groups of 3 ternary weights index a table of the 27 possible partial sums of their 3 activations.
 * pack(), once at load, turns each 256-weight block of a row into 86 group indices (the last group
 * holds 1 weight and 2 zero pads) and interleaves 8 rows: per 8-row tile, block and pair p of groups,
 * 16 bytes, byte 2i = index of row i's group 2p, byte 2i+1 = 32 + index of its group 2p+1. prep(),
 * once per call, builds for every group pair a 64-entry table (group 2p at 0..26, group 2p+1 at
 * 32..58) of exact int16 sums, stored as a table of their low bytes and one of their high bytes. The
 * kernel then does per 16 index bytes (8 rows x 6 weights) two TBL lookups (4-register tables) and two
 * pairwise accumulates: UADALP of the unsigned low bytes and SADALP of the signed high bytes into
 * 16-bit lanes, lane i = row i. Per block the lanes give isum = lo + 256 hi exactly (|lo| <= 43 * 510
 * fits uint16), so the result is bit-exact with the reference kernel; no multiply, no SDOT: the
 * kernel is the same in both tiers.
 */
#include "../ref/ref.h"
#include "neon_util.h"

#define LUT_ROWS 8                                  /* rows per tile: one per 16-bit lane */
#define LUT_PAIRS 43                                /* group pairs per 256-weight block (86 groups) */
#define LUT_PAIR_BYTES 16                           /* packed indices of one pair for one tile */
#define LUT_TABLE_BYTES 128                         /* low-byte table (64) + high-byte table (64) */
#define LUT_TILES 6                                 /* tiles sharing each table load */

EQ_INLINE int lut_tiles(const eq_weights_t *w) { return (w->rows + LUT_ROWS - 1) / LUT_ROWS; }

EQ_INLINE size_t lut_index_bytes(const eq_weights_t *w) {
    return align64((size_t)lut_tiles(w) * (size_t)w->n_blocks * LUT_PAIRS * LUT_PAIR_BYTES);
}

/* Packed indices, then (SCALE_BLOCK) fp32 block scales as [tile][block][8 rows], 0 for pad rows. */
size_t EQ_ARM(lut_pack_bytes)(const eq_weights_t *w) {
    size_t scales = w->acc_kind == EQ_ACC_BLOCK ? (size_t)lut_tiles(w) * (size_t)w->n_blocks * LUT_ROWS * 4 : 0;
    return lut_index_bytes(w) + scales;
}

/* 0 if a weight is not in {-1, 0, 1} (T2 code 3 decodes to 2): the caller keeps the dot kernel. */
int EQ_ARM(lut_pack)(const eq_weights_t *w, void *out) {
    uint8_t *idx = (uint8_t *)out;
    float *scales = (float *)(void *)(idx + lut_index_bytes(w));
    int8_t vals[EQ_MAX_BLOCK + 2];
    int t, b, i, g;
    for (t = 0; t < lut_tiles(w); t++)
        for (i = 0; i < LUT_ROWS; i++) {
            const int r = t * LUT_ROWS + i;
            for (b = 0; b < w->n_blocks; b++) {
                uint8_t *tile = idx + ((size_t)t * (size_t)w->n_blocks + (size_t)b) * LUT_PAIRS * LUT_PAIR_BYTES;
                memset(vals, 0, sizeof vals);
                if (r < w->rows) eq_ref_decode_block(w, r, b, vals);
                for (g = 0; g < EQ_MAX_BLOCK; g++)
                    if (vals[g] > 1 || vals[g] < -1) return 0;
                for (g = 0; g < 2 * LUT_PAIRS; g++) {
                    const int8_t *v = vals + 3 * g;
                    const int code = (v[0] + 1) + 3 * (v[1] + 1) + 9 * (v[2] + 1);
                    tile[(g / 2) * LUT_PAIR_BYTES + 2 * i + (g & 1)] = (uint8_t)(code + 32 * (g & 1));
                }
                if (w->acc_kind == EQ_ACC_BLOCK)
                    scales[((size_t)t * (size_t)w->n_blocks + (size_t)b) * LUT_ROWS + (size_t)i] =
                        r < w->rows ? eq_f16_to_f32(((const uint16_t *)w->scales)[(size_t)r * (size_t)w->n_blocks + (size_t)b])
                                    : 0.0f;
            }
        }
    return 1;
}

size_t EQ_ARM(lut_prep_bytes)(const eq_weights_t *w, int n) {
    (void)n; /* mat-vec only: one table set */
    return (size_t)w->n_blocks * LUT_PAIRS * LUT_TABLE_BYTES;
}

/* Weight of activation k (0..2) in table entry e (lanes 0..31; 27..31 unused, 0). */
static const int16_t lut_sign[3][32] = {
    {-1, 0, 1, -1, 0, 1, -1, 0, 1, -1, 0, 1, -1, 0, 1, -1, 0, 1, -1, 0, 1, -1, 0, 1, -1, 0, 1, 0, 0, 0, 0, 0},
    {-1, -1, -1, 0, 0, 0, 1, 1, 1, -1, -1, -1, 0, 0, 0, 1, 1, 1, -1, -1, -1, 0, 0, 0, 1, 1, 1, 0, 0, 0, 0, 0},
    {-1, -1, -1, -1, -1, -1, -1, -1, -1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0},
};

/* Entries of the group whose activations are lanes k .. k + 2 of x: 4 vectors of 8 (a macro: lanes are
 * immediates). */
#define GROUP_ENTRIES(e, x, k)                                                                               \
    do {                                                                                                     \
        int j_;                                                                                              \
        for (j_ = 0; j_ < 4; j_++) {                                                                         \
            int16x8_t v_ = vmulq_laneq_s16(sign[0][j_], x, k);                                                \
            v_ = vmlaq_laneq_s16(v_, sign[1][j_], x, (k) + 1);                                                \
            e[j_] = vmlaq_laneq_s16(v_, sign[2][j_], x, (k) + 2);                                             \
        }                                                                                                    \
    } while (0)

/* Low-byte and high-byte tables of one group's 32 entries at table + 32 s (and + 64). */
EQ_INLINE void store_group(const int16x8_t *e, uint8_t *table) {
    int j;
    for (j = 0; j < 2; j++) {
        const uint8x16_t a = vreinterpretq_u8_s16(e[2 * j]), c = vreinterpretq_u8_s16(e[2 * j + 1]);
        vst1q_u8(table + 16 * j, vuzp1q_u8(a, c));      /* low bytes */
        vst1q_u8(table + 64 + 16 * j, vuzp2q_u8(a, c)); /* high bytes */
    }
}

void EQ_ARM(lut_prep)(const eq_weights_t *w, const int8_t *x, size_t stride, int n, void *prep) {
    uint8_t *table = (uint8_t *)prep;
    int16x8_t sign[3][4];
    int b, p, k, j;
    (void)stride;
    (void)n;
    for (k = 0; k < 3; k++)
        for (j = 0; j < 4; j++) sign[k][j] = vld1q_s16(lut_sign[k] + 8 * j);
    for (b = 0; b < w->n_blocks; b++)
        for (p = 0; p < LUT_PAIRS; p++, table += LUT_TABLE_BYTES) {
            const int8_t *xp = x + (size_t)b * 256 + (size_t)(6 * p);
            int8_t last[8] = {0, 0, 0, 0, 0, 0, 0, 0};
            int16x8_t xv, e[4];
            if (p == LUT_PAIRS - 1) { /* columns 252..255, then 2 pads: read nothing past the block */
                memcpy(last, xp, 4);
                xp = last;
            }
            xv = vmovl_s8(vld1_s8(xp)); /* the pair's 6 activations (+ 2 not used) */
            GROUP_ENTRIES(e, xv, 0);
            store_group(e, table);
            GROUP_ENTRIES(e, xv, 3);
            store_group(e, table + 32);
        }
}

/* isum of one block for the 8 rows of a tile, lanes 0..3 and 4..7. */
EQ_INLINE void block_isum(uint16x8_t lo, int16x8_t hi, int32x4_t *s) {
    s[0] = vmlal_n_s16(vreinterpretq_s32_u32(vmovl_u16(vget_low_u16(lo))), vget_low_s16(hi), 256);
    s[1] = vmlal_n_s16(vreinterpretq_s32_u32(vmovl_u16(vget_high_u16(lo))), vget_high_s16(hi), 256);
}

/* Tiles t .. t + nt - 1 (nt <= LUT_TILES, a constant after inlining); rows outside [r0, r1) untouched. */
EQ_INLINE void lut_tiles_matvec(const eq_weights_t *w, const uint8_t *tables, int t, int nt, int r0, int r1,
                                void *acc) {
    const uint8_t *idx = (const uint8_t *)w->packed;
    const float *scales = (const float *)(const void *)(idx + lut_index_bytes(w));
    const size_t tile_bytes = (size_t)w->n_blocks * LUT_PAIRS * LUT_PAIR_BYTES;
    const int block_acc = w->acc_kind == EQ_ACC_BLOCK;
    int32x4_t isum[LUT_TILES][2];
    float32x4_t accf[LUT_TILES][2];
    int b, p, j, h, k;
    for (j = 0; j < nt; j++)
        for (h = 0; h < 2; h++) {
            isum[j][h] = vdupq_n_s32(0);
            accf[j][h] = vdupq_n_f32(0.0f);
        }
    for (b = 0; b < w->n_blocks; b++) {
        const uint8_t *table = tables + (size_t)b * LUT_PAIRS * LUT_TABLE_BYTES;
        const uint8_t *code = idx + (size_t)t * tile_bytes + (size_t)b * LUT_PAIRS * LUT_PAIR_BYTES;
        uint16x8_t lo[LUT_TILES];
        int16x8_t hi[LUT_TILES];
        for (j = 0; j < nt; j++) {
            lo[j] = vdupq_n_u16(0);
            hi[j] = vdupq_n_s16(0);
        }
        for (p = 0; p < LUT_PAIRS; p++, table += LUT_TABLE_BYTES, code += LUT_PAIR_BYTES) {
            const uint8x16x4_t tlo = vld1q_u8_x4(table), thi = vld1q_u8_x4(table + 64);
            for (j = 0; j < nt; j++) {
                const uint8x16_t i = vld1q_u8(code + (size_t)j * tile_bytes);
                lo[j] = vpadalq_u8(lo[j], vqtbl4q_u8(tlo, i));
                hi[j] = vpadalq_s8(hi[j], vreinterpretq_s8_u8(vqtbl4q_u8(thi, i)));
            }
        }
        for (j = 0; j < nt; j++) {
            int32x4_t s[2];
            block_isum(lo[j], hi[j], s);
            if (!block_acc) {
                isum[j][0] = vaddq_s32(isum[j][0], s[0]);
                isum[j][1] = vaddq_s32(isum[j][1], s[1]);
            } else { /* block order, separate multiply and add: docs/numerics.md */
                const float *d = scales + ((size_t)(t + j) * (size_t)w->n_blocks + (size_t)b) * LUT_ROWS;
                accf[j][0] = vaddq_f32(accf[j][0], vmulq_f32(vld1q_f32(d), vcvtq_f32_s32(s[0])));
                accf[j][1] = vaddq_f32(accf[j][1], vmulq_f32(vld1q_f32(d + 4), vcvtq_f32_s32(s[1])));
            }
        }
    }
    for (j = 0; j < nt; j++) {
        int32_t ilanes[LUT_ROWS];
        float flanes[LUT_ROWS];
        vst1q_s32(ilanes, isum[j][0]);
        vst1q_s32(ilanes + 4, isum[j][1]);
        vst1q_f32(flanes, accf[j][0]);
        vst1q_f32(flanes + 4, accf[j][1]);
        for (k = 0; k < LUT_ROWS; k++) {
            const int r = (t + j) * LUT_ROWS + k;
            if (r < r0 || r >= r1) continue;
            if (block_acc)
                ((float *)acc)[r] = flanes[k];
            else
                ((int32_t *)acc)[r] = ilanes[k];
        }
    }
}

void EQ_ARM(lut_matvec)(const eq_weights_t *w, const eq_acts_t *a, int r0, int r1, void *acc, size_t acc_stride) {
    const uint8_t *tables = (const uint8_t *)a->prep;
    const int t1 = (r1 + LUT_ROWS - 1) / LUT_ROWS;
    int t;
    (void)acc_stride; /* one activation row */
    for (t = r0 / LUT_ROWS; t < t1; t += LUT_TILES) {
        switch (t1 - t) { /* a constant tile count for each inlined copy */
        case 1: lut_tiles_matvec(w, tables, t, 1, r0, r1, acc); break;
        case 2: lut_tiles_matvec(w, tables, t, 2, r0, r1, acc); break;
        case 3: lut_tiles_matvec(w, tables, t, 3, r0, r1, acc); break;
        case 4: lut_tiles_matvec(w, tables, t, 4, r0, r1, acc); break;
        case 5: lut_tiles_matvec(w, tables, t, 5, r0, r1, acc); break;
        default: lut_tiles_matvec(w, tables, t, LUT_TILES, r0, r1, acc); break;
        }
    }
}
