/*
 * The deterministic byte pattern of hello's GET /bytes/<n> endpoint. Tests and
 * benchmarks include this header too, to check large responses byte for byte:
 * byte i is byte (i % 8) of splitmix64(i / 8), so a lost, duplicated or reordered
 * segment anywhere shows up as a mismatch at its offset.
 */
#ifndef WISP_PATTERN_H
#define WISP_PATTERN_H

#include <stddef.h>
#include <stdint.h>

static inline uint64_t wisp_splitmix64(uint64_t x) {
    x += 0x9e3779b97f4a7c15ull;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

/* Writes bytes [offset, offset + n) of the pattern into buf. */
static inline void wisp_pattern_fill(uint64_t offset, char *buf, size_t n) {
    for (size_t i = 0; i < n; i++) {
        uint64_t pos = offset + i;
        buf[i] = (char)(wisp_splitmix64(pos >> 3) >> ((pos & 7) * 8));
    }
}

#endif /* WISP_PATTERN_H */
