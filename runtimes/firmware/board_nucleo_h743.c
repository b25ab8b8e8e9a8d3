/*
 * ST NUCLEO-H743ZI / NUCLEO-H743ZI2 (STM32H743ZI). UNTESTED ON HARDWARE: written from ST RM0433 (reference
 * manual) and UM2407 (Nucleo-144 H7 user manual); no board was attached when it was built. See docs/mcu.md.
 *
 * Clock tree: HSE 8 MHz from the ST-LINK's MCO (bypass mode) -> PLL1 (M=1, N=120: VCO 960 MHz, P=2) ->
 * SYSCLK 480 MHz in voltage scale 0 (VOS1 + overdrive); CPU /1 = 480 MHz, AHB/AXI /2 = 240 MHz, every APB /2
 * = 120 MHz; flash 4 wait states, programming delay 2 (RM0433 table 17 at VOS0).
 * UART: USART3 on PD8 (TX) / PD9 (RX), AF7 -- the ST-LINK virtual COM port (/dev/ttyACM0 on the host),
 * kernel clock = PCLK1 = 120 MHz.
 */
#include "fw.h"

#ifndef EDGEQ_CORE_HZ
#define EDGEQ_CORE_HZ 480000000u
#endif
#ifndef EDGEQ_BAUD
#define EDGEQ_BAUD 115200
#endif
#define PCLK1_HZ (EDGEQ_CORE_HZ / 4u)

#define REG(addr) (*(volatile uint32_t *)(addr))
/* RM0433 memory map */
#define RCC 0x58024400u
#define RCC_CR REG(RCC + 0x00u)
#define RCC_CFGR REG(RCC + 0x10u)
#define RCC_D1CFGR REG(RCC + 0x18u)
#define RCC_D2CFGR REG(RCC + 0x1Cu)
#define RCC_D3CFGR REG(RCC + 0x20u)
#define RCC_PLLCKSELR REG(RCC + 0x28u)
#define RCC_PLLCFGR REG(RCC + 0x2Cu)
#define RCC_PLL1DIVR REG(RCC + 0x30u)
#define RCC_AHB4ENR REG(RCC + 0xE0u)
#define RCC_APB1LENR REG(RCC + 0xE8u)
#define RCC_APB4ENR REG(RCC + 0xF4u)
#define PWR 0x58024800u
#define PWR_CSR1 REG(PWR + 0x04u)
#define PWR_CR3 REG(PWR + 0x0Cu)
#define PWR_D3CR REG(PWR + 0x18u)
#define SYSCFG_PWRCR REG(0x58000400u + 0x2Cu)
#define FLASH_ACR REG(0x52002000u + 0x00u)
#define GPIOD 0x58020C00u
#define GPIOD_MODER REG(GPIOD + 0x00u)
#define GPIOD_AFRH REG(GPIOD + 0x24u)
#define USART3 0x40004800u
#define USART3_CR1 REG(USART3 + 0x00u)
#define USART3_BRR REG(USART3 + 0x0Cu)
#define USART3_ISR REG(USART3 + 0x1Cu)
#define USART3_RDR REG(USART3 + 0x24u)
#define USART3_TDR REG(USART3 + 0x28u)

const char board_name[] = "nucleo-h743zi";

static void wait_set(volatile uint32_t *reg, uint32_t mask) {
    while ((*reg & mask) != mask) {}
}

static void clocks_480mhz(void) {
    /* supply: LDO, then VOS1 and the overdrive (= VOS0) that 480 MHz needs */
    PWR_CR3 = (PWR_CR3 & ~0x7u) | 0x2u; /* LDOEN, not bypass, supply configuration locked by this write */
    wait_set(&PWR_CSR1, 1u << 13);      /* ACTVOSRDY */
    PWR_D3CR = (PWR_D3CR & ~(3u << 14)) | (3u << 14);
    wait_set(&PWR_D3CR, 1u << 13);      /* VOSRDY */
    RCC_APB4ENR |= 1u << 1;             /* SYSCFGEN */
    (void)RCC_APB4ENR;
    SYSCFG_PWRCR |= 1u;                 /* ODEN: VOS0 */
    wait_set(&PWR_D3CR, 1u << 13);
    /* flash: 4 wait states, WRHIGHFREQ 2, before raising the clock */
    FLASH_ACR = (FLASH_ACR & ~0x3Fu) | 4u | (2u << 4);
    while ((FLASH_ACR & 0xFu) != 4u) {}
    /* HSE 8 MHz bypass (ST-LINK MCO) */
    RCC_CR |= (1u << 18) | (1u << 16); /* HSEBYP, HSEON */
    wait_set(&RCC_CR, 1u << 17);        /* HSERDY */
    /* PLL1: HSE / M1=1 = 8 MHz (range 8-16 MHz), x N=120 = 960 MHz wide VCO, / P=2 = 480 MHz */
    RCC_PLLCKSELR = (RCC_PLLCKSELR & ~(0x3Fu << 4 | 0x3u)) | (1u << 4) | 0x2u;
    RCC_PLLCFGR = (RCC_PLLCFGR & ~0xFu) | (3u << 2) | (1u << 16) | (1u << 17) | (1u << 18);
    RCC_PLL1DIVR = (120u - 1u) | ((2u - 1u) << 9) | ((4u - 1u) << 16) | ((2u - 1u) << 24);
    RCC_CR |= 1u << 24;                 /* PLL1ON */
    wait_set(&RCC_CR, 1u << 25);        /* PLL1RDY */
    /* CPU /1, AHB /2 (HPRE 0b1000), APB3 /2; APB1, APB2 /2; APB4 /2 */
    RCC_D1CFGR = (0u << 8) | (0x4u << 4) | 0x8u;
    RCC_D2CFGR = (0x4u << 8) | (0x4u << 4);
    RCC_D3CFGR = 0x4u << 4;
    RCC_CFGR = (RCC_CFGR & ~0x7u) | 0x3u; /* SW = PLL1 */
    while (((RCC_CFGR >> 3) & 0x7u) != 0x3u) {}
}

static void usart3_vcp(void) {
    RCC_AHB4ENR |= 1u << 3;   /* GPIODEN */
    RCC_APB1LENR |= 1u << 18; /* USART3EN */
    (void)RCC_APB1LENR;
    GPIOD_MODER = (GPIOD_MODER & ~(0xFu << 16)) | (0xAu << 16); /* PD8, PD9 alternate function */
    GPIOD_AFRH = (GPIOD_AFRH & ~0xFFu) | 0x77u;                 /* AF7 = USART3 */
    USART3_CR1 = 0;
    USART3_BRR = (PCLK1_HZ + EDGEQ_BAUD / 2u) / EDGEQ_BAUD;
    USART3_CR1 = (1u << 3) | (1u << 2) | 1u; /* TE, RE, UE */
}

void board_init(void) {
    clocks_480mhz();
    usart3_vcp();
}

int board_uart_getc(void) {
    if (USART3_ISR & (1u << 3)) REG(USART3 + 0x20u) = 1u << 3; /* overrun: clear ORE (ICR); the lost byte
                                                                  shows up as a frame CRC error, and a resend */
    return USART3_ISR & (1u << 5) ? (int)(USART3_RDR & 0xFFu) : -1;
}

void board_uart_putc(uint8_t c) {
    while (!(USART3_ISR & (1u << 7))) {} /* TXE */
    USART3_TDR = c;
}

uint32_t board_core_hz(void) { return EDGEQ_CORE_HZ; }

void board_idle(void) {} /* polls: a real core's idle spin costs nobody anything */

void board_uart_irq(void) {}
