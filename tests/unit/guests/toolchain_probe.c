/* Toolchain proof: the smallest guest image (runtime + an app with data, bss,
 * rodata and SSE arithmetic). tests/unit/guest_image_test.cpp checks its layout. */
#include "wisp/guest.h"

static const char greeting[] = "toolchain probe\n";
static int counter = 3;
static double scratch[64];

int main(void) {
    for (int i = 0; i < 64; i++) scratch[i] = i * 0.5;
    wisp_console_write(greeting, sizeof greeting - 1);
    return counter + (int)scratch[8];
}
