/*
 * edgeq_pal_hooks.h -- the platform hooks handed over at run time, for builds of libedgeq that have
 * no platform of their own (runtimes/Makefile PAL=hooks, and FREESTANDING=1: the libedgeq.so for
 * Android apps, docs/android.md). There the edgeq_pal_* functions of edgeq_pal.h call these.
 *
 * Defaults (before any call, or after edgeq_pal_set_hooks(NULL)): ticks read 0 (layer profiles
 * are 0), no energy meter, and no allocator -- edgeq_create then needs a caller arena sized by
 * edgeq_arena_size (arena == NULL is EDGEQ_E_NO_MEMORY).
 */
#ifndef EDGEQ_PAL_HOOKS_H
#define EDGEQ_PAL_HOOKS_H

#include "edgeq_pal.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct {
    uint32_t abi_version;                       /* EDGEQ_ABI_VERSION */
    uint32_t reserved;
    uint64_t (*ticks)(void);                    /* monotonic counter, or NULL */
    uint64_t ticks_per_second;                  /* rate of ticks */
    int (*energy_uj)(uint64_t *microjoules);    /* as edgeq_pal_energy_uj, or NULL: no meter */
    void *(*alloc)(size_t bytes, size_t align); /* as edgeq_pal_alloc, or NULL: no allocator */
    void (*free)(void *block);                  /* required with alloc */
} edgeq_pal_hooks_t;

/* Copies the hooks in (NULL restores the defaults). Call once at start-up, before the first
 * edgeq_create and while no model exists: a model's arena goes back to the free hook current at
 * edgeq_destroy. EDGEQ_E_ABI if hooks->abi_version differs, EDGEQ_E_ARG for alloc without free
 * or ticks without a rate; the previous hooks stay then. */
EDGEQ_API edgeq_status_t edgeq_pal_set_hooks(const edgeq_pal_hooks_t *hooks);

#ifdef __cplusplus
}
#endif
#endif /* EDGEQ_PAL_HOOKS_H */
