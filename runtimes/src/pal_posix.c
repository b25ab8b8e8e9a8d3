/* Default platform hooks for Linux/POSIX hosts and boards. */
#define _POSIX_C_SOURCE 199309L
#include <time.h>

#include "edgeq/edgeq_pal.h"

uint64_t edgeq_pal_now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}
