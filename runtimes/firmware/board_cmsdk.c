/*
 * Arm MPS2/MPS3 FPGA images (AN386 Cortex-M4, AN500 Cortex-M7, AN505 Cortex-M33, AN547 Cortex-M55), as
 * qemu-system-arm emulates them: CMSDK APB UART0 (base from the target's [emulator] uart_base, receive
 * interrupt [emulator] uart_rx_irq) and the fixed system clock of each image (EDGEQ_CORE_HZ, [emulator] core_hz).
 */
#include "fw.h"

#ifndef EDGEQ_UART_BASE
#error "define EDGEQ_UART_BASE (the CMSDK UART0 base address)"
#endif
#ifndef EDGEQ_CORE_HZ
#error "define EDGEQ_CORE_HZ (the image's system clock)"
#endif
#ifndef EDGEQ_BAUD
#define EDGEQ_BAUD 115200
#endif

#define UART_DATA (*(volatile uint32_t *)(EDGEQ_UART_BASE + 0x00u))
#define UART_STATE (*(volatile uint32_t *)(EDGEQ_UART_BASE + 0x04u)) /* bit0 TX full, bit1 RX full */
#define UART_CTRL (*(volatile uint32_t *)(EDGEQ_UART_BASE + 0x08u))  /* bit0 TX enable, bit1 RX enable */
#define UART_INTCLEAR (*(volatile uint32_t *)(EDGEQ_UART_BASE + 0x0Cu)) /* bit1 RX */
#define UART_BAUDDIV (*(volatile uint32_t *)(EDGEQ_UART_BASE + 0x10u))
#define NVIC_ISER ((volatile uint32_t *)0xE000E100u)

const char board_name[] = "mps-cmsdk";

void board_init(void) {
    UART_BAUDDIV = EDGEQ_CORE_HZ / EDGEQ_BAUD; /* minimum 16 on the FPGA; qemu does not pace bytes */
#ifdef EDGEQ_UART_IRQ
    UART_CTRL = 0x3u | 0x8u; /* TX, RX, RX interrupt */
    NVIC_ISER[EDGEQ_UART_IRQ / 32] = 1u << (EDGEQ_UART_IRQ % 32);
#else
    UART_CTRL = 0x3u;
#endif
}

void board_uart_irq(void) { UART_INTCLEAR = 0x2u; }

/* Sleep until the receive interrupt (or the SysTick wrap): under qemu a sleeping core costs the host no CPU.
 * Interrupts are masked around the check so a byte arriving just before WFI still wakes it (WFI wakes on a
 * pending interrupt even with PRIMASK set); the handler then runs at cpsie. */
void board_idle(void) {
#ifdef EDGEQ_UART_IRQ
    __asm__ volatile("cpsid i" ::: "memory");
    if (!(UART_STATE & 0x2u)) __asm__ volatile("wfi" ::: "memory");
    __asm__ volatile("cpsie i" ::: "memory");
#endif
}

int board_uart_getc(void) { return UART_STATE & 0x2u ? (int)(UART_DATA & 0xFFu) : -1; }

void board_uart_putc(uint8_t c) {
    while (UART_STATE & 0x1u) {}
    UART_DATA = c;
}

uint32_t board_core_hz(void) { return EDGEQ_CORE_HZ; }
