/* lwIP's system hooks for wisp guests: time, randomness, assertions. */
#include <stdint.h>
#include <string.h>

#include "lwip/sys.h"
#include "wisp/guest.h"

u32_t sys_now(void) {
    struct wisp_hc_clock clock = {0, 0};
    wisp_hypercall(WISP_HC_CLOCK, &clock);
    return (u32_t)(clock.monotonic_ns / 1000000u);
}

uint32_t wisp_lwip_rand(void) {
    /* xorshift seeded from the TSC: lwIP only needs unpredictable-enough ports and
     * initial sequence numbers, not cryptographic randomness. */
    static uint64_t state;
    if (state == 0) {
        uint32_t lo, hi;
        __asm__ __volatile__("rdtsc" : "=a"(lo), "=d"(hi));
        state = ((uint64_t)hi << 32 | lo) | 1;
    }
    state ^= state << 13;
    state ^= state >> 7;
    state ^= state << 17;
    return (uint32_t)state;
}

void wisp_lwip_assert(const char *msg, const char *file, int line) {
    (void)file;
    (void)line;
    wisp_abort(msg);
}
