/*
 * edgeq_pal for bare-metal Cortex-M: SysTick is the tick source (every Cortex-M has it; DWT CYCCNT is
 * optional and qemu does not model it). It free-runs from the processor clock with a 24-bit reload,
 * and its interrupt counts wraps, so ticks are core cycles on a real chip. Under qemu -icount every
 * instruction advances virtual time by 2^shift ns, so the counts are deterministic, instruction-derived
 * *emulated* ticks. There is no allocator (edgeq_create always gets the caller's static arena) and no
 * energy meter.
 */
#include "edgeq/edgeq_pal.h"
#include "fw.h"

#define SYST_CSR (*(volatile uint32_t *)0xE000E010u)
#define SYST_RVR (*(volatile uint32_t *)0xE000E014u)
#define SYST_CVR (*(volatile uint32_t *)0xE000E018u)
#define SYST_RELOAD 0x00FFFFFFu

static volatile uint32_t systick_wraps;

void SysTick_Handler(void) { systick_wraps++; }

void fw_ticks_start(void) {
    SYST_RVR = SYST_RELOAD;
    SYST_CVR = 0;
    SYST_CSR = 0x7u; /* enable, interrupt on wrap, processor clock */
}

uint64_t edgeq_pal_ticks(void) {
    uint32_t before, value, after;
    do { /* a wrap between the reads is seen as a changed count (its interrupt runs at once) */
        before = systick_wraps;
        value = SYST_CVR;
        after = systick_wraps;
    } while (before != after);
    return ((uint64_t)before << 24) + (SYST_RELOAD - value);
}

uint64_t edgeq_pal_ticks_per_second(void) { return board_core_hz(); }

int edgeq_pal_energy_uj(uint64_t *microjoules) {
    (void)microjoules;
    return -1;
}

void *edgeq_pal_alloc(size_t bytes, size_t align) {
    (void)bytes;
    (void)align;
    return 0;
}

void edgeq_pal_free(void *block) { (void)block; }
