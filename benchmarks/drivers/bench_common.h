/* Shared protocol of the bench drivers: after set-up the driver prints "ready", then reads lines
 * "N" from stdin, runs the timed body N times and prints the N times in ns on one line; "q" quits.
 * The first line is "ready [label]". This lets bench_kernels.py interleave repetitions of different contenders across processes. */
#ifndef BENCH_COMMON_H
#define BENCH_COMMON_H
#define _POSIX_C_SOURCE 200112L
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static inline uint64_t bench_now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

typedef int (*bench_body_fn)(void *ctx);

typedef void (*bench_hook_fn)(void *ctx);

/* `label` (may be NULL) follows "ready" on the first line, e.g. the kernels the driver will run.
 * `wake`/`park` (may be NULL) run around each request, untimed: a driver whose worker threads
 * spin-wait parks them in between, so an idle contender never steals a core from the timed one. */
static int bench_serve_hooks(bench_body_fn body, void *ctx, const char *label, bench_hook_fn wake,
                             bench_hook_fn park) {
    char line[64];
    printf("ready %s\n", label ? label : "");
    fflush(stdout);
    while (fgets(line, sizeof line, stdin)) {
        if (line[0] == 'q') break;
        int n = atoi(line);
        if (wake) wake(ctx);
        for (int i = 0; i < n; i++) {
            uint64_t t0 = bench_now_ns();
            if (body(ctx) != 0) {
                printf("error\n");
                fflush(stdout);
                return 1;
            }
            uint64_t t1 = bench_now_ns();
            printf("%llu%c", (unsigned long long)(t1 - t0), i + 1 < n ? ' ' : '\n');
        }
        if (park) park(ctx);
        if (n <= 0) printf("\n");
        fflush(stdout);
    }
    return 0;
}

static int bench_serve(bench_body_fn body, void *ctx, const char *label) {
    return bench_serve_hooks(body, ctx, label, NULL, NULL);
}
#endif
