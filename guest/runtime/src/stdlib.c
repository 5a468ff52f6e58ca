/* wisp guest libc subset: <stdlib.h> beyond malloc, errno, assert. */
#include <assert.h>
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "wisp/guest.h"

int errno;

/* Parses the magnitude; *neg receives the sign, *overflow whether it exceeded
 * ULLONG_MAX. Follows strtoull's rules for bases, prefixes and `end`. */
static unsigned long long parse_magnitude(const char *s, char **end, int base, int *neg,
                                          int *overflow) {
    const char *p = s;
    *neg = 0;
    *overflow = 0;
    while (isspace((unsigned char)*p)) p++;
    if (*p == '+' || *p == '-') *neg = *p++ == '-';
    if ((base == 0 || base == 16) && p[0] == '0' && (p[1] == 'x' || p[1] == 'X') &&
        isxdigit((unsigned char)p[2])) {
        p += 2;
        base = 16;
    } else if (base == 0) {
        base = p[0] == '0' ? 8 : 10;
    }
    unsigned long long v = 0;
    const char *digits = p;
    if (base >= 2 && base <= 36) {
        for (;; p++) {
            int d;
            if (isdigit((unsigned char)*p))
                d = *p - '0';
            else if (isalpha((unsigned char)*p))
                d = tolower((unsigned char)*p) - 'a' + 10;
            else
                break;
            if (d >= base) break;
            if (v > (ULLONG_MAX - (unsigned)d) / (unsigned)base) *overflow = 1;
            v = v * (unsigned)base + (unsigned)d;
        }
    }
    if (end) *end = (char *)(p == digits ? s : p);
    return v;
}

unsigned long long strtoull(const char *s, char **end, int base) {
    int neg, overflow;
    unsigned long long v = parse_magnitude(s, end, base, &neg, &overflow);
    if (overflow) {
        errno = ERANGE;
        return ULLONG_MAX;
    }
    return neg ? 0ull - v : v;
}

unsigned long strtoul(const char *s, char **end, int base) { return strtoull(s, end, base); }

long long strtoll(const char *s, char **end, int base) {
    int neg, overflow;
    unsigned long long v = parse_magnitude(s, end, base, &neg, &overflow);
    if (!neg && (overflow || v > (unsigned long long)LLONG_MAX)) {
        errno = ERANGE;
        return LLONG_MAX;
    }
    if (neg && (overflow || v > (unsigned long long)LLONG_MAX + 1)) {
        errno = ERANGE;
        return LLONG_MIN;
    }
    return neg ? (long long)(0ull - v) : (long long)v;
}

long strtol(const char *s, char **end, int base) { return strtoll(s, end, base); }
long long atoll(const char *s) { return strtoll(s, NULL, 10); }
long atol(const char *s) { return strtol(s, NULL, 10); }
int atoi(const char *s) { return (int)strtol(s, NULL, 10); }
int abs(int v) { return v < 0 ? -v : v; }
long labs(long v) { return v < 0 ? -v : v; }
long long llabs(long long v) { return v < 0 ? -v : v; }

static void swap_bytes(char *a, char *b, size_t size) {
    while (size--) {
        char t = *a;
        *a++ = *b;
        *b++ = t;
    }
}

static void sift_down(char *base, size_t root, size_t count, size_t size,
                      int (*cmp)(const void *, const void *)) {
    for (;;) {
        size_t child = 2 * root + 1;
        if (child >= count) return;
        if (child + 1 < count && cmp(base + child * size, base + (child + 1) * size) < 0) child++;
        if (cmp(base + root * size, base + child * size) >= 0) return;
        swap_bytes(base + root * size, base + child * size, size);
        root = child;
    }
}

/* Heapsort: O(n log n) worst case, no recursion, no allocation. */
void qsort(void *base_in, size_t count, size_t size, int (*cmp)(const void *, const void *)) {
    char *base = base_in;
    if (count < 2) return;
    for (size_t i = count / 2; i-- > 0;) sift_down(base, i, count, size, cmp);
    for (size_t end = count - 1; end > 0; end--) {
        swap_bytes(base, base + end * size, size);
        sift_down(base, 0, end, size, cmp);
    }
}

void *bsearch(const void *key, const void *base, size_t count, size_t size,
              int (*cmp)(const void *, const void *)) {
    const char *lo = base;
    while (count > 0) {
        const char *mid = lo + (count / 2) * size;
        int c = cmp(key, mid);
        if (c == 0) return (void *)mid;
        if (c > 0) {
            lo = mid + size;
            count -= count / 2 + 1;
        } else {
            count /= 2;
        }
    }
    return NULL;
}

static unsigned long long rand_state = 1;

void srand(unsigned seed) { rand_state = seed; }

int rand(void) {
    rand_state = rand_state * 6364136223846793005ull + 1442695040888963407ull;
    return (int)(rand_state >> 33);
}

void abort(void) { wisp_abort("abort() called"); }

void exit(int status) { wisp_halt(status); }

void __wisp_assert_fail(const char *expr, const char *file, int line, const char *func) {
    char msg[512];
    snprintf(msg, sizeof msg, "assertion failed: %s (%s:%d, %s)", expr, file, line, func);
    wisp_abort(msg);
}
