/* HTTP/1.1 request-head parser (see wisp/http_parse.h). */
#include "wisp/http_parse.h"

#include <string.h>

/* tchar from RFC 9110: the characters of a method or header name. */
static int is_tchar(unsigned char c) {
    if ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')) return 1;
    return c != 0 && strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

/* Bytes allowed inside a field value: visible ASCII, space, tab, obs-text. */
static int is_value_char(unsigned char c) { return c == '\t' || (c >= 0x20 && c != 0x7f); }

static int lower(int c) { return c >= 'A' && c <= 'Z' ? c + 32 : c; }

static int equals_nocase(const char *a, size_t a_len, const char *b) {
    size_t b_len = strlen(b);
    if (a_len != b_len) return 0;
    for (size_t i = 0; i < a_len; i++)
        if (lower((unsigned char)a[i]) != lower((unsigned char)b[i])) return 0;
    return 1;
}

static enum wisp_http_parse_result fail(int *status, int code) {
    *status = code;
    return WISP_HTTP_PARSE_ERROR;
}

/* Finds "\r\n\r\n" from `from`; rejects a bare LF on the way. Returns the index
 * of the terminator, -1 if not (yet) present, -2 on a bare LF. */
static long find_head_end(const char *buf, size_t from, size_t len) {
    for (size_t i = from; i < len; i++) {
        if (buf[i] != '\n') continue;
        if (i == from || buf[i - 1] != '\r') return -2;
        if (i >= from + 3 && buf[i - 2] == '\n' && buf[i - 3] == '\r') return (long)(i - 3);
    }
    return -1;
}

/* Parses "1*DIGIT" without overflow; returns 0 or -1 (not a number), -2 (too big). */
static int parse_length(const char *s, size_t n, uint64_t *out) {
    if (n == 0) return -1;
    uint64_t v = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9') return -1;
        unsigned d = (unsigned)(s[i] - '0');
        if (v > (UINT64_MAX - d) / 10) return -2;
        v = v * 10 + d;
    }
    *out = v;
    return 0;
}

#define CONNECTION_CLOSE 1
#define CONNECTION_KEEP_ALIVE 2

/* The options (comma-separated tokens) of a Connection header. */
static int connection_options(const char *v, size_t n) {
    int options = 0;
    size_t i = 0;
    while (i < n) {
        while (i < n && (v[i] == ' ' || v[i] == '\t' || v[i] == ',')) i++;
        size_t start = i;
        while (i < n && v[i] != ',' && v[i] != ' ' && v[i] != '\t') i++;
        if (equals_nocase(v + start, i - start, "close")) options |= CONNECTION_CLOSE;
        if (equals_nocase(v + start, i - start, "keep-alive")) options |= CONNECTION_KEEP_ALIVE;
    }
    return options;
}

static enum wisp_http_parse_result parse_request_line(const char *line, size_t n,
                                                      struct wisp_http_request *req, int *status) {
    size_t i = 0;
    while (i < n && is_tchar((unsigned char)line[i])) i++;
    if (i == 0 || i == n || line[i] != ' ') return fail(status, 400);
    req->method = line;
    req->method_len = i;
    size_t t = ++i;
    while (i < n && (unsigned char)line[i] > 0x20 && (unsigned char)line[i] < 0x7f) i++;
    if (i == t || i == n || line[i] != ' ') return fail(status, 400);
    req->target = line + t;
    req->target_len = i - t;
    const char *v = line + i + 1;
    size_t v_len = n - i - 1;
    if (v_len != 8 || memcmp(v, "HTTP/", 5) != 0 || v[6] != '.' || v[5] < '0' || v[5] > '9' ||
        v[7] < '0' || v[7] > '9')
        return fail(status, 400);
    if (v[5] != '1' || (v[7] != '0' && v[7] != '1')) return fail(status, 505);
    req->version_minor = v[7] - '0';

    /* Request target: origin-form, absolute-form (path from the first '/' after
     * the authority), or "*" for OPTIONS. */
    const char *p = req->target;
    size_t p_len = req->target_len;
    if (p_len == 1 && p[0] == '*') {
        if (!(req->method_len == 7 && memcmp(req->method, "OPTIONS", 7) == 0))
            return fail(status, 400);
    } else if (p[0] != '/') {
        const char *scheme_end = NULL;
        for (size_t k = 0; k + 2 < p_len; k++)
            if (p[k] == ':' && p[k + 1] == '/' && p[k + 2] == '/') {
                scheme_end = p + k + 3;
                break;
            }
        if (!scheme_end) return fail(status, 400);
        const char *slash = memchr(scheme_end, '/', (size_t)(p + p_len - scheme_end));
        if (!slash) {
            p = "/";
            p_len = 1;
        } else {
            p_len -= (size_t)(slash - p);
            p = slash;
        }
    }
    if (memchr(p, '#', p_len)) return fail(status, 400);
    const char *q = memchr(p, '?', p_len);
    req->path = p;
    req->path_len = q ? (size_t)(q - p) : p_len;
    req->query = q ? q + 1 : NULL;
    req->query_len = q ? p_len - req->path_len - 1 : 0;
    return WISP_HTTP_PARSE_DONE;
}

enum wisp_http_parse_result wisp_http_parse_head(const char *buf, size_t len,
                                                 const struct wisp_http_parse_limits *limits,
                                                 struct wisp_http_header *headers,
                                                 struct wisp_http_request *req, size_t *head_len,
                                                 int *status) {
    memset(req, 0, sizeof *req);
    *status = 0;
    size_t start = 0;
    /* RFC 9112 2.2: ignore at least one empty line before the request line. */
    while (len - start >= 2 && buf[start] == '\r' && buf[start + 1] == '\n') start += 2;
    if (len - start == 1 && buf[start] == '\r') return WISP_HTTP_PARSE_INCOMPLETE;
    if (len > start && buf[start] == '\n') return fail(status, 400);

    /* Refuse a stream that cannot be HTTP (a TLS hello, binary garbage) as soon
     * as its first bytes show it, instead of waiting for a head that never ends. */
    for (size_t i = start; i < len && buf[i] != ' '; i++)
        if (!is_tchar((unsigned char)buf[i])) return fail(status, 400);

    long end = find_head_end(buf, start, len);
    if (end == -2) return fail(status, 400);
    size_t head_bytes = end < 0 ? len - start : (size_t)end + 4 - start;
    if (head_bytes > limits->max_header_bytes) return fail(status, 431);
    if (end < 0) return WISP_HTTP_PARSE_INCOMPLETE;

    const char *line = buf + start;
    const char *head_end = buf + end + 2; /* just past the last field line's CRLF */
    const char *eol = memchr(line, '\r', (size_t)(head_end - line));
    if (eol[1] != '\n') return fail(status, 400); /* a CR inside the request line */
    enum wisp_http_parse_result r = parse_request_line(line, (size_t)(eol - line), req, status);
    if (r != WISP_HTTP_PARSE_DONE) return r;
    req->keep_alive = req->version_minor == 1;

    int hosts = 0, have_length = 0, chunked_or_other_te = 0, connection = 0;
    size_t count = 0;
    for (line = eol + 2; line < head_end; line = eol + 2) {
        eol = memchr(line, '\r', (size_t)(head_end - line));
        size_t n = (size_t)(eol - line);
        if (eol[1] != '\n') return fail(status, 400); /* a CR inside a line */
        size_t i = 0;
        while (i < n && is_tchar((unsigned char)line[i])) i++;
        /* Empty name, obs-fold (leading whitespace), or space before the colon. */
        if (i == 0 || i == n || line[i] != ':') return fail(status, 400);
        size_t name_len = i++;
        while (i < n && (line[i] == ' ' || line[i] == '\t')) i++;
        size_t v_start = i, v_end = n;
        while (v_end > v_start && (line[v_end - 1] == ' ' || line[v_end - 1] == '\t')) v_end--;
        for (size_t k = v_start; k < v_end; k++)
            if (!is_value_char((unsigned char)line[k])) return fail(status, 400);
        if (count == limits->max_headers) return fail(status, 431);
        struct wisp_http_header *h = &headers[count++];
        h->name = line;
        h->name_len = name_len;
        h->value = line + v_start;
        h->value_len = v_end - v_start;

        if (equals_nocase(h->name, h->name_len, "content-length")) {
            uint64_t v = 0;
            int rc = parse_length(h->value, h->value_len, &v);
            if (rc == -1) return fail(status, 400);
            if (rc == -2) return fail(status, 413);
            if (have_length && v != req->content_length) return fail(status, 400);
            have_length = 1;
            req->content_length = v;
        } else if (equals_nocase(h->name, h->name_len, "transfer-encoding")) {
            chunked_or_other_te = 1;
        } else if (equals_nocase(h->name, h->name_len, "host")) {
            hosts++;
        } else if (equals_nocase(h->name, h->name_len, "connection")) {
            connection |= connection_options(h->value, h->value_len);
        } else if (equals_nocase(h->name, h->name_len, "expect")) {
            if (equals_nocase(h->value, h->value_len, "100-continue")) req->expect_continue = 1;
        }
    }
    /* A message with both framing headers is a smuggling attempt (RFC 9112 6.1). */
    if (chunked_or_other_te) return fail(status, have_length ? 400 : 501);
    if (hosts > 1 || (req->version_minor == 1 && hosts == 0)) return fail(status, 400);
    if (req->content_length > limits->max_body_bytes) return fail(status, 413);
    /* HTTP/1.1 persists unless "close"; HTTP/1.0 only with "keep-alive". */
    if (connection & CONNECTION_CLOSE)
        req->keep_alive = 0;
    else if (connection & CONNECTION_KEEP_ALIVE)
        req->keep_alive = 1;
    req->headers = headers;
    req->header_count = count;
    *head_len = (size_t)end + 4;
    return WISP_HTTP_PARSE_DONE;
}

const struct wisp_http_header *wisp_http_find_header(const struct wisp_http_request *req,
                                                     const char *name) {
    for (size_t i = 0; i < req->header_count; i++)
        if (equals_nocase(req->headers[i].name, req->headers[i].name_len, name))
            return &req->headers[i];
    return NULL;
}

int wisp_http_method_is(const struct wisp_http_request *req, const char *method) {
    size_t n = strlen(method);
    return req->method_len == n && memcmp(req->method, method, n) == 0;
}

int wisp_http_is_get(const struct wisp_http_request *req) {
    return wisp_http_method_is(req, "GET") || wisp_http_method_is(req, "HEAD");
}

int wisp_http_path_is(const struct wisp_http_request *req, const char *path) {
    size_t n = strlen(path);
    return req->path_len == n && memcmp(req->path, path, n) == 0;
}

int wisp_http_path_has_prefix(const struct wisp_http_request *req, const char *prefix,
                              const char **rest, size_t *rest_len) {
    size_t n = strlen(prefix);
    if (req->path_len < n || memcmp(req->path, prefix, n) != 0) return 0;
    if (rest) *rest = req->path + n;
    if (rest_len) *rest_len = req->path_len - n;
    return 1;
}
