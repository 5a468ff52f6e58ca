/* lwIP's system hooks for wisp guests: time, randomness, assertions. */
#include <stdint.h>
#include <stdio.h>

#include "lwip/sys.h"
#include "wisp/guest.h"

/* lwIP asks for the time on every timer check and TCP event: it must not cost a
 * VM exit, so it comes from the TSC-based clock. */
u32_t sys_now(void) { return (u32_t)(wisp_monotonic_ns() / 1000000u); }

static inline uint64_t rdtsc(void) {
    uint32_t lo, hi;
    __asm__ __volatile__("rdtsc" : "=a"(lo), "=d"(hi));
    return (uint64_t)hi << 32 | lo;
}

uint32_t wisp_lwip_rand(void) {
    /* xorshift64, seeded from the TSC and reseeded after every snapshot restore:
     * replicas restored from one snapshot must not pick the same TCP initial
     * sequence numbers. lwIP needs unpredictable-enough numbers, not secrets. */
    static uint64_t state;
    static uint32_t seeded_for_restore = UINT32_MAX;
    uint32_t restores = wisp_restore_count();
    if (state == 0 || restores != seeded_for_restore) {
        state ^= rdtsc() * 0x9e3779b97f4a7c15ull + wisp_wall_ns();
        state |= 1;
        seeded_for_restore = restores;
    }
    state ^= state << 13;
    state ^= state >> 7;
    state ^= state << 17;
    return (uint32_t)(state >> 16);
}

void wisp_lwip_assert(const char *msg, const char *file, int line) {
    char text[256];
    snprintf(text, sizeof text, "lwIP assertion \"%s\" failed at %s:%d", msg, file, line);
    wisp_abort(text);
}
