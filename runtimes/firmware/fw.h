/*
 * Firmware internals: what a board file provides and what the protocol loop needs from it.
 * One board file is linked per image: board_cmsdk.c (Arm MPS2/MPS3 FPGA images, which qemu-system-arm
 * emulates) or board_nucleo_h743.c (ST NUCLEO-H743ZI, untested on hardware).
 */
#ifndef EDGEQ_FW_H
#define EDGEQ_FW_H

#include <stddef.h>
#include <stdint.h>

/* Core clock, UART, SysTick; called once from Reset_Handler before main. */
void board_init(void);
/* Non-blocking receive: the byte, or -1 when none is waiting. */
int board_uart_getc(void);
/* Blocking transmit of one byte. */
void board_uart_putc(uint8_t c);
/* Frequency of the core clock that SysTick counts (CLKSOURCE = processor clock). */
uint32_t board_core_hz(void);
/* Waits (e.g. WFI) until a byte may have arrived, or returns at once where the board just polls. */
void board_idle(void);
/* The UART receive interrupt (boards that define EDGEQ_UART_IRQ): it only has to wake board_idle. */
void board_uart_irq(void);
extern const char board_name[];

/* pal_cortex_m.c: starts SysTick free-running at the core clock (24-bit, wraps counted in its IRQ). */
void fw_ticks_start(void);
uint64_t edgeq_pal_ticks(void);

/* Signature hook called by VERIFY after the whole-blob CRC matched and before the model is created.
 * Returns 0 when the blob may run, else an edgeq_status_t (EDGEQ_E_UNSIGNED, _SIGNATURE_KEY, ...) with one
 * line in msg. The default (weak, protocol.c): an image built with a public key (EDGEQ_PUBLIC_KEY) checks
 * the Ed25519 signature with edgeq_verify_signature; one without accepts every blob unless built with
 * EDGEQ_REQUIRE_SIGNATURE=1, which refuses them all. A board may link its own (e.g. a key in OTP). */
int edgeq_fw_check_signature(const uint8_t *blob, size_t size, char *msg, size_t msg_size);

/* protocol.c: the framed serial protocol (docs/protocol.md); never returns. */
void protocol_loop(void);

#endif
