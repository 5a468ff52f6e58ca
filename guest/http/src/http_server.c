/* HTTP/1.1 server helper over lwIP's raw TCP API (see wisp/http.h).
 *
 * One `struct conn` per accepted connection. Bytes are copied out of lwIP's pbufs
 * into the connection's input buffer; a complete request (head + Content-Length
 * body) is handed to the app's handler, whose response is then written into the
 * TCP send buffer as far as it has room and continued from the tcp_sent callback.
 * While a response is in flight, further (pipelined) input is buffered but the
 * receive window is not reopened, so a client cannot make the guest buffer more
 * than one window beyond its limits. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lwip/tcp.h"
#include "wisp/guest.h"
#include "wisp/http.h"
#include "wisp/net.h"

#define DEFAULT_MAX_HEADER_BYTES (8u * 1024)
#define DEFAULT_MAX_BODY_BYTES (1u * 1024 * 1024)
#define DEFAULT_MAX_HEADERS 64u
#define MAX_HEADERS_LIMIT 256u /* the header array lives on the stack while parsing */
#define DEFAULT_MAX_CONNECTIONS 1024u
#define DEFAULT_IDLE_TIMEOUT_MS 60000u
#define DEFAULT_REQUEST_TIMEOUT_MS 10000u
/* tcp_poll counts coarse TCP ticks (2 x TCP_TMR_INTERVAL): check timeouts every second. */
#define POLL_INTERVAL (1000 / (2 * TCP_TMR_INTERVAL))
#define EXTRA_HEADERS_MAX 1024
#define WRITE_CHUNK_MAX 0xffffu /* tcp_write takes a u16_t length */
#define GENERATE_CHUNK 16384

struct server {
    struct wisp_http_config cfg;
    struct tcp_pcb *listener;
};

enum body_kind { BODY_NONE, BODY_MEMORY, BODY_GENERATED };

struct wisp_http_response {
    int responded;
    int status;
    const char *content_type;
    char headers[EXTRA_HEADERS_MAX];
    size_t headers_len;
    int headers_overflow;
    enum body_kind kind;
    const char *body;
    void *owned; /* freed once sent */
    int copy;    /* body may change after the handler returns: copy it into lwIP */
    uint64_t len;
    wisp_http_body_fill fill;
    void *fill_ctx;
};

struct conn {
    struct tcp_pcb *pcb;
    struct server *srv;
    struct conn *prev, *next;
    /* input */
    char *in;
    size_t in_len, in_cap;
    size_t request_bytes;   /* head + body of the request being received, once known */
    uint32_t window_owed;   /* bytes consumed from lwIP but not yet reopened in the window */
    int in_request;         /* bytes of an unfinished request are buffered */
    uint32_t request_started_ms;
    uint32_t last_activity_ms;
    int continue_sent;
    /* output */
    int sending;
    char *head;
    size_t head_len, head_off;
    enum body_kind body_kind;
    const char *body;
    void *body_owned;
    int body_copy;
    uint64_t body_len, body_off;
    wisp_http_body_fill fill;
    void *fill_ctx;
    /* lifecycle */
    int close_after; /* close once the current response is queued */
    int peer_closed;
    int close_pending; /* tcp_close ran out of memory: retry from the poll callback */
};

static struct wisp_http_stats g_stats;
static struct conn *g_conns;

static uint32_t now_ms(void) { return (uint32_t)(wisp_monotonic_ns() / 1000000u); }

/* ---- connection lifecycle ----------------------------------------------- */

static void conn_free(struct conn *c) {
    if (c->prev)
        c->prev->next = c->next;
    else
        g_conns = c->next;
    if (c->next) c->next->prev = c->prev;
    free(c->in);
    free(c->head);
    free(c->body_owned);
    free(c);
    g_stats.open--;
}

static void on_error(void *arg, err_t err);
static err_t on_poll(void *arg, struct tcp_pcb *pcb);

static void detach(struct tcp_pcb *pcb) {
    tcp_arg(pcb, NULL);
    tcp_recv(pcb, NULL);
    tcp_sent(pcb, NULL);
    tcp_err(pcb, NULL);
    tcp_poll(pcb, NULL, 0);
}

/* Reopens the receive window for everything consumed so far. lwIP resets a
 * connection closed with unacknowledged received data, so this also runs
 * before every close. */
static void open_window(struct conn *c) {
    while (c->window_owed > 0) {
        u16_t n = c->window_owed > 0xffffu ? 0xffffu : (u16_t)c->window_owed;
        tcp_recved(c->pcb, n);
        c->window_owed -= n;
    }
}

/* Resets the connection. Returns ERR_ABRT for the lwIP callback to return. */
static err_t conn_abort(struct conn *c) {
    struct tcp_pcb *pcb = c->pcb;
    detach(pcb);
    tcp_abort(pcb);
    g_stats.aborted++;
    conn_free(c);
    return ERR_ABRT;
}

/* Orderly close (FIN). The conn is gone afterwards unless close_pending. */
static void conn_close(struct conn *c) {
    struct tcp_pcb *pcb = c->pcb;
    open_window(c);
    detach(pcb);
    if (tcp_close(pcb) != ERR_OK) {
        /* Out of memory for the FIN: keep the conn and retry from the poll timer. */
        tcp_arg(pcb, c);
        tcp_err(pcb, on_error);
        tcp_poll(pcb, on_poll, POLL_INTERVAL);
        c->close_pending = 1;
        return;
    }
    if (c->peer_closed)
        g_stats.closed_by_peer++;
    else
        g_stats.closed_by_server++;
    conn_free(c);
}

/* ---- responses -------------------------------------------------------------- */

const char *wisp_http_reason(int status) {
    switch (status) {
    case 100: return "Continue";
    case 200: return "OK";
    case 201: return "Created";
    case 202: return "Accepted";
    case 204: return "No Content";
    case 301: return "Moved Permanently";
    case 302: return "Found";
    case 304: return "Not Modified";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 408: return "Request Timeout";
    case 409: return "Conflict";
    case 411: return "Length Required";
    case 413: return "Content Too Large";
    case 414: return "URI Too Long";
    case 415: return "Unsupported Media Type";
    case 417: return "Expectation Failed";
    case 429: return "Too Many Requests";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 501: return "Not Implemented";
    case 503: return "Service Unavailable";
    case 505: return "HTTP Version Not Supported";
    case 507: return "Insufficient Storage";
    default: return status < 300 ? "OK" : status < 500 ? "Client Error" : "Server Error";
    }
}

int wisp_http_add_header(struct wisp_http_response *res, const char *name, const char *value) {
    size_t room = sizeof res->headers - res->headers_len;
    int n = snprintf(res->headers + res->headers_len, room, "%s: %s\r\n", name, value);
    if (n < 0 || (size_t)n >= room) {
        res->headers[res->headers_len] = '\0';
        res->headers_overflow = 1;
        return -1;
    }
    res->headers_len += (size_t)n;
    return 0;
}

static int begin_response(struct wisp_http_response *res, int status, const char *content_type) {
    if (res->responded) return 0; /* one response per request: later calls are ignored */
    res->responded = 1;
    res->status = status;
    res->content_type = content_type;
    return 1;
}

void wisp_http_respond_static(struct wisp_http_response *res, int status, const char *content_type,
                              const void *body, size_t len) {
    if (!begin_response(res, status, content_type)) return;
    res->kind = BODY_MEMORY;
    res->body = body;
    res->len = len;
}

void wisp_http_respond_owned(struct wisp_http_response *res, int status, const char *content_type,
                             void *body, size_t len) {
    if (!begin_response(res, status, content_type)) {
        free(body);
        return;
    }
    res->kind = BODY_MEMORY;
    res->body = body;
    res->owned = body;
    res->copy = 1; /* freed right after queueing, so lwIP must hold its own copy */
    res->len = len;
}

void wisp_http_respond(struct wisp_http_response *res, int status, const char *content_type,
                       const void *body, size_t len) {
    void *copy = malloc(len ? len : 1);
    if (!copy) {
        wisp_http_respond_static(res, 503, "text/plain", "out of memory\n", 14);
        return;
    }
    memcpy(copy, body, len);
    wisp_http_respond_owned(res, status, content_type, copy, len);
}

void wisp_http_respond_generated(struct wisp_http_response *res, int status,
                                 const char *content_type, uint64_t len, wisp_http_body_fill fill,
                                 void *ctx) {
    if (!begin_response(res, status, content_type)) return;
    res->kind = BODY_GENERATED;
    res->len = len;
    res->fill = fill;
    res->fill_ctx = ctx;
}

void wisp_http_respond_error(struct wisp_http_response *res, int status, const char *detail) {
    char text[256];
    int n = snprintf(text, sizeof text, "%d %s%s%s\n", status, wisp_http_reason(status),
                     detail ? ": " : "", detail ? detail : "");
    if (n < 0) n = 0;
    if ((size_t)n >= sizeof text) n = sizeof text - 1;
    wisp_http_respond(res, status, "text/plain", text, (size_t)n);
}

int wisp_http_allow(const struct wisp_http_request *req, struct wisp_http_response *res,
                    const char *methods) {
    const char *p = methods;
    while (*p) {
        while (*p == ' ' || *p == ',') p++;
        const char *start = p;
        while (*p && *p != ',' && *p != ' ') p++;
        size_t n = (size_t)(p - start);
        if (n == 0) break;
        if (req->method_len == n && memcmp(req->method, start, n) == 0) return 1;
        if (n == 3 && memcmp(start, "GET", 3) == 0 && wisp_http_method_is(req, "HEAD")) return 1;
    }
    char allow[128];
    int has_get = strstr(methods, "GET") != NULL && strstr(methods, "HEAD") == NULL;
    snprintf(allow, sizeof allow, "%s%s", methods, has_get ? ", HEAD" : "");
    wisp_http_add_header(res, "Allow", allow);
    wisp_http_respond_error(res, 405, NULL);
    return 0;
}

/* "Date: Sun, 06 Nov 1994 08:49:37 GMT\r\n", recomputed once a second. */
static const char *date_header(void) {
    static char cached[48];
    static uint64_t cached_second = UINT64_MAX;
    uint64_t second = wisp_wall_ns() / 1000000000u;
    if (second == cached_second) return cached;
    cached_second = second;
    static const char *days[] = {"Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"};
    static const char *months[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                   "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
    uint64_t day = second / 86400, rem = second % 86400;
    /* Civil date from days since 1970-01-01 (Howard Hinnant's algorithm). */
    int64_t z = (int64_t)day + 719468;
    int64_t era = z / 146097;
    int64_t doe = z - era * 146097;
    int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    int64_t mp = (5 * doy + 2) / 153;
    int64_t d = doy - (153 * mp + 2) / 5 + 1;
    int64_t m = mp < 10 ? mp + 3 : mp - 9;
    int64_t y = yoe + era * 400 + (m <= 2);
    snprintf(cached, sizeof cached, "Date: %s, %02d %s %04d %02d:%02d:%02d GMT\r\n",
             days[day % 7], (int)d, months[m - 1], (int)y, (int)(rem / 3600),
             (int)(rem / 60 % 60), (int)(rem % 60));
    return cached;
}

/* Turns the handler's response into the connection's output state. */
static int start_response(struct conn *c, struct wisp_http_response *res, int head_only,
                          int keep_alive, int version_minor) {
    int status = res->status;
    int no_body = status == 204 || status == 304 || (status >= 100 && status < 200);
    if (!keep_alive) c->close_after = 1;
    char length[40] = "";
    if (!(status == 204 || (status >= 100 && status < 200)))
        snprintf(length, sizeof length, "Content-Length: %llu\r\n", (unsigned long long)res->len);
    const char *connection = c->close_after ? "Connection: close\r\n"
                             : version_minor == 0 ? "Connection: keep-alive\r\n"
                                                  : "";
    char type[128] = "";
    if (res->content_type && !no_body)
        snprintf(type, sizeof type, "Content-Type: %s\r\n", res->content_type);
    const char *date = date_header();
    size_t cap = 64 + strlen(date) + strlen(length) + strlen(type) + strlen(connection) +
                 res->headers_len + 4;
    c->head = malloc(cap);
    if (!c->head) {
        free(res->owned);
        return -1;
    }
    int n = snprintf(c->head, cap, "HTTP/1.1 %d %s\r\nServer: wisp\r\n%s%s%s%s%s\r\n", status,
                     wisp_http_reason(status), date, length, type, connection, res->headers);
    c->head_len = (size_t)n;
    c->head_off = 0;
    c->body_kind = (head_only || no_body) ? BODY_NONE : res->kind;
    c->body = res->body;
    c->body_owned = res->owned;
    c->body_copy = res->copy;
    c->body_len = c->body_kind == BODY_NONE ? 0 : res->len;
    c->body_off = 0;
    c->fill = res->fill;
    c->fill_ctx = res->fill_ctx;
    c->sending = 1;
    if (status < 300)
        g_stats.responses_2xx++;
    else if (status < 400)
        g_stats.responses_3xx++;
    else if (status < 500)
        g_stats.responses_4xx++;
    else
        g_stats.responses_5xx++;
    return 0;
}

static void finish_response(struct conn *c) {
    free(c->head);
    c->head = NULL;
    free(c->body_owned);
    c->body_owned = NULL;
    c->sending = 0;
}

/* Queues as much of the response as lwIP takes. Returns ERR_ABRT if the
 * connection had to be reset, ERR_OK otherwise (c->sending tells if more is left). */
static err_t send_pending(struct conn *c) {
    static char scratch[GENERATE_CHUNK];
    while (c->sending) {
        size_t room = tcp_sndbuf(c->pcb);
        if (room == 0) break;
        if (room > WRITE_CHUNK_MAX) room = WRITE_CHUNK_MAX;
        const char *data;
        size_t n;
        u8_t flags = TCP_WRITE_FLAG_COPY;
        int is_head = c->head_off < c->head_len;
        if (is_head) {
            data = c->head + c->head_off;
            n = c->head_len - c->head_off;
        } else if (c->body_off < c->body_len) {
            uint64_t left = c->body_len - c->body_off;
            n = left < room ? (size_t)left : room;
            if (c->body_kind == BODY_GENERATED) {
                if (n > sizeof scratch) n = sizeof scratch;
                c->fill(c->fill_ctx, c->body_off, scratch, n);
                data = scratch;
            } else {
                data = c->body + c->body_off;
                if (!c->body_copy) flags = 0; /* static data: lwIP may reference it */
            }
        } else {
            finish_response(c);
            break;
        }
        if (n > room) n = room;
        int more = is_head ? c->body_len > 0 : c->body_off + n < c->body_len;
        if (more) flags |= TCP_WRITE_FLAG_MORE;
        err_t err = tcp_write(c->pcb, data, (u16_t)n, flags);
        if (err == ERR_MEM) break; /* queue full: tcp_sent or the poll timer resumes */
        if (err != ERR_OK) return conn_abort(c);
        if (is_head)
            c->head_off += n;
        else
            c->body_off += n;
    }
    /* A failed output (no memory) is retried by lwIP's own timers. */
    tcp_output(c->pcb);
    return ERR_OK;
}

/* ---- requests --------------------------------------------------------------- */

static void respond_stats(struct wisp_http_response *res) {
    struct wisp_net_stats net = wisp_net_stats();
    struct wisp_heap_stats heap = wisp_malloc_stats();
    char *text = malloc(1024);
    if (!text) {
        wisp_http_respond_error(res, 503, "out of memory");
        return;
    }
    int n = snprintf(
        text, 1024,
        "{\"http\":{\"accepted\":%llu,\"refused\":%llu,\"open\":%llu,\"requests\":%llu,"
        "\"responses_2xx\":%llu,\"responses_4xx\":%llu,\"responses_5xx\":%llu,"
        "\"closed_by_peer\":%llu,\"closed_by_server\":%llu,\"aborted\":%llu,\"timeouts\":%llu},"
        "\"net\":{\"polls\":%llu,\"flushes\":%llu,\"rx_frames\":%llu,\"tx_frames\":%llu,"
        "\"rx_dropped\":%llu,\"tx_dropped\":%llu},"
        "\"heap\":{\"capacity\":%zu,\"in_use\":%zu,\"peak_in_use\":%zu,\"touched\":%zu},"
        "\"restore_count\":%u}\n",
        (unsigned long long)g_stats.accepted, (unsigned long long)g_stats.refused,
        (unsigned long long)g_stats.open, (unsigned long long)g_stats.requests,
        (unsigned long long)g_stats.responses_2xx, (unsigned long long)g_stats.responses_4xx,
        (unsigned long long)g_stats.responses_5xx, (unsigned long long)g_stats.closed_by_peer,
        (unsigned long long)g_stats.closed_by_server, (unsigned long long)g_stats.aborted,
        (unsigned long long)g_stats.timeouts, (unsigned long long)net.polls,
        (unsigned long long)net.flushes, (unsigned long long)net.rx_frames,
        (unsigned long long)net.tx_frames, (unsigned long long)net.rx_dropped,
        (unsigned long long)net.tx_dropped, heap.capacity, heap.in_use, heap.peak_in_use,
        heap.touched, wisp_restore_count());
    wisp_http_respond_owned(res, 200, "application/json", text, (size_t)n);
}

/* Answers an error the helper detected itself, then closes. */
static int respond_protocol_error(struct conn *c, int status) {
    struct wisp_http_response res;
    memset(&res, 0, sizeof res);
    wisp_http_respond_error(&res, status, NULL);
    c->close_after = 1;
    c->in_len = 0; /* nothing after a broken request can be trusted */
    return start_response(c, &res, 0, 0, 1);
}

static int dispatch(struct conn *c, const struct wisp_http_request *req) {
    g_stats.requests++;
    struct wisp_http_response res;
    memset(&res, 0, sizeof res);
    const struct wisp_http_config *cfg = &c->srv->cfg;
    if (cfg->stats_path && wisp_http_is_get(req) && wisp_http_path_is(req, cfg->stats_path))
        respond_stats(&res);
    else
        cfg->handler(cfg->ctx, req, &res);
    if (!res.responded) wisp_http_respond_error(&res, 500, "handler sent no response");
    if (res.headers_overflow) {
        free(res.owned);
        memset(&res, 0, sizeof res);
        wisp_http_respond_error(&res, 500, "response headers too large");
    }
    return start_response(c, &res, wisp_http_method_is(req, "HEAD"), req->keep_alive,
                          req->version_minor);
}

static int reserve_input(struct conn *c, size_t need) {
    if (need <= c->in_cap) return 0;
    size_t cap = c->in_cap ? c->in_cap : 2048;
    while (cap < need) cap *= 2;
    char *in = realloc(c->in, cap);
    if (!in) return -1;
    c->in = in;
    c->in_cap = cap;
    return 0;
}

/* Handles every complete request in the input buffer, in order, as long as the
 * previous response is fully queued. Returns ERR_ABRT if the conn is gone. */
static err_t process(struct conn *c) {
    const struct wisp_http_config *cfg = &c->srv->cfg;
    struct wisp_http_parse_limits limits = {cfg->max_header_bytes, cfg->max_body_bytes,
                                            cfg->max_headers};
    while (!c->sending && !c->close_after) {
        if (c->in_len == 0) {
            c->in_request = 0;
            break;
        }
        if (!c->in_request) {
            c->in_request = 1;
            c->request_started_ms = now_ms();
        }
        if (c->request_bytes && c->in_len < c->request_bytes) break; /* body still arriving */
        struct wisp_http_header headers[MAX_HEADERS_LIMIT];
        struct wisp_http_request req;
        size_t head_len = 0;
        int status = 0;
        enum wisp_http_parse_result r =
            wisp_http_parse_head(c->in, c->in_len, &limits, headers, &req, &head_len, &status);
        if (r == WISP_HTTP_PARSE_INCOMPLETE) break;
        int failed;
        if (r == WISP_HTTP_PARSE_ERROR) {
            g_stats.requests++;
            failed = respond_protocol_error(c, status);
        } else {
            size_t total = head_len + (size_t)req.content_length;
            if (c->in_len < total) {
                c->request_bytes = total;
                if (reserve_input(c, total) != 0) return conn_abort(c);
                if (req.expect_continue && !c->continue_sent) {
                    static const char cont[] = "HTTP/1.1 100 Continue\r\n\r\n";
                    if (tcp_write(c->pcb, cont, sizeof cont - 1, 0) == ERR_OK) tcp_output(c->pcb);
                    c->continue_sent = 1;
                }
                break;
            }
            req.body = c->in + head_len;
            req.body_len = (size_t)req.content_length;
            failed = dispatch(c, &req);
            memmove(c->in, c->in + total, c->in_len - total);
            c->in_len -= total;
        }
        c->request_bytes = 0;
        c->continue_sent = 0;
        c->in_request = 0;
        if (failed) return conn_abort(c); /* no memory for even the response head */
        if (send_pending(c) == ERR_ABRT) return ERR_ABRT;
    }
    if (!c->sending && (c->close_after || c->peer_closed)) conn_close(c);
    return ERR_OK;
}

/* ---- lwIP callbacks --------------------------------------------------------- */

static err_t on_recv(void *arg, struct tcp_pcb *pcb, struct pbuf *p, err_t err) {
    struct conn *c = arg;
    (void)pcb;
    if (!c) { /* closed from our side and detached: discard */
        if (p) {
            tcp_recved(pcb, p->tot_len);
            pbuf_free(p);
        }
        return ERR_OK;
    }
    if (!p) { /* FIN from the peer */
        c->peer_closed = 1;
        if (!c->sending) conn_close(c);
        return ERR_OK;
    }
    if (err != ERR_OK) {
        pbuf_free(p);
        return err;
    }
    c->last_activity_ms = now_ms();
    if (c->close_after) { /* answering an error: drop whatever else arrives */
        tcp_recved(pcb, p->tot_len);
        pbuf_free(p);
        return ERR_OK;
    }
    if (reserve_input(c, c->in_len + p->tot_len) != 0) {
        pbuf_free(p);
        return conn_abort(c);
    }
    pbuf_copy_partial(p, c->in + c->in_len, p->tot_len, 0);
    c->in_len += p->tot_len;
    c->window_owed += p->tot_len;
    pbuf_free(p);
    if (!c->sending) open_window(c);
    return process(c);
}

static err_t on_sent(void *arg, struct tcp_pcb *pcb, u16_t len) {
    struct conn *c = arg;
    (void)pcb;
    (void)len;
    if (!c) return ERR_OK;
    c->last_activity_ms = now_ms();
    if (!c->sending) return ERR_OK;
    if (send_pending(c) == ERR_ABRT) return ERR_ABRT;
    if (c->sending) return ERR_OK;
    open_window(c);
    return process(c);
}

static void on_error(void *arg, err_t err) {
    struct conn *c = arg;
    (void)err;
    if (!c) return;
    g_stats.aborted++; /* lwIP already freed the pcb */
    conn_free(c);
}

static err_t on_poll(void *arg, struct tcp_pcb *pcb) {
    struct conn *c = arg;
    (void)pcb;
    if (!c) return ERR_OK;
    if (c->close_pending) {
        c->close_pending = 0;
        conn_close(c);
        return ERR_OK;
    }
    const struct wisp_http_config *cfg = &c->srv->cfg;
    uint32_t now = now_ms();
    if (c->sending) {
        if (now - c->last_activity_ms > cfg->idle_timeout_ms) { /* client stopped reading */
            g_stats.timeouts++;
            return conn_abort(c);
        }
        if (send_pending(c) == ERR_ABRT) return ERR_ABRT; /* resume after ERR_MEM */
        if (c->sending) return ERR_OK;
        open_window(c);
        return process(c);
    }
    if (c->in_request && now - c->request_started_ms > cfg->request_timeout_ms) {
        g_stats.timeouts++;
        if (respond_protocol_error(c, 408) != 0) return conn_abort(c);
        if (send_pending(c) == ERR_ABRT) return ERR_ABRT;
        if (!c->sending) conn_close(c);
        return ERR_OK;
    }
    if (!c->in_request && now - c->last_activity_ms > cfg->idle_timeout_ms) {
        g_stats.timeouts++;
        conn_close(c);
    }
    return ERR_OK;
}

static err_t on_accept(void *arg, struct tcp_pcb *pcb, err_t err) {
    struct server *srv = arg;
    if (err != ERR_OK || !pcb) return ERR_VAL;
    if (g_stats.open >= srv->cfg.max_connections) {
        g_stats.refused++;
        tcp_abort(pcb);
        return ERR_ABRT;
    }
    struct conn *c = calloc(1, sizeof *c);
    if (!c) {
        g_stats.refused++;
        tcp_abort(pcb);
        return ERR_ABRT;
    }
    c->pcb = pcb;
    c->srv = srv;
    c->last_activity_ms = now_ms();
    c->next = g_conns;
    if (g_conns) g_conns->prev = c;
    g_conns = c;
    g_stats.accepted++;
    g_stats.open++;
    tcp_nagle_disable(pcb); /* responses are written whole; do not wait for ACKs */
    tcp_arg(pcb, c);
    tcp_recv(pcb, on_recv);
    tcp_sent(pcb, on_sent);
    tcp_err(pcb, on_error);
    tcp_poll(pcb, on_poll, POLL_INTERVAL);
    return ERR_OK;
}

int wisp_http_serve(const struct wisp_http_config *cfg) {
    struct server *srv = calloc(1, sizeof *srv);
    if (!srv) return -1;
    srv->cfg = *cfg;
    struct wisp_http_config *c = &srv->cfg;
    if (!c->max_header_bytes) c->max_header_bytes = DEFAULT_MAX_HEADER_BYTES;
    if (!c->max_body_bytes) c->max_body_bytes = DEFAULT_MAX_BODY_BYTES;
    if (!c->max_headers) c->max_headers = DEFAULT_MAX_HEADERS;
    if (c->max_headers > MAX_HEADERS_LIMIT) c->max_headers = MAX_HEADERS_LIMIT;
    /* Limits the app leaves at 0 can be tuned per instance from the command line. */
    if (!c->max_connections)
        c->max_connections = wisp_cmdline_u64("http_max_connections", DEFAULT_MAX_CONNECTIONS);
    if (!c->idle_timeout_ms)
        c->idle_timeout_ms = (uint32_t)wisp_cmdline_u64("http_idle_timeout_ms", DEFAULT_IDLE_TIMEOUT_MS);
    if (!c->request_timeout_ms)
        c->request_timeout_ms =
            (uint32_t)wisp_cmdline_u64("http_request_timeout_ms", DEFAULT_REQUEST_TIMEOUT_MS);

    struct tcp_pcb *pcb = tcp_new_ip_type(IPADDR_TYPE_ANY);
    if (!pcb) goto fail;
    if (tcp_bind(pcb, IP_ANY_TYPE, cfg->port) != ERR_OK) {
        tcp_close(pcb);
        goto fail;
    }
    srv->listener = tcp_listen_with_backlog(pcb, TCP_DEFAULT_LISTEN_BACKLOG);
    if (!srv->listener) {
        tcp_close(pcb);
        goto fail;
    }
    tcp_arg(srv->listener, srv);
    tcp_accept(srv->listener, on_accept);
    return 0;
fail:
    free(srv);
    return -1;
}

struct wisp_http_stats wisp_http_stats(void) { return g_stats; }
