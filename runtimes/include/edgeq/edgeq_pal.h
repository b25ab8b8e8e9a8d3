/*
 * edgeq_pal.h -- platform hooks. The runtime never reads a clock, allocates or prints on its own:
 * it calls these. src/pal_posix.c implements them for Linux/POSIX; an MCU build links its own file
 * (SysTick/DWT cycle counter, a static pool or no allocator, an energy ADC or none).
 */
#ifndef EDGEQ_PAL_H
#define EDGEQ_PAL_H

#include <stddef.h>
#include <stdint.h>

#include "edgeq.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Monotonic tick counter and its rate (per-layer profiling). */
EDGEQ_API uint64_t edgeq_pal_ticks(void);
EDGEQ_API uint64_t edgeq_pal_ticks_per_second(void);
/* Cumulative energy in microjoules since an arbitrary origin; returns 0 on success, -1 when the
 * platform has no meter. */
EDGEQ_API int edgeq_pal_energy_uj(uint64_t *microjoules);
/* Only used by edgeq_create(arena = NULL): one block, `align`-aligned, or NULL. */
EDGEQ_API void *edgeq_pal_alloc(size_t bytes, size_t align);
EDGEQ_API void edgeq_pal_free(void *block);

#ifdef __cplusplus
}
#endif
#endif /* EDGEQ_PAL_H */
