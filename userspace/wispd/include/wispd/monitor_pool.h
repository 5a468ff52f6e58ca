// wispd's MonitorPool port over real wisp-vmm processes.
//
// The pool keeps `size` monitors pre-forked: each one is `wisp-vmm serve`, started
// in its own session (so a signal to wispd's process group or a kill -9 of wispd
// never reaches it), connected by a SOCK_SEQPACKET socketpair and listening on a
// root-only control socket under <runtime_dir>/monitors/ (how a restarted wispd
// re-adopts it). By the time it says hello it has its VM and vCPU and is
// sandboxed, so a wake only sends one restore command with the tap and the
// snapshot's files (kept open, their pages in the page cache) as SCM_RIGHTS.
//
// Forking and exec'ing happen on the background worker after each launch; only
// an empty pool (a burst) makes a launch spawn on the spot.
//
// Exits are watched through pidfds: whatever ends a monitor (stop, crash of the
// guest, kill -9), its replica hears kExited at once. Every event reaches the
// sink on the loop thread.
#pragma once

#include <sys/types.h>

#include <array>
#include <atomic>
#include <deque>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>

#include "wisp/snapshot/store.h"
#include "wisp/vmm/control.h"
#include "wispd/background.h"
#include "wispd/event_loop.h"
#include "wispd/ports.h"

namespace wisp::wispd {

class VmmMonitorPool final : public MonitorPool {
public:
    struct Config {
        std::string binary;       // wisp-vmm
        std::string sockets_dir;  // <runtime_dir>/monitors
        size_t size = 4;          // idle monitors kept ready
        // Guest memory each pre-forked monitor registers with KVM ahead of time
        // (`serve --mem`): restores of that size skip KVM's slot set-up (~0.7 ms
        // per GiB); other sizes still work and pay it.
        uint32_t prepared_mem_mib = 64;
        std::string log_level = "info";
        uint64_t console_limit = 0;            // bytes per console log (0: monitor default)
        uint64_t kill_after_ms = 5000;         // stop -> SIGKILL if still alive
        std::string gateway_ipv4 = "169.254.0.1";  // the guest's next hop (the tap)
        // Console logs are created ahead of time here and renamed to the replica's
        // log by the worker after the launch: creating a file costs ~0.1 ms on ext4.
        std::string spare_logs_dir;
        // Refills start this long after a launch, so they do not compete with the
        // wake they follow for the two cores of a small host.
        uint64_t refill_delay_ms = 20;
    };

    VmmMonitorPool(Config config, EventLoop &loop, BackgroundWorker &worker,
                   MonitorEventSink &sink);
    // Monitors keep running (they outlive wispd); only our handles close.
    ~VmmMonitorPool() override;

    Result<MonitorHandle> launch(LaunchRequest request) override;
    Status snapshot(ReplicaId replica, const SnapshotRequest &request) override;
    Status stop(ReplicaId replica) override;
    // Re-attaches the monitors of `known` replicas through their control sockets.
    // Other sockets in the directory: idle monitors of an earlier wispd join the
    // pool, busy ones that no replica claims are stopped, dead ones' files removed.
    std::vector<ReplicaId> adopt(const std::vector<ReplicaRecord> &known) override;
    size_t idle_monitors() const override { return idle_.size(); }
    void keep_snapshot(const std::string &dir) override;
    void release_snapshot(const std::string &dir) override;

    // Starts filling the pool up to its size (monitors and spare console logs).
    void fill();
    // Stops the idle monitors (a clean shutdown: nobody could use them).
    void stop_idle();
    size_t starting() const { return starting_; }

private:
    enum class Phase : uint8_t { kStarting, kIdle, kBooting, kRestoring, kRunning, kStopping };
    struct Monitor {
        uint64_t key = 0;
        pid_t pid = 0;
        bool child = false;  // ours to reap
        UniqueFd pidfd;
        vmm::control::ControlClient control{UniqueFd()};
        std::string socket;
        Phase phase = Phase::kStarting;
        ReplicaId replica = 0;
        std::optional<snapshot::PendingSnapshot> pending;
        SnapshotKind pending_kind = SnapshotKind::kGolden;
        std::string pending_dir;
        std::string exit_detail;  // from the exited event
        Scheduler::TimerId kill_timer = 0;
    };
    struct Spawned {
        pid_t pid = 0;
        UniqueFd pidfd;
        UniqueFd control;
        std::string socket;
    };
    struct SpareLog {
        UniqueFd fd;
        std::string path;
    };

    // Thread-safe: forks and execs one `wisp-vmm serve`.
    Result<Spawned> spawn() const;
    Monitor &add(Spawned spawned, Phase phase, bool child);
    void on_control(uint64_t key);
    void on_exit(uint64_t key);
    void handle_event(Monitor &m, const vmm::control::Message &msg);
    void report(Monitor &m, MonitorEvent event);
    // Unassigns the monitor from its replica after a refused command, and stops it.
    void refused(Monitor &m, const std::string &what);
    void kill_now(Monitor &m);
    void forget(uint64_t key);
    Monitor *by_replica(ReplicaId replica);
    Result<const snapshot::SnapshotFiles *> files(const std::string &dir);
    std::string next_socket_path() const;
    // The console log for a launch: a spare one (see name_console_log) or a new file.
    Result<SpareLog> console_log(const std::string &path);
    // Gives a spare log its replica's name (on the worker, with the next refill).
    void name_console_log(const SpareLog &log, const std::string &path);
    void schedule_refill();

    Config config_;
    EventLoop &loop_;
    BackgroundWorker &worker_;
    MonitorEventSink &sink_;
    std::unordered_map<uint64_t, Monitor> monitors_;
    std::unordered_map<ReplicaId, uint64_t> replicas_;
    std::deque<uint64_t> idle_;
    size_t starting_ = 0;   // being spawned or waiting for their hello
    uint64_t next_key_ = 1;
    mutable std::atomic<uint64_t> next_socket_{0};  // spawn() runs on both threads
    uint64_t retry_after_ns_ = 0;  // spawning failed: no refill before this
    Scheduler::TimerId refill_timer_ = 0;
    // Open snapshot files by directory. Directories whose files are the same inodes
    // (golden snapshots shared by hard links, golden_share.h) share one pair of
    // descriptors, so 10,000 services of one image hold 2 descriptors, not 20,000.
    std::unordered_map<std::string, std::shared_ptr<const snapshot::SnapshotFiles>> files_;
    std::map<std::array<uint64_t, 3>, std::weak_ptr<const snapshot::SnapshotFiles>> files_by_inode_;
    std::deque<SpareLog> spare_logs_;
    std::vector<std::pair<std::string, std::string>> renames_;  // spare log -> its name
    size_t spare_logs_in_flight_ = 0;
    mutable std::atomic<uint64_t> next_spare_{0};
};

}  // namespace wisp::wispd
