/* Test-only program: runs kernel_shim.c's calls from a file of records, for targets whose kernels
 * cannot be loaded into the host's Python (aarch64 under qemu-user, tests/test_kernels_arm.py).
 * Record: int32 header[15] = kind (0 dot, 1 xnor, 2 lookup-table mat-vec: n = calls after one pack, 3 dot on
 * ROWS4 weights: codes of whole groups of 4 rows), tier, fmt, acc_kind, block, rows, cols, row_bytes,
 * n, r0, r1, zeros_bytes, scales_bytes, x_bytes, acc_bytes; then codes, scales, zeros, x, acc (initial).
 * Output per record: the kernel name in 64 bytes (all zero when the tier lacks it), then acc. */
#include <stdio.h>
#include <string.h>

#include "kernel_shim.c"

static int read_all(FILE *f, void *p, size_t n) { return fread(p, 1, n, f) == n; }

int main(int argc, char **argv) {
    FILE *in, *out;
    int32_t h[15];
    if (argc != 3 || !(in = fopen(argv[1], "rb")) || !(out = fopen(argv[2], "wb"))) {
        fprintf(stderr, "usage: kernel_cli RECORDS OUT\n");
        return 2;
    }
    while (read_all(in, h, sizeof h)) {
        const size_t codes_bytes = (size_t)(h[0] == 3 ? (h[5] + 3) / 4 * 4 : h[5]) * (size_t)h[7];
        uint8_t *buf = malloc(codes_bytes + (size_t)h[11] + (size_t)h[12] + (size_t)h[13] + (size_t)h[14] + 64);
        uint8_t *codes = buf, *scales = codes + codes_bytes, *zeros = scales + h[12], *x = zeros + h[11];
        uint8_t *acc = x + h[13];
        char name[64];
        const char *got;
        if (!buf || !read_all(in, buf, codes_bytes + (size_t)h[11] + (size_t)h[12] + (size_t)h[13] + (size_t)h[14]))
            return 3;
#if defined(__aarch64__)
        if (h[0] == 2)
            got = eqt_lut(h[1], h[2], h[3], h[4], h[5], h[6], (size_t)h[7], codes, scales, (const int8_t *)x, h[9],
                          h[10], acc, h[8]);
        else
#endif
        if (h[0] == 1)
            got = eqt_xnor(h[1], h[5], h[6], (size_t)h[7], codes, (const uint32_t *)x, h[8], h[9], h[10],
                           (int32_t *)acc);
        else
            got = eqt_dot_layout(h[1], h[2], h[3], h[4], h[5], h[6], (size_t)h[7], codes, scales, h[11] ? zeros : NULL,
                                 (const int8_t *)x, h[8], h[9], h[10], acc, h[0] == 3);
        memset(name, 0, sizeof name);
        if (got) strncpy(name, got, sizeof name - 1);
        fwrite(name, 1, sizeof name, out);
        fwrite(acc, 1, (size_t)h[14], out);
        free(buf);
    }
    fclose(out);
    return 0;
}
