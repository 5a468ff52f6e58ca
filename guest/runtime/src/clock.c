/* Guest clocks without VM exits: the TSC scaled by the calibration the monitor
 * keeps in the boot-info page (see struct wisp_clock_info). */
#include <stdint.h>

#include "wisp/guest.h"

static inline uint64_t rdtsc(void) {
    uint32_t lo, hi;
    __asm__ __volatile__("rdtsc" : "=a"(lo), "=d"(hi));
    return (uint64_t)hi << 32 | lo;
}

#define barrier() __asm__ __volatile__("" ::: "memory")

static uint64_t last_monotonic_ns;

/* Reads a consistent calibration (seq even and unchanged around the read) and
 * the TSC inside the same window, so a restore between the two cannot mix an old
 * base with a new TSC. Returns 0 when the monitor gave no calibration - or left
 * it mid-update, which a correct monitor never does (it writes while the vCPU
 * is stopped): then the clock hypercall is the safe answer, not a spin. */
static int read_clock(uint64_t *mono_ns, int64_t *wall_offset_ns) {
    const volatile struct wisp_clock_info *c = &wisp_boot_info()->clock;
    for (int attempt = 0; attempt < 1000; attempt++) {
        uint32_t seq = c->seq;
        barrier();
        if (seq & 1) continue;
        uint64_t mult = c->tsc_mult, base = c->tsc_base, mono_base = c->mono_base_ns;
        uint32_t shift = c->tsc_shift;
        int64_t wall_offset = c->wall_offset_ns;
        uint64_t tsc = rdtsc();
        barrier();
        if (c->seq != seq) continue;
        if (mult == 0) return 0;
        uint64_t delta = tsc > base ? tsc - base : 0;
        *mono_ns = mono_base + (uint64_t)(((unsigned __int128)delta * mult) >> shift);
        *wall_offset_ns = wall_offset;
        return 1;
    }
    return 0;
}

static uint64_t clock_hypercall(uint64_t *wall_ns) {
    struct wisp_hc_clock arg = {0, 0};
    wisp_hypercall(WISP_HC_CLOCK, &arg);
    if (wall_ns) *wall_ns = arg.wall_ns;
    return arg.monotonic_ns;
}

uint64_t wisp_monotonic_ns(void) {
    uint64_t now;
    int64_t unused;
    if (!read_clock(&now, &unused)) now = clock_hypercall(NULL);
    if (now < last_monotonic_ns) now = last_monotonic_ns;
    last_monotonic_ns = now;
    return now;
}

uint64_t wisp_wall_ns(void) {
    uint64_t mono, wall;
    int64_t offset;
    if (!read_clock(&mono, &offset)) {
        clock_hypercall(&wall);
        return wall;
    }
    return mono + (uint64_t)offset;
}
