/*
 * wisp HTTP/1.1 server helper for guests, over lwIP's raw TCP API.
 *
 * The app registers one handler; the helper accepts connections (IPv4 and IPv6),
 * parses requests with limits, calls the handler once per complete request and
 * sends its response with tcp_sent backpressure, so responses of any size (far
 * beyond the TCP window) go out intact. Keep-alive and pipelining follow
 * HTTP/1.1; bodies are Content-Length only.
 *
 * Errors the helper answers itself (and then closes the connection):
 *   400 malformed request line / header / Content-Length, bare LF, missing Host
 *   408 request not complete within request_timeout_ms
 *   413 Content-Length above max_body_bytes
 *   431 request head above max_header_bytes or more than max_headers fields
 *   501 Transfer-Encoding (chunked request bodies are not supported)
 *   505 HTTP version other than 1.0 / 1.1
 * The app answers 404/405 itself (wisp_http_respond_error helps).
 */
#ifndef WISP_HTTP_H
#define WISP_HTTP_H

#include <stddef.h>
#include <stdint.h>

#include "wisp/http_parse.h"

#ifdef __cplusplus
extern "C" {
#endif

struct wisp_http_response;

/* Called once per complete request. `req` (and the bytes it points to) is valid
 * only during the call. The handler must produce exactly one response with one
 * of the wisp_http_respond* functions; if it does not, the helper sends 500. */
typedef void (*wisp_http_handler)(void *ctx, const struct wisp_http_request *req,
                                  struct wisp_http_response *res);

struct wisp_http_config {
    uint16_t port;
    wisp_http_handler handler;
    void *ctx;
    size_t max_header_bytes;     /* request line + headers; 0: 8 KiB */
    size_t max_body_bytes;       /* 0: 1 MiB */
    size_t max_headers;          /* header fields per request; 0: 64 */
    /* The next three, when 0, come from the command line (http_max_connections=,
     * http_idle_timeout_ms=, http_request_timeout_ms=) or else the default. */
    size_t max_connections;      /* open connections; more are reset; 1024 */
    uint32_t idle_timeout_ms;    /* keep-alive connection without a request; 60 s */
    uint32_t request_timeout_ms; /* first byte of a request to its last; 10 s */
    /* If set, GET on this path answers the helper's own statistics as JSON
     * (connections, requests, network and heap counters), e.g. "/_wisp/stats". */
    const char *stats_path;
};

/* Starts listening on cfg->port (any address, IPv4 and IPv6). The config is
 * copied. Returns 0, or -1 if the port cannot be bound. Serve by running the
 * event loop (wisp_net_run). */
int wisp_http_serve(const struct wisp_http_config *cfg);

/* ---- responses ------------------------------------------------------------- */

/* Adds a response header (copied). Call before a respond function. Returns -1
 * if the header space (1 KiB per response) is exhausted. */
int wisp_http_add_header(struct wisp_http_response *res, const char *name, const char *value);

/* Responds with a copy of `body`. */
void wisp_http_respond(struct wisp_http_response *res, int status, const char *content_type,
                       const void *body, size_t len);

/* Responds with `body` without copying: it must stay valid and unchanged until
 * the connection is gone (static or never-freed data). */
void wisp_http_respond_static(struct wisp_http_response *res, int status,
                              const char *content_type, const void *body, size_t len);

/* Responds with a malloc'd `body` that the helper frees when it is sent. */
void wisp_http_respond_owned(struct wisp_http_response *res, int status,
                             const char *content_type, void *body, size_t len);

/* Produces a body of `len` bytes on demand: fill(ctx, offset, buf, n) writes
 * bytes [offset, offset + n) of the body into buf. For large generated bodies
 * that should not sit in memory. `ctx` must stay valid until the response is
 * sent. */
typedef void (*wisp_http_body_fill)(void *ctx, uint64_t offset, char *buf, size_t n);
void wisp_http_respond_generated(struct wisp_http_response *res, int status,
                                 const char *content_type, uint64_t len, wisp_http_body_fill fill,
                                 void *ctx);

/* Responds `status` with its reason phrase (and `detail`, if given) as text. */
void wisp_http_respond_error(struct wisp_http_response *res, int status, const char *detail);

/* 1 if the request's method is one of `methods` (comma-separated, e.g.
 * "GET, PUT"; GET also allows HEAD). Otherwise answers 405 with an Allow header
 * naming them and returns 0. */
int wisp_http_allow(const struct wisp_http_request *req, struct wisp_http_response *res,
                    const char *methods);

/* Reason phrase for a status code ("OK", "Not Found", ...). */
const char *wisp_http_reason(int status);

/* ---- statistics ------------------------------------------------------------ */

struct wisp_http_stats {
    uint64_t accepted;
    uint64_t refused;    /* over max_connections */
    uint64_t open;
    uint64_t requests;
    uint64_t responses_2xx, responses_3xx, responses_4xx, responses_5xx;
    uint64_t closed_by_peer;
    uint64_t closed_by_server;
    uint64_t aborted;    /* connection error (RST) or memory exhaustion */
    uint64_t timeouts;
};
struct wisp_http_stats wisp_http_stats(void);

#ifdef __cplusplus
}
#endif

#endif /* WISP_HTTP_H */
