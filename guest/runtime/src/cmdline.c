/* Command-line parsing for wisp guests (see wisp/cmdline.h). */
#include "wisp/cmdline.h"

#include <string.h>

static int is_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

long wisp_cmdline_find(const char *cmdline, const char *key, char *out, size_t cap) {
    size_t key_len = strlen(key);
    const char *value = NULL;
    size_t value_len = 0;
    const char *p = cmdline;
    while (*p) {
        while (is_space(*p)) p++;
        const char *word = p;
        while (*p && !is_space(*p)) p++;
        size_t word_len = (size_t)(p - word);
        if (word_len < key_len || key_len == 0 || memcmp(word, key, key_len) != 0) continue;
        if (word_len == key_len) {
            value = word + word_len;
            value_len = 0;
        } else if (word[key_len] == '=') {
            value = word + key_len + 1;
            value_len = word_len - key_len - 1;
        }
    }
    if (!value) return -1;
    if (cap > 0) {
        size_t n = value_len < cap - 1 ? value_len : cap - 1;
        memcpy(out, value, n);
        out[n] = '\0';
    }
    return (long)value_len;
}

int wisp_parse_u64(const char *text, uint64_t *out) {
    const char *p = text;
    unsigned base = 10;
    if (p[0] == '0' && (p[1] == 'x' || p[1] == 'X')) {
        base = 16;
        p += 2;
    }
    uint64_t v = 0;
    int digits = 0;
    for (;; p++, digits++) {
        unsigned d;
        if (*p >= '0' && *p <= '9')
            d = (unsigned)(*p - '0');
        else if (base == 16 && *p >= 'a' && *p <= 'f')
            d = (unsigned)(*p - 'a' + 10);
        else if (base == 16 && *p >= 'A' && *p <= 'F')
            d = (unsigned)(*p - 'A' + 10);
        else
            break;
        if (v > (UINT64_MAX - d) / base) return -1;
        v = v * base + d;
    }
    if (digits == 0) return -1;
    unsigned shift = 0;
    switch (*p) {
    case 'k':
    case 'K': shift = 10; break;
    case 'm':
    case 'M': shift = 20; break;
    case 'g':
    case 'G': shift = 30; break;
    case '\0': break;
    default: return -1;
    }
    if (shift) {
        if (p[1] != '\0' || v > (UINT64_MAX >> shift)) return -1;
        v <<= shift;
    }
    *out = v;
    return 0;
}
