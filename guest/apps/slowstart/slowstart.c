/* slowstart: a service whose initialisation takes real time, to show what a
 * snapshot saves.
 *
 * At boot it fills a table (table_kb, default 4096 KiB) and keeps re-hashing it
 * for init_ms milliseconds (default 1000), then calls ready. The number of
 * hashing rounds depends on how fast this boot ran, so the table's checksum is
 * different on every fresh boot - but identical in every instance restored from
 * the same snapshot. An instance restored from a snapshot therefore reports the
 * snapshot's checksum, init_runs = 1 and restore_count >= 1: the init was not run
 * again, its result came back with the memory.
 *
 *   GET /        -> JSON: checksum, rounds, init_ms, init_runs, restore_count,
 *                   restored (what ready() said), also as X-Wisp-* headers
 *   GET /verify  -> recomputes the checksum from the table (touches all of it)
 *   GET /_wisp/stats
 *
 * Command line: init_ms=<ms> table_kb=<KiB> port=<n>.
 */
#include <stdio.h>
#include <stdlib.h>

#include "wisp/guest.h"
#include "wisp/http.h"
#include "wisp/net.h"
#include "wisp_pattern.h"

static uint64_t *g_table;
static size_t g_entries;
static uint64_t g_rounds;
static uint64_t g_checksum;
static uint64_t g_init_ns;
static uint32_t g_init_runs; /* part of the snapshot: stays 1 in restored instances */
static int g_restored;

static uint64_t table_checksum(void) {
    uint64_t sum = 0;
    for (size_t i = 0; i < g_entries; i++) sum = wisp_splitmix64(sum ^ g_table[i]);
    return sum;
}

static void initialise(uint64_t init_ms, uint64_t table_kb) {
    uint64_t start = wisp_monotonic_ns();
    g_entries = (size_t)(table_kb * 1024 / sizeof(uint64_t));
    if (g_entries == 0) g_entries = 1;
    g_table = malloc(g_entries * sizeof(uint64_t));
    if (!g_table) wisp_abort("slowstart: table does not fit in guest memory (lower table_kb)");
    for (size_t i = 0; i < g_entries; i++) g_table[i] = wisp_splitmix64(i);
    uint64_t deadline = start + init_ms * 1000000u;
    do {
        /* Each round mixes every entry with a distant one: real work the
         * compiler cannot skip, and whose result depends on every round. */
        for (size_t i = 0; i < g_entries; i++)
            g_table[i] = wisp_splitmix64(g_table[i] ^ g_table[(i * 7 + 1) % g_entries] ^ g_rounds);
        g_rounds++;
    } while (wisp_monotonic_ns() < deadline);
    g_checksum = table_checksum();
    g_init_runs++;
    g_init_ns = wisp_monotonic_ns() - start;
}

static void handle(void *ctx, const struct wisp_http_request *req, struct wisp_http_response *res) {
    (void)ctx;
    int root = wisp_http_path_is(req, "/"), verify = wisp_http_path_is(req, "/verify");
    if (!root && !verify) {
        wisp_http_respond_error(res, 404, NULL);
        return;
    }
    if (!wisp_http_allow(req, res, "GET")) return;
    char text[320];
    int n;
    if (verify) {
        uint64_t now = table_checksum();
        n = snprintf(text, sizeof text, "{\"checksum\":\"%016llx\",\"intact\":%s}\n",
                     (unsigned long long)now, now == g_checksum ? "true" : "false");
    } else {
        char value[32];
        snprintf(value, sizeof value, "%u", g_init_runs);
        wisp_http_add_header(res, "X-Wisp-Init-Runs", value);
        snprintf(value, sizeof value, "%u", wisp_restore_count());
        wisp_http_add_header(res, "X-Wisp-Restore-Count", value);
        snprintf(value, sizeof value, "%016llx", (unsigned long long)g_checksum);
        wisp_http_add_header(res, "X-Wisp-Checksum", value);
        n = snprintf(text, sizeof text,
                     "{\"checksum\":\"%016llx\",\"rounds\":%llu,\"init_ms\":%llu,\"table_bytes\":%zu,"
                     "\"init_runs\":%u,\"restore_count\":%u,\"restored\":%s}\n",
                     (unsigned long long)g_checksum, (unsigned long long)g_rounds,
                     (unsigned long long)(g_init_ns / 1000000u), g_entries * sizeof(uint64_t),
                     g_init_runs, wisp_restore_count(), g_restored ? "true" : "false");
    }
    wisp_http_respond(res, 200, "application/json", text, (size_t)n);
}

int main(void) {
    uint64_t init_ms = wisp_cmdline_u64("init_ms", 1000);
    uint64_t table_kb = wisp_cmdline_u64("table_kb", 4096);
    uint64_t port = wisp_cmdline_u64("port", 80);
    if (port == 0 || port > 65535) wisp_abort("slowstart: port must be 1..65535");
    initialise(init_ms, table_kb);
    printf("slowstart: init took %llu ms (%llu rounds over %zu KiB), checksum %016llx\n",
           (unsigned long long)(g_init_ns / 1000000u), (unsigned long long)g_rounds,
           g_entries * sizeof(uint64_t) / 1024, (unsigned long long)g_checksum);
    wisp_net_init();
    struct wisp_http_config cfg = {
        .port = (uint16_t)port,
        .handler = handle,
        .stats_path = "/_wisp/stats",
    };
    if (wisp_http_serve(&cfg) != 0) wisp_abort("slowstart: cannot listen");
    g_restored = wisp_ready();
    if (g_restored) printf("slowstart: restored from a snapshot, init skipped\n");
    wisp_net_run();
}
