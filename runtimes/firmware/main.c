/* The firmware's main: the board is up (Reset_Handler ran board_init); serve the protocol forever. */
#include "fw.h"

int main(void) {
    fw_ticks_start();
    protocol_loop();
    return 0;
}
