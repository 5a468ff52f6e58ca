// wispd as an object: owns the loop, the store, the ports, the controller and the
// API server. main() calls its steps in the documented init order; each step
// returns a Status naming what failed.
#pragma once

#include <memory>
#include <string>
#include <unordered_map>

#include "wisp/result.h"
#include "wisp/unique_fd.h"
#include "wispd/api.h"
#include "wispd/api_server.h"
#include "wispd/background.h"
#include "wispd/controller.h"
#include "wispd/event_loop.h"
#include "wispd/metrics.h"
#include "wispd/notify.h"
#include "wispd/options.h"
#include "wispd/ports.h"
#include "wispd/store.h"

namespace wisp::wispd {

class Daemon {
public:
    explicit Daemon(Options options);
    ~Daemon();
    Daemon(const Daemon &) = delete;
    Daemon &operator=(const Daemon &) = delete;

    // --- init steps, in order -------------------------------------------------------
    // Blocks SIGTERM/SIGINT/SIGHUP and creates the epoll loop (no thread exists yet),
    // then the background worker that refills the pools (its thread inherits the
    // blocked signals).
    Status create_loop();
    // Creates the state and runtime directories and takes an exclusive lock on the
    // state directory: two wispd on one state directory would corrupt it.
    Status lock_state_dir();
    Status open_store();
    // The data plane: its ring-buffer fd joins the loop.
    Status attach_dataplane(std::unique_ptr<DataPlane> dataplane, std::string description);
    void attach_network(std::unique_ptr<TapFactory> taps, std::unique_ptr<FrameInjector> injector);
    // The monitor pool: it reports through monitor_events() and may watch its own
    // fds on loop().
    void attach_monitor_pool(std::unique_ptr<MonitorPool> pool, std::string description);
    // Builds the controller and reconciles store, monitors and maps.
    Status recover();
    Status start_api();
    // READY=1 to systemd, and the watchdog pings from the loop's timer.
    void notify_ready();
    // Runs until SIGTERM/SIGINT.
    Status run();
    // Stops the API; monitors and pinned maps stay (KillMode=process).
    void shutdown();

    EventLoop &loop() { return *loop_; }
    BackgroundWorker &worker() { return *worker_; }
    MonitorEventSink &monitor_events() { return relay_; }
    const Options &options() const { return options_; }

private:
    // Forwards monitor events to the controller once it exists.
    struct Relay final : MonitorEventSink {
        Controller *target = nullptr;
        void on_monitor_event(const MonitorEvent &event) override;
    };

    void on_signal(const signalfd_siginfo &info);
    void reload();
    void ping_watchdog();
    nlohmann::json status_json();

    Options options_;
    Layout layout_;
    std::unique_ptr<EventLoop> loop_;
    std::unique_ptr<BackgroundWorker> worker_;
    UniqueFd lock_fd_;
    std::unique_ptr<Store> store_;
    MetricsRegistry metrics_;
    std::unique_ptr<DataPlane> dataplane_;
    std::string dataplane_description_;
    std::unique_ptr<TapFactory> taps_;
    std::unique_ptr<FrameInjector> injector_;
    std::unique_ptr<MonitorPool> monitors_;
    std::string monitors_description_;
    Relay relay_;
    std::unique_ptr<Controller> controller_;
    std::unique_ptr<Api> api_;
    std::unique_ptr<ApiServer> api_server_;
    SystemdNotifier notifier_;
    int64_t started_ms_ = 0;
    // /metrics: the last PSS reading per monitor pid, and where the next round of
    // fresh readings starts.
    std::unordered_map<pid_t, uint64_t> pss_cache_;
    size_t pss_cursor_ = 0;
};

}  // namespace wisp::wispd
