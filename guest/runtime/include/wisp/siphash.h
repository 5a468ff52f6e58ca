/*
 * SipHash-2-4 (Aumasson & Bernstein): a keyed hash whose output an attacker
 * cannot predict without the key. The network stack uses it for TCP initial
 * sequence numbers (RFC 6528). Plain C, host-testable.
 */
#ifndef WISP_SIPHASH_H
#define WISP_SIPHASH_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* SipHash-2-4 of data[0..len) under the 128-bit key {k0, k1} (k0 = the first
 * eight key bytes read little-endian). */
uint64_t wisp_siphash24(uint64_t k0, uint64_t k1, const void *data, size_t len);

#ifdef __cplusplus
}
#endif

#endif /* WISP_SIPHASH_H */
