/* Helpers shared by the VM test guests: printing, command-line arguments, clocks.
 * Each guest is a tiny program that proves one monitor behaviour. */
#ifndef WISP_VMTEST_H
#define WISP_VMTEST_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "wisp/guest.h"

static inline void vt_print(const char *s) { wisp_console_write(s, strlen(s)); }

static inline void vt_print_u64(uint64_t v) {
    char buf[24];
    int i = sizeof buf;
    buf[--i] = 0;
    do {
        buf[--i] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    vt_print(buf + i);
}

static inline const char *vt_cmdline(void) { return wisp_boot_info()->cmdline; }

/* 1 if the command line's first word is `word`. */
static inline int vt_mode_is(const char *word) {
    const char *c = vt_cmdline();
    size_t n = strlen(word);
    return strncmp(c, word, n) == 0 && (c[n] == 0 || c[n] == ' ');
}

/* The number after "key=" in the command line, or `fallback`. */
static inline uint64_t vt_arg(const char *key, uint64_t fallback) {
    const char *c = vt_cmdline();
    size_t n = strlen(key);
    for (const char *p = c; *p; p++) {
        if ((p == c || p[-1] == ' ') && strncmp(p, key, n) == 0 && p[n] == '=') {
            uint64_t v = 0;
            for (p += n + 1; *p >= '0' && *p <= '9'; p++) v = v * 10 + (uint64_t)(*p - '0');
            return v;
        }
    }
    return fallback;
}

static inline void vt_clock(uint64_t *mono, uint64_t *wall) {
    struct wisp_hc_clock c = {0, 0};
    wisp_hypercall(WISP_HC_CLOCK, &c);
    *mono = c.monotonic_ns;
    *wall = c.wall_ns;
}

/* Guest monotonic time from the TSC and the boot-info calibration (no exit). */
static inline uint64_t vt_tsc_mono(void) {
    const volatile struct wisp_clock_info *ci = &wisp_boot_info()->clock;
    for (;;) {
        uint32_t seq = ci->seq;
        __asm__ __volatile__("" ::: "memory");
        uint64_t delta = __builtin_ia32_rdtsc() - ci->tsc_base;
        uint64_t ns = (uint64_t)(((unsigned __int128)delta * ci->tsc_mult) >> ci->tsc_shift);
        uint64_t mono = ci->mono_base_ns + ns;
        __asm__ __volatile__("" ::: "memory");
        if (!(seq & 1) && seq == ci->seq) return mono;
    }
}

#endif
