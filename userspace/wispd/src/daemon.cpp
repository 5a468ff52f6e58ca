#include "wispd/daemon.h"

#include <fcntl.h>
#include <spdlog/spdlog.h>
#include <sys/epoll.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "wisp/version.h"
#include "wispd/preflight.h"
#include "wispd/taps.h"

namespace wisp::wispd {

using nlohmann::json;

Daemon::Daemon(Options options)
    : options_(std::move(options)), layout_{options_.state_dir, options_.runtime_dir} {}

Daemon::~Daemon() {
    // Reverse dependency order: nothing may call into a destroyed part.
    if (api_server_) api_server_->stop();
    api_server_.reset();
    api_.reset();
    relay_.target = nullptr;
    controller_.reset();
    // The worker's jobs use the pools: join it before they go.
    worker_.reset();
    monitors_.reset();
    taps_.reset();
}

void Daemon::Relay::on_monitor_event(const MonitorEvent &event) {
    if (target) target->on_monitor_event(event);
    else spdlog::warn("monitor event for replica {} before start-up finished; dropped",
                      event.replica);
}

Status Daemon::create_loop() {
    auto loop = EventLoop::create({SIGTERM, SIGINT, SIGHUP});
    if (!loop) return std::move(loop).error();
    loop_ = std::move(loop).value();
    loop_->on_signal([this](const signalfd_siginfo &info) { on_signal(info); });
    started_ms_ = loop_->wall_ms();
    // A client that hangs up mid-response must not kill the daemon.
    signal(SIGPIPE, SIG_IGN);
    worker_ = std::make_unique<BackgroundWorker>();
    return {};
}

Status Daemon::lock_state_dir() {
    WISP_RETURN_IF_ERROR(check_directory(options_.state_dir, "state directory"));
    WISP_RETURN_IF_ERROR(check_directory(options_.runtime_dir, "runtime directory"));
    // Snapshots hold guest memory: root only.
    if (chmod(options_.state_dir.c_str(), 0700) != 0)
        return errno_error("chmod 0700 " + options_.state_dir);
    WISP_RETURN_IF_ERROR(check_directory(layout_.monitors_dir(), "monitor socket directory"));
    chmod(layout_.monitors_dir().c_str(), 0700);

    std::string path = layout_.lock_file();
    lock_fd_.reset(open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600));
    if (!lock_fd_) return errno_error("open " + path);
    if (flock(lock_fd_.get(), LOCK_EX | LOCK_NB) != 0) {
        int err = errno;
        char pid[32] = {};
        (void)!pread(lock_fd_.get(), pid, sizeof pid - 1, 0);
        return Error{err == EWOULDBLOCK ? EBUSY : err,
                     "another wispd (pid " + std::string(pid) + ") uses the state directory " +
                         options_.state_dir};
    }
    std::string me = std::to_string(getpid());
    if (ftruncate(lock_fd_.get(), 0) != 0 ||
        pwrite(lock_fd_.get(), me.data(), me.size(), 0) != static_cast<ssize_t>(me.size()))
        return errno_error("writing " + path);
    return {};
}

Status Daemon::open_store() {
    auto store = Store::open(layout_.database());
    if (!store) return std::move(store).error();
    store_ = std::move(store).value();
    return {};
}

Status Daemon::attach_dataplane(std::unique_ptr<DataPlane> dataplane, std::string description) {
    dataplane_ = std::move(dataplane);
    dataplane_description_ = std::move(description);
    int fd = dataplane_->event_fd();
    if (fd < 0) return {};
    return loop_->watch(fd, EPOLLIN, [this](uint32_t) {
        auto st = dataplane_->drain_events([this](const DpEvent &ev) {
            if (controller_) controller_->on_dataplane_event(ev);
        });
        if (!st) spdlog::error("data plane events: {}", st.error().describe());
    });
}

void Daemon::attach_network(std::unique_ptr<TapFactory> taps,
                            std::unique_ptr<FrameInjector> injector) {
    taps_ = std::move(taps);
    injector_ = std::move(injector);
}

void Daemon::attach_monitor_pool(std::unique_ptr<MonitorPool> pool, std::string description) {
    monitors_ = std::move(pool);
    monitors_description_ = std::move(description);
}

Status Daemon::recover() {
    ControllerConfig config;
    config.layout = layout_;
    controller_ = std::make_unique<Controller>(
        *store_, Ports{*dataplane_, *monitors_, *taps_, *injector_, *loop_}, metrics_, config);
    relay_.target = controller_.get();

    metrics_.gauges("wisp_build_info", "Version of the running wispd")
        .with({{"version", WISP_VERSION}, {"revision", WISP_GIT_REVISION}})
        .set(1);
    metrics_.on_collect([this](MetricsRegistry &m) {
        auto &services = m.gauges("wisp_services", "Services by lifecycle state");
        auto &replicas = m.gauges("wisp_replicas", "Replicas by state");
        services.clear();
        replicas.clear();
        for (auto state : {ServiceState::kCreating, ServiceState::kBooting,
                           ServiceState::kSnapshotting, ServiceState::kStandby,
                           ServiceState::kWaking, ServiceState::kRunning, ServiceState::kDraining,
                           ServiceState::kFailed})
            services.with({{"state", to_string(state)}}).set(0);
        for (auto state : {ReplicaState::kBooting, ReplicaState::kRestoring, ReplicaState::kReady,
                           ReplicaState::kDraining, ReplicaState::kSnapshotting,
                           ReplicaState::kStopping})
            replicas.with({{"state", to_string(state)}}).set(0);
        // Per service: only services with replicas get series (all six states), so
        // thousands of services at zero add none. Memory: each instance's monitor
        // PSS (guest memory included) from /proc/PID/smaps_rollup, read here only.
        auto &per_service = m.gauges("wisp_service_replicas",
                                     "Replicas of each service with any, by state");
        auto &instances = m.gauges("wisp_instances",
                                   "Instances running (a monitor with a guest) and services on "
                                   "standby (at zero: a snapshot, no process)");
        auto &pss = m.gauges("wisp_instance_memory_pss_bytes",
                             "Proportional set size of each instance's monitor process "
                             "(shared snapshot pages split between their users)");
        auto &pss_total = m.gauge("wisp_instances_memory_pss_bytes",
                                  "Sum of wisp_instance_memory_pss_bytes over all instances");
        per_service.clear();
        pss.clear();
        double running = 0, standby = 0, pss_sum = 0;
        for (auto &v : controller_->services()) {
            auto &g = services.with({{"state", to_string(v.record.state)}});
            g.set(g.value() + 1);
            if (v.record.state == ServiceState::kStandby) ++standby;
            if (!v.replicas.empty())
                for (auto state : {ReplicaState::kBooting, ReplicaState::kRestoring,
                                   ReplicaState::kReady, ReplicaState::kDraining,
                                   ReplicaState::kSnapshotting, ReplicaState::kStopping})
                    per_service.with({{"service", v.record.spec.name}, {"state", to_string(state)}})
                        .set(0);
            for (auto &r : v.replicas) {
                auto &rg = replicas.with({{"state", to_string(r.state)}});
                rg.set(rg.value() + 1);
                auto &sg = per_service.with({{"service", v.record.spec.name}, {"state", to_string(r.state)}});
                sg.set(sg.value() + 1);
                ++running;
                if (auto bytes = process_pss_bytes(r.monitor_pid)) {
                    pss.with({{"service", v.record.spec.name}, {"replica", std::to_string(r.id)}})
                        .set(static_cast<double>(*bytes));
                    pss_sum += static_cast<double>(*bytes);
                }
            }
        }
        instances.with({{"state", "running"}}).set(running);
        instances.with({{"state", "standby"}}).set(standby);
        pss_total.set(pss_sum);
        m.gauge("wisp_monitors_idle", "Pre-forked monitors waiting for work")
            .set(static_cast<double>(monitors_->idle_monitors()));
        auto &dp = m.counters("wisp_dataplane_packets_total",
                              "Data-plane packet counters, by counter (see docs/dataplane.md)");
        for (auto &c : dataplane_->counters()) dp.with({{"counter", c.name}}).set(c.value);
        m.gauge("wisp_uptime_seconds", "Seconds since wispd started")
            .set(static_cast<double>(loop_->wall_ms() - started_ms_) / 1000.0);
    });
    return controller_->recover();
}

json Daemon::status_json() {
    return {{"version", WISP_VERSION},
            {"revision", WISP_GIT_REVISION},
            {"pid", getpid()},
            {"started_at", format_time_ms(started_ms_)},
            {"uptime_s", static_cast<double>(loop_->wall_ms() - started_ms_) / 1000.0},
            {"uplink", options_.uplink},
            {"state_dir", options_.state_dir},
            {"runtime_dir", options_.runtime_dir},
            {"bpffs_root", options_.bpffs_root},
            {"api_socket", options_.api_socket_path()},
            {"dataplane", dataplane_description_},
            {"monitor_pool",
             {{"implementation", monitors_description_},
              {"size", options_.monitor_pool_size},
              {"binary", monitor_binary_path(options_)},
              {"idle", monitors_->idle_monitors()}}}};
}

Status Daemon::start_api() {
    ApiEnvironment env;
    std::string uplink = options_.uplink;
    env.default_vip = [uplink] { return primary_ipv4_address(uplink); };
    env.status = [this] { return status_json(); };
    api_ = std::make_unique<Api>(*controller_, *store_, metrics_, std::move(env));
    ApiServer::Config config;
    config.socket_path = options_.api_socket_path();
    auto server = ApiServer::start(config, *loop_,
                                   [this](const ApiRequest &r) { return api_->handle(r); });
    if (!server) return std::move(server).error();
    api_server_ = std::move(server).value();
    return {};
}

void Daemon::notify_ready() {
    std::string status = "serving the API on " + options_.api_socket_path();
    notifier_.ready(status);
    spdlog::info("ready: {}", status);
    if (notifier_.watchdog_ping_interval_us() > 0) {
        spdlog::info("systemd watchdog: pinging every {} ms",
                     notifier_.watchdog_ping_interval_us() / 1000);
        ping_watchdog();
    }
}

void Daemon::ping_watchdog() {
    // From the loop's own timer: a wedged loop stops the pings and systemd restarts
    // wispd.
    notifier_.watchdog();
    loop_->schedule_at(loop_->now_ns() + notifier_.watchdog_ping_interval_us() * 1000,
                       [this] { ping_watchdog(); });
}

void Daemon::on_signal(const signalfd_siginfo &info) {
    switch (info.ssi_signo) {
        case SIGTERM:
        case SIGINT:
            spdlog::info("signal {}: shutting down (monitors and the data plane keep running)",
                         info.ssi_signo);
            notifier_.stopping();
            loop_->stop();
            break;
        case SIGHUP: reload(); break;
        default: break;
    }
}

void Daemon::reload() {
    if (options_.config_file.empty()) {
        spdlog::info("SIGHUP: no config file to reload");
        return;
    }
    notifier_.reloading();
    auto reloaded = apply_config_file(options_.config_file, Options{});
    if (!reloaded) {
        spdlog::error("SIGHUP: {}; keeping the current settings", reloaded.error().message);
    } else {
        // Only the log level applies live; the rest needs a restart.
        options_.log_level = reloaded->log_level;
        spdlog::set_level(spdlog::level::from_str(options_.log_level));
        spdlog::info("SIGHUP: log level now {}", options_.log_level);
    }
    notifier_.ready("serving the API on " + options_.api_socket_path());
}

Status Daemon::run() { return loop_->run(); }

void Daemon::shutdown() {
    if (api_server_) api_server_->stop();
    spdlog::info("stopped");
}

}  // namespace wisp::wispd
