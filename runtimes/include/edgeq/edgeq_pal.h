/* edgeq_pal.h -- platform hooks: the runtime never reads clocks or prints on its own. */
#ifndef EDGEQ_PAL_H
#define EDGEQ_PAL_H
#include <stdint.h>
/* Monotonic time in nanoseconds (SysTick-derived on microcontrollers). */
uint64_t edgeq_pal_now_ns(void);
#endif
