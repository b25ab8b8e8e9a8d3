/* Streaming-read roof: one timed body = one pass summing a 256 MiB buffer (AVX2 when available),
 * split across T threads (each sums its own contiguous part).  usage: membw_driver [MiB] [threads] */
#include "bench_common.h"
#include <pthread.h>
#include <string.h>
#if defined(__AVX2__)
#include <immintrin.h>
#endif

typedef struct { const uint8_t *buf; size_t n; uint64_t sum; } part_t;

static void *sum_part(void *p) {
    part_t *c = (part_t *)p;
#if defined(__AVX2__)
    __m256i a0 = _mm256_setzero_si256(), a1 = a0, a2 = a0, a3 = a0;
    for (size_t i = 0; i < c->n; i += 128) {
        a0 = _mm256_add_epi64(a0, _mm256_load_si256((const __m256i *)(c->buf + i)));
        a1 = _mm256_add_epi64(a1, _mm256_load_si256((const __m256i *)(c->buf + i + 32)));
        a2 = _mm256_add_epi64(a2, _mm256_load_si256((const __m256i *)(c->buf + i + 64)));
        a3 = _mm256_add_epi64(a3, _mm256_load_si256((const __m256i *)(c->buf + i + 96)));
    }
    a0 = _mm256_add_epi64(_mm256_add_epi64(a0, a1), _mm256_add_epi64(a2, a3));
    c->sum = (uint64_t)_mm256_extract_epi64(a0, 0) + (uint64_t)_mm256_extract_epi64(a0, 3);
#else
    const uint64_t *q = (const uint64_t *)c->buf;
    uint64_t s0 = 0, s1 = 0, s2 = 0, s3 = 0;
    for (size_t i = 0; i < c->n / 8; i += 4) { s0 += q[i]; s1 += q[i + 1]; s2 += q[i + 2]; s3 += q[i + 3]; }
    c->sum = s0 + s1 + s2 + s3;
#endif
    return NULL;
}

#define MAX_THREADS 16
typedef struct { part_t parts[MAX_THREADS]; int threads; volatile uint64_t sink; } ctx_t;

static int body(void *p) {
    ctx_t *c = (ctx_t *)p;
    pthread_t th[MAX_THREADS];
    for (int t = 1; t < c->threads; t++)
        if (pthread_create(&th[t], NULL, sum_part, &c->parts[t]) != 0) return 1;
    sum_part(&c->parts[0]);
    for (int t = 1; t < c->threads; t++) pthread_join(th[t], NULL);
    for (int t = 0; t < c->threads; t++) c->sink += c->parts[t].sum;
    return 0;
}

int main(int argc, char **argv) {
    size_t n = (argc > 1 ? (size_t)atol(argv[1]) : 256) << 20;
    ctx_t c = {0};
    c.threads = argc > 2 ? atoi(argv[2]) : 1;
    if (c.threads < 1 || c.threads > MAX_THREADS) { fprintf(stderr, "threads must be 1..%d\n", MAX_THREADS); return 2; }
    uint8_t *b = aligned_alloc(64, n);
    memset(b, 1, n);
    size_t per = n / (size_t)c.threads / 128 * 128;
    for (int t = 0; t < c.threads; t++) {
        c.parts[t].buf = b + (size_t)t * per;
        c.parts[t].n = t + 1 < c.threads ? per : n - (size_t)t * per;
    }
    body(&c);
    return bench_serve(body, &c, NULL);
}
