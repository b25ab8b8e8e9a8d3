/* Platform hooks installed at run time (edgeq_pal_hooks.h): the PAL of builds with no platform of
 * their own, e.g. the freestanding libedgeq.so whose JNI glue supplies the clock and allocator. */
#include "edgeq/edgeq_pal_hooks.h"

static edgeq_pal_hooks_t hooks = {EDGEQ_ABI_VERSION, 0, 0, 0, 0, 0, 0};

edgeq_status_t edgeq_pal_set_hooks(const edgeq_pal_hooks_t *h) {
    static const edgeq_pal_hooks_t defaults = {EDGEQ_ABI_VERSION, 0, 0, 0, 0, 0, 0};
    if (!h) h = &defaults;
    if (h->abi_version != EDGEQ_ABI_VERSION) return EDGEQ_E_ABI;
    if ((h->alloc && !h->free) || (h->ticks && !h->ticks_per_second)) return EDGEQ_E_ARG;
    hooks = *h;
    return EDGEQ_OK;
}

uint64_t edgeq_pal_ticks(void) { return hooks.ticks ? hooks.ticks() : 0; }

uint64_t edgeq_pal_ticks_per_second(void) { return hooks.ticks ? hooks.ticks_per_second : 0; }

int edgeq_pal_energy_uj(uint64_t *microjoules) { return hooks.energy_uj ? hooks.energy_uj(microjoules) : -1; }

void *edgeq_pal_alloc(size_t bytes, size_t align) { return hooks.alloc ? hooks.alloc(bytes, align) : 0; }

void edgeq_pal_free(void *block) {
    if (block && hooks.free) hooks.free(block);
}
