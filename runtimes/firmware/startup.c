/*
 * Reset and exception entry for every Cortex-M image: the vector table (first thing in FLASH, see the
 * linker script edgeq.targets.mcu.linker_script writes), .data copied from flash, .bss zeroed, the FPU
 * (and Helium, which uses the same coprocessor access bits) switched on when the build uses it.
 */
#include <stdint.h>

#include "fw.h"

extern uint32_t __StackTop, __data_start__, __data_end__, __etext, __bss_start__, __bss_end__;
int main(void);
void Reset_Handler(void);
void SysTick_Handler(void);
void fw_fault(const char *what);

static void HardFault_Handler(void) { fw_fault("hard fault"); }
static void MemManage_Handler(void) { fw_fault("memory management fault"); }
static void BusFault_Handler(void) { fw_fault("bus fault"); }
static void UsageFault_Handler(void) { fw_fault("usage fault"); }
static void Default_Handler(void) { fw_fault("unexpected interrupt"); }

#ifdef EDGEQ_UART_IRQ /* the board wakes from WFI on its UART's receive interrupt */
#define VECTORS (16 + EDGEQ_UART_IRQ + 1)
#else
#define VECTORS 16
#endif

__attribute__((section(".isr_vector"), used)) void (*const edgeq_vectors[VECTORS])(void) = {
    (void (*)(void))(uintptr_t)&__StackTop,
    Reset_Handler,
    Default_Handler,    /* NMI */
    HardFault_Handler,
    MemManage_Handler,
    BusFault_Handler,
    UsageFault_Handler,
    Default_Handler,    /* SecureFault (v8-M) */
    0, 0, 0,
    Default_Handler,    /* SVCall */
    Default_Handler,    /* DebugMonitor */
    0,
    Default_Handler,    /* PendSV */
    SysTick_Handler,
#ifdef EDGEQ_UART_IRQ
    [16 + EDGEQ_UART_IRQ] = board_uart_irq, /* other external interrupts are never enabled */
#endif
};

#define SCB_CPACR (*(volatile uint32_t *)0xE000ED88u)
#define SCB_SHCSR (*(volatile uint32_t *)0xE000ED24u)

void Reset_Handler(void) {
    uint32_t *src = &__etext, *dst = &__data_start__;
    while (dst < &__data_end__) *dst++ = *src++;
    for (dst = &__bss_start__; dst < &__bss_end__;) *dst++ = 0;
#if defined(__ARM_FP) || defined(__ARM_FEATURE_MVE)
    SCB_CPACR |= 0xFu << 20; /* CP10 + CP11 full access: FPU (and MVE) */
    __asm__ volatile("dsb\n\tisb" ::: "memory");
#endif
    SCB_SHCSR |= 0x7u << 16; /* separate MemManage / BusFault / UsageFault handlers */
    board_init();
    main();
    for (;;) {}
}
