/*
 * Bare-metal check that the Cortex-M DSP tier (and Helium, on the M55) is bit-exact with the reference tier, run under
 * qemu-system-arm by tests/test_mcu.py. T2, T158, Q4, I8 (and B1 where the tier has it) with random weights (every code value, Q4 zero points 0..15 or none),
 * activations with -128 and 127, fp16 block scales and fp32 row sums, mat-vec and GEMM, several shapes.
 * Reports through semihosting: "cm-kernels ok <tier> <cases>" per tier and exit 0, or the first mismatch and
 * exit 1.
 */
#include <stdint.h>
#include <string.h>

#include "edgeq/edgeq_blob.h"
#include "kernels.h"

extern const eq_kernel_tier_t eq_ref_tier;

static int semihost(int op, const void *arg) {
    register int r0 __asm__("r0") = op;
    register const void *r1 __asm__("r1") = arg;
    __asm__ volatile("bkpt 0xAB" : "+r"(r0) : "r"(r1) : "memory");
    return r0;
}
static void say(const char *s) { semihost(0x04, s); }
static void quit(int ok) { /* SYS_EXIT: qemu exits 0 for ApplicationExit, 1 for a run-time error */
    semihost(0x18, (const void *)(uintptr_t)(ok ? 0x20026u : 0x20023u));
    for (;;) {}
}
void board_init(void) {}
void fw_fault(const char *what) {
    say(what);
    quit(0);
}
void SysTick_Handler(void) {}

static uint32_t rng = 12345u;
static uint32_t next(void) {
    rng ^= rng << 13;
    rng ^= rng >> 17;
    rng ^= rng << 5;
    return rng;
}

static char *fmt_u(char *p, uint32_t v) {
    char tmp[10];
    int n = 0;
    do {
        tmp[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    while (n) *p++ = tmp[--n];
    return p;
}

#define MAX_ROWS 24
#define MAX_COLS 512
#define MAX_N 3
static uint8_t codes[MAX_ROWS * MAX_COLS];
static uint16_t scales[MAX_ROWS * (MAX_COLS / 16)];
static uint8_t zeros[MAX_ROWS * (MAX_COLS / 16)];
static int8_t x[MAX_N * MAX_COLS];
static uint32_t prep[MAX_N * (MAX_COLS / 2 + MAX_COLS / 16)];
static uint32_t acc_ref[MAX_N * MAX_ROWS], acc_cm[MAX_N * MAX_ROWS];

static int one_case(const eq_kernel_tier_t *tier, int fmt, int acc_kind, int block, int rows, int cols, int n,
                    int with_zeros) {
    const eq_format_kernels_t *k = &tier->fmt[fmt];
    const eq_dot_kernel_t *dot = &k->dot[acc_kind][n > 1], *ref = &eq_ref_tier.fmt[fmt].dot[acc_kind][n > 1];
    eq_weights_t w;
    eq_acts_t a;
    int i, code_bytes = fmt == EQ_F_T2     ? EDGEQ_T2_CODE_BYTES
                        : fmt == EQ_F_T158 ? EDGEQ_T158_CODE_BYTES
                        : fmt == EQ_F_B1   ? EDGEQ_B1_CODE_BYTES
                        : fmt == EQ_F_Q4   ? block / 2
                                           : block;
    memset(&w, 0, sizeof w);
    w.format = fmt;
    w.acc_kind = acc_kind;
    w.block = block;
    w.rows = rows;
    w.cols = cols;
    w.n_blocks = (cols + block - 1) / block;
    w.padded_cols = w.n_blocks * block;
    w.row_bytes = (size_t)w.n_blocks * (size_t)code_bytes;
    w.codes = codes;
    w.scales = scales;
    w.zeros = with_zeros ? zeros : 0;
    for (i = 0; i < rows * (int)w.row_bytes; i++) codes[i] = (uint8_t)next();
    for (i = 0; i < rows * w.n_blocks; i++) {
        scales[i] = (uint16_t)(0x2000u + next() % 0x3000u) | (uint16_t)(next() & 0x8000u); /* finite halves */
        zeros[i] = (uint8_t)(next() % 16);
    }
    for (i = 0; i < n * w.padded_cols; i++) {
        uint32_t r = next() % 16;
        x[i] = r == 0 ? -128 : r == 1 ? 127 : (int8_t)next();
    }
    for (i = 0; i < n; i++) memset(x + (size_t)i * w.padded_cols + cols, 0, (size_t)(w.padded_cols - cols)); /* padding */
    if (k->prep_bytes(&w, n) > sizeof prep) return 0;
    a.x = x;
    a.stride = (size_t)w.padded_cols;
    a.n = n;
    a.prep = 0;
    ref->fn(&w, &a, 0, rows, acc_ref, MAX_ROWS);
    k->prep(&w, x, a.stride, n, prep);
    a.prep = prep;
    dot->fn(&w, &a, 0, rows, acc_cm, MAX_ROWS);
    for (i = 0; i < n; i++)
        if (memcmp(acc_ref + i * MAX_ROWS, acc_cm + i * MAX_ROWS, (size_t)rows * 4)) return 0;
    return 1;
}

static int check_tier(const eq_kernel_tier_t *tier) {
    static const int fmts[5] = {EQ_F_T2, EQ_F_T158, EQ_F_B1, EQ_F_Q4, EQ_F_I8};
    char line[80], *p;
    uint32_t cases = 0;
    size_t len = strlen(tier->name);
    int f, acc_kind, n, t, z;
    for (t = 0; t < 4; t++)
        for (f = 0; f < 5; f++)
            for (acc_kind = 0; acc_kind < 2 && tier->fmt[fmts[f]].dot[0][0].fn; acc_kind++) /* formats it has */
                for (n = 1; n <= MAX_N; n++)
                    for (z = 0; z < (fmts[f] == EQ_F_Q4 ? 2 : 1); z++) {
                        int block = fmts[f] == EQ_F_T2 || fmts[f] == EQ_F_T158 ? 256
                                    : fmts[f] == EQ_F_I8                      ? EDGEQ_I8_BLOCK
                                    : fmts[f] == EQ_F_B1                      ? EDGEQ_B1_BLOCK
                                                                              : 32 << (t % 3);
                        int rows = 1 + (int)(next() % MAX_ROWS), cols = 1 + (int)(next() % MAX_COLS);
                        if (!one_case(tier, fmts[f], acc_kind, block, rows, cols, n, z)) {
                            p = (char *)memcpy(line, "cm-kernels MISMATCH ", 20) + 20;
                            p = (char *)memcpy(p, tier->name, len) + len;
                            p = fmt_u((char *)memcpy(p, " format ", 8) + 8, (uint32_t)fmts[f]);
                            memcpy(p, "\n", 2);
                            say(line);
                            return 0;
                        }
                        cases++;
                    }
    p = (char *)memcpy(line, "cm-kernels ok ", 14) + 14;
    p = (char *)memcpy(p, tier->name, len) + len;
    p = fmt_u((char *)memcpy(p, " ", 1) + 1, cases);
    memcpy(p, "\n", 2);
    say(line);
    return 1;
}

int main(void) {
    int ok = check_tier(&eq_cm_dsp_tier);
#if defined(__ARM_FEATURE_MVE)
    ok = check_tier(&eq_cm_mve_tier) && ok;
#endif
    quit(ok);
    return 0;
}
