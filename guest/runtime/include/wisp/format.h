/*
 * wisp guest formatting core: printf-style formatting into any byte sink.
 *
 * Plain C with no dependency on the guest environment: the guest's printf family
 * is built on it, and host unit tests compare it with the C library's snprintf.
 *
 * Supported: %d %i %u %x %X %o %c %s %p %% %f %F %e %E %g %G; flags - + space # 0;
 * width and precision (also `*`); length modifiers hh h l ll z j t. Floating
 * point output is exact for values that fit in 64-bit fixed point and may differ
 * from glibc in the last digit beyond that. %n is not supported (it prints nothing).
 */
#ifndef WISP_FORMAT_H
#define WISP_FORMAT_H

#include <stdarg.h>
#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Receives formatted output piece by piece. */
typedef void (*wisp_format_sink)(void *ctx, const char *bytes, size_t len);

/* Formats into `sink`; returns the number of bytes produced. */
int wisp_vformat(wisp_format_sink sink, void *ctx, const char *fmt, va_list ap);

/* snprintf semantics: writes at most cap-1 bytes plus a NUL (if cap > 0) and
 * returns the length the whole output would have. */
int wisp_vsnprintf(char *buf, size_t cap, const char *fmt, va_list ap);
int wisp_snprintf(char *buf, size_t cap, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

#ifdef __cplusplus
}
#endif

#endif /* WISP_FORMAT_H */
