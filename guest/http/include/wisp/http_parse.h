/*
 * HTTP/1.1 request-head parser for wisp guests (RFC 9112 message syntax).
 *
 * Plain C with no dependency on the guest environment or lwIP: the guest's HTTP
 * helper uses it, and host unit tests and a fuzzer exercise the same code. It
 * never allocates; results point into the caller's buffer.
 */
#ifndef WISP_HTTP_PARSE_H
#define WISP_HTTP_PARSE_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

struct wisp_http_header {
    const char *name;
    size_t name_len;
    const char *value; /* without surrounding whitespace */
    size_t value_len;
};

struct wisp_http_request {
    const char *method;
    size_t method_len;
    const char *target; /* as sent */
    size_t target_len;
    const char *path;   /* target without the query (for absolute-form: from the first '/') */
    size_t path_len;
    const char *query;  /* after '?', NULL if none */
    size_t query_len;
    int version_minor;  /* HTTP/1.<minor>: 0 or 1 */
    const struct wisp_http_header *headers;
    size_t header_count;
    uint64_t content_length;
    int keep_alive;      /* the client allows another request on this connection */
    int expect_continue; /* "Expect: 100-continue" */
    const char *body;    /* filled by the server once the whole body has arrived */
    size_t body_len;
};

struct wisp_http_parse_limits {
    size_t max_header_bytes; /* request line + header fields + the empty line */
    size_t max_body_bytes;
    size_t max_headers;      /* entries available in the headers array */
};

enum wisp_http_parse_result {
    WISP_HTTP_PARSE_ERROR = -1,     /* *status holds the 4xx/5xx to answer */
    WISP_HTTP_PARSE_INCOMPLETE = 0, /* need more bytes */
    WISP_HTTP_PARSE_DONE = 1,       /* *head_len bytes form a valid request head */
};

/* Parses the request head at the start of buf[0..len). Leading empty lines are
 * skipped (and counted in *head_len). `headers` must have room for
 * limits->max_headers entries. */
enum wisp_http_parse_result wisp_http_parse_head(const char *buf, size_t len,
                                                 const struct wisp_http_parse_limits *limits,
                                                 struct wisp_http_header *headers,
                                                 struct wisp_http_request *req, size_t *head_len,
                                                 int *status);

/* Case-insensitive header lookup; NULL if absent. */
const struct wisp_http_header *wisp_http_find_header(const struct wisp_http_request *req,
                                                     const char *name);

/* 1 if the request's method is exactly `method`. */
int wisp_http_method_is(const struct wisp_http_request *req, const char *method);

/* 1 for GET and HEAD (the helper drops the body of a HEAD response). */
int wisp_http_is_get(const struct wisp_http_request *req);

/* 1 if the path equals `path`. */
int wisp_http_path_is(const struct wisp_http_request *req, const char *path);

/* 1 if the path starts with `prefix`; *rest / *rest_len receive the remainder. */
int wisp_http_path_has_prefix(const struct wisp_http_request *req, const char *prefix,
                              const char **rest, size_t *rest_len);

#ifdef __cplusplus
}
#endif

#endif /* WISP_HTTP_PARSE_H */
