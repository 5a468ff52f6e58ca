/* wisp guest formatting core (see wisp/format.h). */
#include "wisp/format.h"

#include <stdint.h>
#include <string.h>

struct out {
    wisp_format_sink sink;
    void *ctx;
    size_t count;
};

struct spec {
    int left, plus, space, alt, zero;
    int width;
    int prec; /* -1: none given */
    char conv;
};

static void emit(struct out *o, const char *s, size_t n) {
    if (n == 0) return;
    o->sink(o->ctx, s, n);
    o->count += n;
}

static void emit_repeat(struct out *o, char c, long n) {
    char chunk[32];
    memset(chunk, c, sizeof chunk);
    while (n > 0) {
        size_t step = n > (long)sizeof chunk ? sizeof chunk : (size_t)n;
        emit(o, chunk, step);
        n -= (long)step;
    }
}

/* One converted field: [prefix][zeros][body], padded to the width. */
static void emit_field(struct out *o, const struct spec *sp, const char *prefix, size_t prefix_len,
                       long zeros, const char *body, size_t body_len, int zero_pad_allowed) {
    long total = (long)(prefix_len + body_len) + zeros;
    long pad = sp->width > total ? sp->width - total : 0;
    if (sp->left) {
        emit(o, prefix, prefix_len);
        emit_repeat(o, '0', zeros);
        emit(o, body, body_len);
        emit_repeat(o, ' ', pad);
    } else if (sp->zero && zero_pad_allowed) {
        emit(o, prefix, prefix_len);
        emit_repeat(o, '0', zeros + pad);
        emit(o, body, body_len);
    } else {
        emit_repeat(o, ' ', pad);
        emit(o, prefix, prefix_len);
        emit_repeat(o, '0', zeros);
        emit(o, body, body_len);
    }
}

static size_t sign_prefix(const struct spec *sp, int negative, char *prefix) {
    if (negative) {
        prefix[0] = '-';
        return 1;
    }
    if (sp->plus) {
        prefix[0] = '+';
        return 1;
    }
    if (sp->space) {
        prefix[0] = ' ';
        return 1;
    }
    return 0;
}

static void format_integer(struct out *o, const struct spec *sp, unsigned long long value,
                           int negative, int is_signed) {
    char digits[24];
    size_t n = 0;
    unsigned base = 10;
    const char *alphabet = "0123456789abcdef";
    if (sp->conv == 'x' || sp->conv == 'p') base = 16;
    if (sp->conv == 'X') {
        base = 16;
        alphabet = "0123456789ABCDEF";
    }
    if (sp->conv == 'o') base = 8;
    char *end = digits + sizeof digits;
    char *p = end;
    if (!(value == 0 && sp->prec == 0)) {
        unsigned long long v = value;
        do {
            *--p = alphabet[v % base];
            v /= base;
        } while (v);
    }
    n = (size_t)(end - p);
    long zeros = sp->prec > (int)n ? sp->prec - (long)n : 0;
    char prefix[3];
    size_t prefix_len = is_signed ? sign_prefix(sp, negative, prefix) : 0;
    if (sp->alt && sp->conv == 'o' && zeros == 0 && (n == 0 || *p != '0')) zeros = 1;
    if ((sp->alt && value != 0 && (sp->conv == 'x' || sp->conv == 'X')) || sp->conv == 'p') {
        prefix[0] = '0';
        prefix[1] = sp->conv == 'X' ? 'X' : 'x';
        prefix_len = 2;
    }
    emit_field(o, sp, prefix, prefix_len, zeros, p, n, sp->prec < 0);
}

/* ---- floating point ------------------------------------------------------- */

#define FIXED_DIGITS_MAX 17 /* fraction digits computed exactly enough from a double */

static const uint64_t pow10_u64[] = {1ull,
                                     10ull,
                                     100ull,
                                     1000ull,
                                     10000ull,
                                     100000ull,
                                     1000000ull,
                                     10000000ull,
                                     100000000ull,
                                     1000000000ull,
                                     10000000000ull,
                                     100000000000ull,
                                     1000000000000ull,
                                     10000000000000ull,
                                     100000000000000ull,
                                     1000000000000000ull,
                                     10000000000000000ull,
                                     100000000000000000ull,
                                     1000000000000000000ull};

static size_t put_u64(char *buf, uint64_t v, int min_digits) {
    char tmp[24];
    int n = 0;
    do {
        tmp[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    while (n < min_digits) tmp[n++] = '0';
    for (int i = 0; i < n; i++) buf[i] = tmp[n - 1 - i];
    return (size_t)n;
}

/* Rounds x to an integer, ties to even (what glibc does for exact ties). */
static uint64_t round_even(double x) {
    uint64_t f = (uint64_t)x;
    double d = x - (double)f;
    if (d > 0.5 || (d == 0.5 && (f & 1))) f++;
    return f;
}

/* Writes v >= 0 with `prec` fraction digits (no sign) into buf; returns length.
 * Appends `*trailing_zeros` more zeros beyond what a double can tell apart. */
static size_t fixed_digits(double v, int prec, int alt, char *buf, long *trailing_zeros) {
    int exact = prec > FIXED_DIGITS_MAX ? FIXED_DIGITS_MAX : prec;
    *trailing_zeros = prec - exact;
    unsigned scale_down = 0;
    while (v >= 1e18) {
        v /= 10;
        scale_down++;
    }
    uint64_t ip = (uint64_t)v;
    uint64_t frac = 0;
    if (exact == 0)
        ip = round_even(v); /* a tie rounds the units digit to even */
    else
        frac = round_even((v - (double)ip) * (double)pow10_u64[exact]);
    if (exact > 0 && frac >= pow10_u64[exact]) {
        frac -= pow10_u64[exact];
        ip++;
    }
    size_t n = put_u64(buf, ip, 1);
    for (unsigned i = 0; i < scale_down; i++) buf[n++] = '0';
    if (prec > 0 || alt) buf[n++] = '.';
    if (exact > 0) n += put_u64(buf + n, frac, exact);
    return n;
}

/* Decimal exponent of v > 0 and v scaled into [1, 10). */
static int decompose(double v, double *mantissa) {
    int e = 0;
    while (v >= 1e32) {
        v /= 1e32;
        e += 32;
    }
    while (v >= 10) {
        v /= 10;
        e++;
    }
    while (v < 1e-32) {
        v *= 1e32;
        e -= 32;
    }
    while (v < 1) {
        v *= 10;
        e--;
    }
    *mantissa = v;
    return e;
}

static size_t exp_digits(double v, int prec, int alt, int upper, char *buf, long *trailing) {
    double m = 0;
    int e = v == 0 ? 0 : decompose(v, &m);
    size_t n = fixed_digits(m, prec, alt, buf, trailing);
    if (buf[0] == '1' && buf[1] == '0' && (n == 2 || buf[2] == '.')) {
        /* 9.99 rounded up to 10.0: renormalise to 1.00e(e+1). */
        e++;
        n = fixed_digits(m / 10, prec, alt, buf, trailing);
    }
    /* The exponent goes after the trailing zeros: callers pass them back in. */
    buf[n++] = upper ? 'E' : 'e';
    buf[n++] = e < 0 ? '-' : '+';
    n += put_u64(buf + n, (uint64_t)(e < 0 ? -e : e), 2);
    return n;
}

static void format_float(struct out *o, const struct spec *sp, double v) {
    char prefix[2];
    int negative = __builtin_signbit(v) != 0;
    if (negative) v = -v;
    size_t prefix_len = sign_prefix(sp, negative, prefix);
    int upper = sp->conv == 'F' || sp->conv == 'E' || sp->conv == 'G';
    if (v != v || v > 1.7976931348623157e308) {
        const char *word = v != v ? (upper ? "NAN" : "nan") : (upper ? "INF" : "inf");
        emit_field(o, sp, prefix, prefix_len, 0, word, 3, 0);
        return;
    }
    int prec = sp->prec < 0 ? 6 : sp->prec;
    if (prec > 300) prec = 300;
    char buf[400];
    long trailing = 0;
    size_t n;
    char conv = sp->conv | 0x20; /* lower case */
    if (conv == 'g') {
        int p = prec == 0 ? 1 : prec;
        /* The exponent after rounding to p significant digits decides the style. */
        long unused;
        char probe[400];
        size_t pn = exp_digits(v, p - 1, 0, 0, probe, &unused);
        int x = 0;
        size_t epos = pn;
        while (epos > 0 && probe[epos - 1] != 'e') epos--;
        for (size_t i = epos + 1; i < pn; i++) x = x * 10 + (probe[i] - '0');
        if (probe[epos] == '-') x = -x;
        if (v == 0) x = 0;
        if (p > x && x >= -4) {
            n = fixed_digits(v, p - 1 - x, sp->alt, buf, &trailing);
        } else {
            n = exp_digits(v, p - 1, sp->alt, upper, buf, &trailing);
        }
        if (!sp->alt) {
            /* Drop trailing zeros of the fraction, and the point if nothing is left. */
            trailing = 0;
            size_t mant_end = n;
            for (size_t i = 0; i < n; i++)
                if (buf[i] == 'e' || buf[i] == 'E') mant_end = i;
            if (memchr(buf, '.', mant_end)) {
                size_t cut = mant_end;
                while (cut > 0 && buf[cut - 1] == '0') cut--;
                if (cut > 0 && buf[cut - 1] == '.') cut--;
                memmove(buf + cut, buf + mant_end, n - mant_end);
                n = cut + (n - mant_end);
            }
        }
    } else if (conv == 'e') {
        n = exp_digits(v, prec, sp->alt, upper, buf, &trailing);
    } else {
        n = fixed_digits(v, prec, sp->alt, buf, &trailing);
    }
    if (trailing > 0) {
        /* Zeros go before the exponent (if any): split the body there. */
        size_t mant_end = n;
        for (size_t i = 0; i < n; i++)
            if (buf[i] == 'e' || buf[i] == 'E') mant_end = i;
        long total = (long)(prefix_len + n) + trailing;
        long pad = sp->width > total ? sp->width - total : 0;
        if (!sp->left) emit_repeat(o, sp->zero ? '0' : ' ', sp->zero ? 0 : pad);
        emit(o, prefix, prefix_len);
        if (!sp->left && sp->zero) emit_repeat(o, '0', pad);
        emit(o, buf, mant_end);
        emit_repeat(o, '0', trailing);
        emit(o, buf + mant_end, n - mant_end);
        if (sp->left) emit_repeat(o, ' ', pad);
        return;
    }
    emit_field(o, sp, prefix, prefix_len, 0, buf, n, 1);
}

/* ---- the format string ---------------------------------------------------- */

enum length { LEN_NONE, LEN_HH, LEN_H, LEN_L, LEN_LL, LEN_Z, LEN_J, LEN_T };

static int parse_number(const char **f) {
    int v = 0;
    while (**f >= '0' && **f <= '9') {
        if (v < 100000000) v = v * 10 + (**f - '0');
        (*f)++;
    }
    return v;
}

int wisp_vformat(wisp_format_sink sink, void *ctx, const char *fmt, va_list ap_in) {
    struct out o = {sink, ctx, 0};
    va_list ap;
    va_copy(ap, ap_in);
    const char *f = fmt;
    while (*f) {
        const char *lit = f;
        while (*f && *f != '%') f++;
        emit(&o, lit, (size_t)(f - lit));
        if (!*f) break;
        const char *spec_start = f++;
        struct spec sp = {0, 0, 0, 0, 0, 0, -1, 0};
        for (;; f++) {
            if (*f == '-')
                sp.left = 1;
            else if (*f == '+')
                sp.plus = 1;
            else if (*f == ' ')
                sp.space = 1;
            else if (*f == '#')
                sp.alt = 1;
            else if (*f == '0')
                sp.zero = 1;
            else
                break;
        }
        if (*f == '*') {
            sp.width = va_arg(ap, int);
            if (sp.width < 0) {
                sp.left = 1;
                sp.width = sp.width == -2147483647 - 1 ? 2147483647 : -sp.width;
            }
            f++;
        } else {
            sp.width = parse_number(&f);
        }
        if (*f == '.') {
            f++;
            if (*f == '*') {
                sp.prec = va_arg(ap, int);
                if (sp.prec < 0) sp.prec = -1;
                f++;
            } else {
                sp.prec = parse_number(&f);
            }
        }
        enum length len = LEN_NONE;
        if (*f == 'h') {
            len = f[1] == 'h' ? LEN_HH : LEN_H;
            f += len == LEN_HH ? 2 : 1;
        } else if (*f == 'l') {
            len = f[1] == 'l' ? LEN_LL : LEN_L;
            f += len == LEN_LL ? 2 : 1;
        } else if (*f == 'z') {
            len = LEN_Z;
            f++;
        } else if (*f == 'j') {
            len = LEN_J;
            f++;
        } else if (*f == 't') {
            len = LEN_T;
            f++;
        }
        sp.conv = *f;
        if (!*f) {
            emit(&o, spec_start, (size_t)(f - spec_start));
            break;
        }
        f++;
        switch (sp.conv) {
        case 'd':
        case 'i': {
            long long v;
            switch (len) {
            case LEN_HH: v = (signed char)va_arg(ap, int); break;
            case LEN_H: v = (short)va_arg(ap, int); break;
            case LEN_L: v = va_arg(ap, long); break;
            case LEN_LL: v = va_arg(ap, long long); break;
            case LEN_Z: v = (long long)va_arg(ap, size_t); break;
            case LEN_J: v = va_arg(ap, intmax_t); break;
            case LEN_T: v = va_arg(ap, ptrdiff_t); break;
            default: v = va_arg(ap, int); break;
            }
            unsigned long long mag = v < 0 ? 0ull - (unsigned long long)v : (unsigned long long)v;
            format_integer(&o, &sp, mag, v < 0, 1);
            break;
        }
        case 'u':
        case 'x':
        case 'X':
        case 'o': {
            unsigned long long v;
            switch (len) {
            case LEN_HH: v = (unsigned char)va_arg(ap, unsigned); break;
            case LEN_H: v = (unsigned short)va_arg(ap, unsigned); break;
            case LEN_L: v = va_arg(ap, unsigned long); break;
            case LEN_LL: v = va_arg(ap, unsigned long long); break;
            case LEN_Z: v = va_arg(ap, size_t); break;
            case LEN_J: v = va_arg(ap, uintmax_t); break;
            case LEN_T: v = (unsigned long long)va_arg(ap, ptrdiff_t); break;
            default: v = va_arg(ap, unsigned); break;
            }
            format_integer(&o, &sp, v, 0, 0);
            break;
        }
        case 'p': {
            void *p = va_arg(ap, void *);
            if (!p) {
                emit_field(&o, &sp, "", 0, 0, "(nil)", 5, 0);
            } else {
                sp.alt = 1;
                format_integer(&o, &sp, (unsigned long long)(uintptr_t)p, 0, 0);
            }
            break;
        }
        case 'c': {
            char c = (char)va_arg(ap, int);
            emit_field(&o, &sp, "", 0, 0, &c, 1, 0);
            break;
        }
        case 's': {
            const char *s = va_arg(ap, const char *);
            if (!s) s = "(null)";
            size_t n = 0;
            if (sp.prec >= 0)
                while (n < (size_t)sp.prec && s[n]) n++;
            else
                n = strlen(s);
            emit_field(&o, &sp, "", 0, 0, s, n, 0);
            break;
        }
        case 'f':
        case 'F':
        case 'e':
        case 'E':
        case 'g':
        case 'G': format_float(&o, &sp, va_arg(ap, double)); break;
        case '%': emit(&o, "%", 1); break;
        case 'n': (void)va_arg(ap, void *); break;
        default:
            /* Unknown conversion: print it as written so the mistake is visible. */
            emit(&o, spec_start, (size_t)(f - spec_start));
            break;
        }
    }
    va_end(ap);
    return o.count > 0x7fffffff ? 0x7fffffff : (int)o.count;
}

struct buffer_sink {
    char *buf;
    size_t cap;
    size_t used;
};

static void buffer_write(void *ctx, const char *bytes, size_t len) {
    struct buffer_sink *b = ctx;
    if (b->used + 1 < b->cap) {
        size_t room = b->cap - 1 - b->used;
        memcpy(b->buf + b->used, bytes, len < room ? len : room);
    }
    b->used += len;
}

int wisp_vsnprintf(char *buf, size_t cap, const char *fmt, va_list ap) {
    struct buffer_sink b = {buf, cap, 0};
    int n = wisp_vformat(buffer_write, &b, fmt, ap);
    if (cap > 0) buf[b.used < cap ? b.used : cap - 1] = '\0';
    return n;
}

int wisp_snprintf(char *buf, size_t cap, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    int n = wisp_vsnprintf(buf, cap, fmt, ap);
    va_end(ap);
    return n;
}
