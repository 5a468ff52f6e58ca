// wispd: the wisp orchestrator daemon.
//
// Init order (kept here, in one place, on purpose; every step fails with a message
// naming what is missing):
//   1. options: defaults < --config file < command line
//   2. logging
//   3. preflight: root, /dev/kvm, /dev/net/tun, BTF, bpffs, uplink, directories
//   3b. RLIMIT_NOFILE raised to its hard limit (snapshot files of every service,
//      a control socket, pidfd and tap per monitor)
//   4. signals blocked + the epoll loop + the pools' background worker (before any
//      other thread exists)
//   5. state directory lock, then the SQLite store (migrated)
//   6. data plane: load, or re-open the pins under --bpffs-root, and attach XDP to
//      the uplink without interrupting forwarding (userspace/dataplane/)
//   7. taps (a pool, TC attached ahead of time) and frame replay (AF_PACKET)
//   8. monitor pool: pre-forked `wisp-vmm serve` processes
//   9. recover: re-adopt live monitors, reconcile store and maps; then fill the pools
//  10. API socket (httplib's threads start here)
//  11. READY=1 to systemd, watchdog pings
//  12. the loop, until SIGTERM/SIGINT
//  13. shutdown: API closed, idle monitors stopped; busy monitors and the pinned
//      data plane stay (KillMode=process) for the next wispd to re-adopt
#include <cstdio>
#include <filesystem>

#include "wisp/log.h"
#include "wispd/daemon.h"
#include "wispd/dataplane_adapter.h"
#include "wispd/monitor_pool.h"
#include "wispd/preflight.h"
#include "wispd/taps.h"

namespace {

int fail(const char *step, const wisp::Error &e) {
    spdlog::critical("{}: {}", step, e.describe());
    return 1;
}

// An empty directory at `path` (leftovers of an earlier run removed).
wisp::Status reset_directory(const std::string &path) {
    std::error_code ec;
    std::filesystem::remove_all(path, ec);
    std::filesystem::create_directories(path, ec);
    if (ec) return wisp::Error{ec.value(), "create " + path};
    return {};
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

    // 3b. file descriptors
    if (auto limit = raise_fd_limit(); !limit)
        spdlog::warn("{}; staying at the current limit", limit.error().describe());
    else
        spdlog::info("file descriptors: up to {}", *limit);

    Daemon daemon(options);
    // 4. signals + loop + worker
    if (auto st = daemon.create_loop(); !st) return fail("event loop", st.error());
    // 5. state
    if (auto st = daemon.lock_state_dir(); !st) return fail("state directory", st.error());
    if (auto st = daemon.open_store(); !st) return fail("state store", st.error());
    // 6. data plane
    auto dataplane = BpfDataPlane::open({options.bpffs_root, options.uplink, options.max_services});
    if (!dataplane) return fail("data plane", dataplane.error());
    BpfDataPlane *dp = dataplane->get();
    std::string dp_description = dp->description();
    if (auto st = daemon.attach_dataplane(std::move(dataplane).value(), dp_description); !st)
        return fail("data plane", st.error());
    // 7. taps and frame replay
    auto injector = PacketSocketInjector::open();
    if (!injector) return fail("frame replay", injector.error());
    auto taps = std::make_unique<PreparedTapPool>(
        options.monitor_pool_size,
        [dp](const Tap &tap) { return dp->attach_tap_program(tap.ifindex); }, daemon.loop(),
        daemon.worker());
    PreparedTapPool *tap_pool = taps.get();
    daemon.attach_network(std::move(taps), std::move(injector).value());
    // 8. monitor pool
    VmmMonitorPool::Config pool_config;
    pool_config.binary = monitor_binary_path(options);
    pool_config.sockets_dir = options.runtime_dir + "/monitors";
    pool_config.size = options.monitor_pool_size;
    pool_config.log_level = options.log_level;
    pool_config.spare_logs_dir = options.state_dir + "/logs/.spare";
    if (auto st = reset_directory(pool_config.spare_logs_dir); !st)
        return fail("console logs", st.error());
    auto pool = std::make_unique<VmmMonitorPool>(pool_config, daemon.loop(), daemon.worker(),
                                                 daemon.monitor_events());
    VmmMonitorPool *monitors = pool.get();
    daemon.attach_monitor_pool(std::move(pool), "pre-forked " + pool_config.binary);
    // 9. recover, then fill the pools in the background
    if (auto st = daemon.recover(); !st) return fail("recovery", st.error());
    monitors->fill();
    tap_pool->fill();
    // 10. API
    if (auto st = daemon.start_api(); !st) return fail("API", st.error());
    // 11. systemd
    daemon.notify_ready();
    // 12. loop
    auto st = daemon.run();
    // 13. shutdown
    daemon.shutdown();
    monitors->stop_idle();
    if (!st) return fail("event loop", st.error());
    return 0;
}
