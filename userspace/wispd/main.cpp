// wispd: the wisp orchestrator daemon.
//
// Init order (kept here, in one place, on purpose; every step fails with a message
// naming what is missing):
//   1. options: defaults < --config file < command line
//   2. logging
//   3. preflight: root, /dev/kvm, /dev/net/tun, BTF, bpffs, uplink, directories
//   4. signals blocked + the epoll loop (before any thread exists)
//   5. state directory lock, then the SQLite store (migrated)
//   6. data plane: load, or re-open the pins under --bpffs-root without
//      interrupting forwarding                       [placeholder: DetachedDataPlane]
//   7. taps and frame replay (AF_PACKET)
//   8. monitor pool: pre-forked wisp-vmm             [placeholder: UnavailableMonitorPool]
//   9. recover: reconcile store, live monitors and maps
//  10. API socket (httplib's threads start here)
//  11. READY=1 to systemd, watchdog pings
//  12. the loop, until SIGTERM/SIGINT
//  13. shutdown: API closed; monitors and pinned maps stay (KillMode=process)
#include <cstdio>

#include "wisp/log.h"
#include "wispd/daemon.h"
#include "wispd/placeholders.h"
#include "wispd/preflight.h"
#include "wispd/taps.h"

namespace {

int fail(const char *step, const wisp::Error &e) {
    spdlog::critical("{}: {}", step, e.describe());
    return 1;
}

}  // namespace

int main(int argc, char **argv) {
    using namespace wisp::wispd;

    // 1. options
    CommandLine cl = parse_command_line(argc, argv);
    if (!cl.run) {
        std::fputs(cl.output.c_str(), cl.exit_code == 0 ? stdout : stderr);
        return cl.exit_code;
    }
    const Options &options = cl.options;

    // 2. logging
    wisp::log::init("wispd", options.log_level);

    // 3. preflight
    if (auto st = run_preflight(options); !st) {
        spdlog::critical("{}", st.error().message);
        return 1;
    }

    Daemon daemon(options);
    // 4. signals + loop
    if (auto st = daemon.create_loop(); !st) return fail("event loop", st.error());
    // 5. state
    if (auto st = daemon.lock_state_dir(); !st) return fail("state directory", st.error());
    if (auto st = daemon.open_store(); !st) return fail("state store", st.error());
    // 6. data plane
    if (auto st = daemon.attach_dataplane(std::make_unique<DetachedDataPlane>(),
                                          "detached (not wired yet)");
        !st)
        return fail("data plane", st.error());
    // 7. taps and frame replay
    auto injector = PacketSocketInjector::open();
    if (!injector) return fail("frame replay", injector.error());
    daemon.attach_network(std::make_unique<TunTapFactory>(), std::move(injector).value());
    // 8. monitor pool
    daemon.attach_monitor_pool(std::make_unique<UnavailableMonitorPool>(),
                               "unavailable (not wired yet)");
    // 9. recover
    if (auto st = daemon.recover(); !st) return fail("recovery", st.error());
    // 10. API
    if (auto st = daemon.start_api(); !st) return fail("API", st.error());
    // 11. systemd
    daemon.notify_ready();
    // 12. loop
    auto st = daemon.run();
    // 13. shutdown
    daemon.shutdown();
    if (!st) return fail("event loop", st.error());
    return 0;
}
