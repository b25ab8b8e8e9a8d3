/* The few C library functions the runtime uses, compiled in for FREESTANDING=1 builds that link no
 * libc at all (the libedgeq.so for Android apps: a library linked against glibc would not load
 * under bionic; docs/android.md). Everything else a platform gives comes through edgeq_pal.h.
 *
 * Built with -ffreestanding -fno-builtin (runtimes/Makefile) so the compiler does not turn these
 * loops back into calls to themselves. Hidden like every non-ABI symbol, so an app's own libc is
 * never interposed. rintf needs nothing here: the aarch64 compiler emits one frintx instruction. */
#include <stddef.h>
#include <stdint.h>

void *memcpy(void *restrict dst, const void *restrict src, size_t n) {
    unsigned char *d = dst;
    const unsigned char *s = src;
    while (n--) *d++ = *s++;
    return dst;
}

void *memmove(void *dst, const void *src, size_t n) {
    unsigned char *d = dst;
    const unsigned char *s = src;
    if (d < s) {
        while (n--) *d++ = *s++;
    } else {
        while (n--) d[n] = s[n];
    }
    return dst;
}

void *memset(void *dst, int c, size_t n) {
    unsigned char *d = dst;
    while (n--) *d++ = (unsigned char)c;
    return dst;
}

void *memchr(const void *p, int c, size_t n) {
    const unsigned char *s = p;
    for (; n; n--, s++)
        if (*s == (unsigned char)c) return (void *)(uintptr_t)s;
    return NULL;
}

int memcmp(const void *a, const void *b, size_t n) {
    const unsigned char *x = a, *y = b;
    for (; n; n--, x++, y++)
        if (*x != *y) return *x - *y;
    return 0;
}

/* 2^k for -126 <= k <= 127, built from its exponent bits. */
static float pow2(int32_t k) {
    union {
        uint32_t u;
        float f;
    } v;
    v.u = (uint32_t)(k + 127) << 23;
    return v.f;
}

/* e^x for SOFTMAX (compared with a 1e-6 tolerance, docs/numerics.md): Cody-Waite reduction
 * x = k ln2 + r, |r| <= ln2/2 (ln2_hi has 9 significant bits, so k * ln2_hi is exact), then the
 * Cephes degree-6 polynomial (max relative error ~1.2e-7 on that interval); 2^k is applied in
 * two halves so subnormal results need no special case. */
float expf(float x) {
    const float log2e = 1.44269504088896341f, ln2_hi = 0.693359375f, ln2_lo = -2.12194440e-4f;
    float t, r, p;
    int32_t k;
    if (x != x) return x;
    if (x > 88.7228394f) return pow2(127) * 2.0f; /* +inf */
    if (x < -103.972084f) return 0.0f;
    t = x * log2e;
    k = (int32_t)(t >= 0.0f ? t + 0.5f : t - 0.5f);
    r = x - (float)k * ln2_hi;
    r = r - (float)k * ln2_lo;
    p = 1.9875691500e-4f;
    p = p * r + 1.3981999507e-3f;
    p = p * r + 8.3334519073e-3f;
    p = p * r + 4.1665795894e-2f;
    p = p * r + 1.6666665459e-1f;
    p = p * r + 5.0000001201e-1f;
    p = p * r * r + r + 1.0f;
    return p * pow2(k / 2) * pow2(k - k / 2);
}
