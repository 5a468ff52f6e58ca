/*
 * Command-line parsing for wisp guests: the monitor passes one string
 * (boot_info.cmdline) of space-separated `key=value` words and bare `flag` words.
 *
 * Plain C with no dependency on the guest environment (host unit tests use it too).
 */
#ifndef WISP_CMDLINE_H
#define WISP_CMDLINE_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Finds the last word `key=value` (or a bare `key`, whose value is "") in
 * `cmdline`. Copies the value, NUL terminated and truncated to cap-1 bytes, into
 * `out` (if cap > 0). Returns the value's full length, or -1 if key is absent. */
long wisp_cmdline_find(const char *cmdline, const char *key, char *out, size_t cap);

/* Parses an unsigned number: decimal or 0x-hex, with an optional binary size
 * suffix k/K, m/M, g/G (x1024^n). Returns 0 on success, -1 on garbage or
 * overflow (then *out is unchanged). */
int wisp_parse_u64(const char *text, uint64_t *out);

#ifdef __cplusplus
}
#endif

#endif /* WISP_CMDLINE_H */
