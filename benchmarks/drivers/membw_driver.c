/* Streaming-read roof: one timed body = one pass summing a 256 MiB buffer (AVX2 when available). */
#include "bench_common.h"
#include <string.h>
#if defined(__AVX2__)
#include <immintrin.h>
#endif

typedef struct { const uint8_t *buf; size_t n; volatile uint64_t sink; } ctx_t;

static int body(void *p) {
    ctx_t *c = (ctx_t *)p;
#if defined(__AVX2__)
    __m256i a0 = _mm256_setzero_si256(), a1 = a0, a2 = a0, a3 = a0;
    for (size_t i = 0; i < c->n; i += 128) {
        a0 = _mm256_add_epi64(a0, _mm256_load_si256((const __m256i *)(c->buf + i)));
        a1 = _mm256_add_epi64(a1, _mm256_load_si256((const __m256i *)(c->buf + i + 32)));
        a2 = _mm256_add_epi64(a2, _mm256_load_si256((const __m256i *)(c->buf + i + 64)));
        a3 = _mm256_add_epi64(a3, _mm256_load_si256((const __m256i *)(c->buf + i + 96)));
    }
    a0 = _mm256_add_epi64(_mm256_add_epi64(a0, a1), _mm256_add_epi64(a2, a3));
    c->sink += (uint64_t)_mm256_extract_epi64(a0, 0) + (uint64_t)_mm256_extract_epi64(a0, 3);
#else
    const uint64_t *q = (const uint64_t *)c->buf;
    uint64_t s0 = 0, s1 = 0, s2 = 0, s3 = 0;
    for (size_t i = 0; i < c->n / 8; i += 4) { s0 += q[i]; s1 += q[i + 1]; s2 += q[i + 2]; s3 += q[i + 3]; }
    c->sink += s0 + s1 + s2 + s3;
#endif
    return 0;
}

int main(int argc, char **argv) {
    size_t mib = argc > 1 ? (size_t)atol(argv[1]) : 256;
    ctx_t c = {0};
    c.n = mib << 20;
    uint8_t *b = aligned_alloc(64, c.n);
    memset(b, 1, c.n);
    c.buf = b;
    body(&c);
    return bench_serve(body, &c, NULL);
}
