/* hello: the smallest useful wisp service.
 *
 *   GET /           -> "hello from wisp\n"
 *   GET /bytes/<n>  -> n bytes of the deterministic pattern (wisp_pattern.h), up
 *                      to 1 GiB, generated while sending (nothing is buffered)
 *   GET /_wisp/stats -> the SDK's counters as JSON
 *
 * Command line: port=<n> (default 80).
 */
#include <stdio.h>
#include <stdlib.h>

#include "wisp/guest.h"
#include "wisp/http.h"
#include "wisp/net.h"
#include "wisp_pattern.h"

#define BYTES_MAX (1ull << 30)

static const char greeting[] = "hello from wisp\n";

static void fill_pattern(void *ctx, uint64_t offset, char *buf, size_t n) {
    (void)ctx;
    wisp_pattern_fill(offset, buf, n);
}

static void handle(void *ctx, const struct wisp_http_request *req, struct wisp_http_response *res) {
    (void)ctx;
    const char *rest;
    size_t rest_len;
    int known = wisp_http_path_is(req, "/") || wisp_http_path_has_prefix(req, "/bytes/", &rest, &rest_len);
    if (!known) {
        wisp_http_respond_error(res, 404, NULL);
        return;
    }
    if (!wisp_http_allow(req, res, "GET")) return;
    if (wisp_http_path_is(req, "/")) {
        wisp_http_respond_static(res, 200, "text/plain", greeting, sizeof greeting - 1);
        return;
    }
    uint64_t n = 0;
    for (size_t i = 0; i < rest_len; i++) {
        if (rest[i] < '0' || rest[i] > '9' || n > BYTES_MAX) {
            n = BYTES_MAX + 1;
            break;
        }
        n = n * 10 + (uint64_t)(rest[i] - '0');
    }
    if (rest_len == 0 || n > BYTES_MAX) {
        wisp_http_respond_error(res, 400, "expected /bytes/<count>, count <= 1073741824");
        return;
    }
    wisp_http_respond_generated(res, 200, "application/octet-stream", n, fill_pattern, NULL);
}

int main(void) {
    uint64_t port = wisp_cmdline_u64("port", 80);
    if (port == 0 || port > 65535) wisp_abort("hello: port must be 1..65535");
    wisp_net_init();
    struct wisp_http_config cfg = {
        .port = (uint16_t)port,
        .handler = handle,
        .stats_path = "/_wisp/stats",
    };
    if (wisp_http_serve(&cfg) != 0) wisp_abort("hello: cannot listen");
    printf("hello: listening on port %u\n", (unsigned)port);
    wisp_ready();
    wisp_net_run();
}
