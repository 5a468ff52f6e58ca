/* printf family for wisp guests: formatting from wisp/format.h, output to the
 * console hypercall. Output is line buffered because each hypercall is a VM exit:
 * one printf of several lines costs one exit, not one per line. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "wisp/format.h"
#include "wisp/guest.h"

struct wisp_file {
    int unused;
};
static struct wisp_file console_file;
FILE *const stdout = &console_file;
FILE *const stderr = &console_file;

static char console_buf[1024];
static size_t console_used;
static int console_saw_newline;

void wisp_console_flush(void) {
    if (console_used) wisp_console_write(console_buf, console_used);
    console_used = 0;
    console_saw_newline = 0;
}

static void console_sink(void *ctx, const char *bytes, size_t len) {
    (void)ctx;
    if (memchr(bytes, '\n', len)) console_saw_newline = 1;
    while (len > 0) {
        if (console_used == sizeof console_buf) wisp_console_flush();
        size_t room = sizeof console_buf - console_used;
        size_t n = len < room ? len : room;
        memcpy(console_buf + console_used, bytes, n);
        console_used += n;
        bytes += n;
        len -= n;
    }
}

/* Called after each top-level output call. */
static void console_maybe_flush(void) {
    if (console_saw_newline) wisp_console_flush();
}

int vprintf(const char *fmt, va_list ap) {
    int n = wisp_vformat(console_sink, NULL, fmt, ap);
    console_maybe_flush();
    return n;
}

int printf(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    int n = vprintf(fmt, ap);
    va_end(ap);
    return n;
}

int vfprintf(FILE *f, const char *fmt, va_list ap) {
    (void)f;
    return vprintf(fmt, ap);
}

int fprintf(FILE *f, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    int n = vfprintf(f, fmt, ap);
    va_end(ap);
    return n;
}

int vsnprintf(char *buf, size_t cap, const char *fmt, va_list ap) {
    return wisp_vsnprintf(buf, cap, fmt, ap);
}

int snprintf(char *buf, size_t cap, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    int n = wisp_vsnprintf(buf, cap, fmt, ap);
    va_end(ap);
    return n;
}

int sprintf(char *buf, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    int n = wisp_vsnprintf(buf, (size_t)-1 / 2, fmt, ap);
    va_end(ap);
    return n;
}

size_t fwrite(const void *data, size_t size, size_t count, FILE *f) {
    (void)f;
    console_sink(NULL, data, size * count);
    console_maybe_flush();
    return count;
}

int fputs(const char *s, FILE *f) {
    fwrite(s, 1, strlen(s), f);
    return 0;
}

int puts(const char *s) {
    console_sink(NULL, s, strlen(s));
    console_sink(NULL, "\n", 1);
    console_maybe_flush();
    return 0;
}

int fputc(int c, FILE *f) {
    char ch = (char)c;
    fwrite(&ch, 1, 1, f);
    return (unsigned char)c;
}

int putchar(int c) { return fputc(c, stdout); }

int fflush(FILE *f) {
    (void)f;
    wisp_console_flush();
    return 0;
}
