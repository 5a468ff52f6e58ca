/* Random numbers for guests: RDRAND when the CPU offers it (checked once with
 * CPUID, which works in ring 3), otherwise a generator seeded from the TSC and
 * the wall clock and re-seeded after every snapshot restore, so replicas
 * restored from one snapshot never produce the same sequence. */
#include <stdint.h>

#include "wisp/guest.h"

static int g_has_rdrand = -1;
static uint64_t g_state;
static uint32_t g_seeded_for = UINT32_MAX;

static inline uint64_t rdtsc(void) {
    uint32_t lo, hi;
    __asm__ __volatile__("rdtsc" : "=a"(lo), "=d"(hi));
    return (uint64_t)hi << 32 | lo;
}

static int cpu_has_rdrand(void) {
    uint32_t a = 1, b, c = 0, d;
    __asm__ __volatile__("cpuid" : "+a"(a), "=b"(b), "+c"(c), "=d"(d));
    return (c >> 30) & 1;
}

static int rdrand64(uint64_t *out) {
    for (int i = 0; i < 10; i++) {
        unsigned char ok;
        __asm__ __volatile__("rdrand %0; setc %1" : "=r"(*out), "=qm"(ok));
        if (ok) return 1;
    }
    return 0;
}

static uint64_t mix(uint64_t x) {
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

uint64_t wisp_random_u64(void) {
    if (g_has_rdrand < 0) g_has_rdrand = cpu_has_rdrand();
    uint64_t v;
    if (g_has_rdrand && rdrand64(&v)) return v;
    uint32_t restores = wisp_restore_count();
    if (restores != g_seeded_for) {
        g_state ^= mix(rdtsc()) ^ wisp_wall_ns();
        g_seeded_for = restores;
    }
    g_state += 0x9e3779b97f4a7c15ull;
    return mix(g_state ^ rdtsc());
}
