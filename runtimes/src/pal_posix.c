/* Default platform hooks for Linux/POSIX hosts and boards. */
#define _POSIX_C_SOURCE 200112L
#include <fcntl.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include "edgeq/edgeq_pal.h"

uint64_t edgeq_pal_ticks(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

uint64_t edgeq_pal_ticks_per_second(void) { return 1000000000ull; }

/* Linux powercap (Intel RAPL package domain) where readable; otherwise no meter. */
int edgeq_pal_energy_uj(uint64_t *microjoules) {
    char buf[32];
    ssize_t n, i;
    uint64_t v = 0;
    int fd = open("/sys/class/powercap/intel-rapl:0/energy_uj", O_RDONLY);
    if (fd < 0) return -1;
    n = read(fd, buf, sizeof buf);
    close(fd);
    if (n <= 0) return -1;
    for (i = 0; i < n && buf[i] >= '0' && buf[i] <= '9'; i++) v = v * 10 + (uint64_t)(buf[i] - '0');
    if (i == 0) return -1;
    *microjoules = v;
    return 0;
}

void *edgeq_pal_alloc(size_t bytes, size_t align) {
    void *p = NULL;
    return posix_memalign(&p, align, bytes ? bytes : 1) == 0 ? p : NULL;
}

void edgeq_pal_free(void *block) { free(block); }
