/*
 * Arm MPS2/MPS3 FPGA images (AN386 Cortex-M4, AN500 Cortex-M7, AN505 Cortex-M33, AN547 Cortex-M55), as
 * qemu-system-arm emulates them: CMSDK APB UART0 (base from the target's [emulator] uart_base) and the
 * fixed system clock of each image (EDGEQ_CORE_HZ, from [emulator] core_hz).
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
#define UART_BAUDDIV (*(volatile uint32_t *)(EDGEQ_UART_BASE + 0x10u))

const char board_name[] = "mps-cmsdk";

void board_init(void) {
    UART_BAUDDIV = EDGEQ_CORE_HZ / EDGEQ_BAUD; /* minimum 16 on the FPGA; qemu does not pace bytes */
    UART_CTRL = 0x3u;
}

int board_uart_getc(void) { return UART_STATE & 0x2u ? (int)(UART_DATA & 0xFFu) : -1; }

void board_uart_putc(uint8_t c) {
    while (UART_STATE & 0x1u) {}
    UART_DATA = c;
}

uint32_t board_core_hz(void) { return EDGEQ_CORE_HZ; }
