// The lifecycle controller: turns API requests, data-plane wake events, monitor
// events and timers into calls on the ports (ports.h), and keeps the store in step.
//
//   create  -> CREATING -> boot image (BOOTING) -> guest `ready` -> golden snapshot
//              (SNAPSHOTTING) -> STANDBY (data plane: ZERO)
//   WAKE    -> WAKING: one restore in flight per service, later SYNs buffered
//           -> monitor says running -> replica READY in the maps -> replay the
//              buffered SYNs into its tap -> RUNNING
//   load    -> the fast loop (every autoscale_period_ns, only while some service
//              autoscales) reads all their replicas' counters in one batched map
//              read and asks the Autoscaler; scale-out starts restores in parallel,
//              scale-in drains the replicas it names
//   idle    -> replica out of the selection; the last one takes the service to
//              DRAINING (ZERO in the maps) -> stop, or stateful snapshot then stop
//              -> STANDBY
//   drain   -> a drained replica stays in the maps as DRAINING (its flows keep
//              going to it, no new ones) until no packet has passed for the
//              service's idle timeout (or max_drain_ms), then stops
//   failure -> FAILED with the reason; exponential backoff; crash loops flagged
//
// Single-threaded: every method runs on the loop thread. No kernel calls: those
// are behind the ports, so tests drive it with fakes and a manual clock.
#pragma once

#include <map>
#include <optional>
#include <set>
#include <string>
#include <unordered_map>
#include <vector>

#include "wisp/result.h"
#include "wispd/autoscaler.h"
#include "wispd/layout.h"
#include "wispd/lifecycle.h"
#include "wispd/metrics.h"
#include "wispd/ports.h"
#include "wispd/store.h"

namespace wisp::wispd {

struct ControllerConfig {
    Layout layout;
    // Replica ids 1 .. max_replica_id (the data plane's replica map has one more slot).
    uint32_t max_replica_id = 4095;
    uint64_t golden_boot_timeout_ms = 60'000;  // boot -> guest `ready`
    uint64_t restore_timeout_ms = 10'000;      // restore -> running
    uint64_t snapshot_timeout_ms = 60'000;
    uint64_t stop_timeout_ms = 10'000;         // backstop; the pool kills stuck monitors
    // A replica that dies within this long after READY counts towards a crash loop;
    // one that stays up this long clears the failure count.
    uint64_t healthy_after_ms = 10'000;
    Backoff::Policy backoff;
    size_t console_logs_kept = 20;  // per service
    // After a wake, the store rows and journal lines are written this much later,
    // not while the guest runs into its first pages on a small host's cores.
    uint64_t bookkeeping_delay_ms = 5;
    // The autoscaler's fast loop (docs/autoscale.md). It runs only while at least
    // one service autoscales.
    uint64_t autoscale_period_ns = 5'000'000;
    AutoscalePolicy autoscale;
    // A drained replica that still carries traffic this long after it left the
    // selection is stopped anyway (its remaining connections are cut).
    uint64_t max_drain_ms = 300'000;
    // A drained replica stops once no packet has passed in either direction for
    // this long (or the service's idle timeout, if shorter): its connections are
    // done, or idle long enough to be treated like an idle keep-alive connection.
    uint64_t drain_idle_ms = 1'000;
    // After a scale-out restore could not start (no monitor, no tap), scale-out
    // waits this long before the next attempt.
    uint64_t scale_out_retry_ms = 100;
};

struct Ports {
    DataPlane &dataplane;
    MonitorPool &monitors;
    TapFactory &taps;
    FrameInjector &injector;
    Scheduler &scheduler;
};

// Where the time of one wake went: CLOCK_MONOTONIC ns stamps of the data plane,
// wispd and the monitor (all the same clock); 0 = not reached (yet).
struct WakeTrace {
    uint64_t syn_ns = 0;              // the data plane captured the first SYN
    uint64_t consumed_ns = 0;         // wispd took it from the ring buffer
    uint64_t restore_sent_ns = 0;     // the restore command went to a pre-forked monitor
    uint64_t monitor_command_ns = 0;  // the monitor read the command
    uint64_t guest_entry_ns = 0;      // the monitor entered the restored guest
    uint64_t ready_ns = 0;            // replica and service READY in the maps
    uint64_t replayed_ns = 0;         // the buffered SYNs are in the tap
    uint64_t first_hypercall_ns = 0;  // the guest's first hypercall after the restore
    uint32_t frames = 0;              // SYNs replayed
    ReplicaId replica = 0;
};

// What the API shows about one service.
struct ServiceView {
    ServiceRecord record;
    std::vector<ReplicaRecord> replicas;
    std::vector<SnapshotRecord> snapshots;
    size_t buffered_frames = 0;
    uint64_t dropped_frames = 0;
    bool restore_in_flight = false;
    uint64_t wakes = 0;
    double last_wake_latency_ms = -1;  // -1: no wake yet
    WakeTrace last_wake;
    // The autoscaler's view: whether the fast loop watches the service now, and its
    // last decision that changed the count (reason kHold and at_ms 0 before any).
    bool autoscaled = false;
    struct Decision {
        ScaleReason reason = ScaleReason::kHold;
        uint32_t from = 0, to = 0;
        double stable_load = 0;  // flows/s over the stable window when it was taken
        int64_t at_ms = 0;
    } last_decision;
    uint64_t scale_decisions = 0;
};

class Controller final : public MonitorEventSink {
public:
    Controller(Store &store, Ports ports, MetricsRegistry &metrics, ControllerConfig config);
    ~Controller() override;
    Controller(const Controller &) = delete;
    Controller &operator=(const Controller &) = delete;

    // Start-up reconciliation: loads the store, re-adopts live monitors through the
    // pool, forgets dead replicas, brings the data plane in line with the store and
    // resumes what was interrupted (a service without a golden snapshot boots again).
    Status recover();

    // API operations. Errors carry "field: reason" for validation-type failures
    // (EEXIST for a duplicate, ENOENT for an unknown service).
    Result<ServiceRecord> create_service(const ServiceSpec &spec);
    Status delete_service(const std::string &name);
    Result<ServiceRecord> update_settings(const std::string &name, const ServiceSettings &s);

    std::vector<ServiceView> services() const;
    std::optional<ServiceView> service(const std::string &name) const;
    // Replicas of every service, or of one (ENOENT if it does not exist).
    Result<std::vector<ReplicaRecord>> replicas(std::optional<std::string> service) const;
    const Layout &layout() const { return config_.layout; }

    // Inputs.
    void on_dataplane_event(const DpEvent &event);
    void on_monitor_event(const MonitorEvent &event) override;

    // Services the fast loop watches (target > 0 or min > 1, max > 1, stateless,
    // with a replica ready or restoring). For tests and metrics.
    const std::set<ServiceId> &autoscaled_services() const { return autoscaled_; }

private:
    struct ReplicaRuntime {
        ReplicaRecord record;
        Scheduler::TimerId op_timer = 0;    // boot/restore/snapshot/stop deadline, or health
        Scheduler::TimerId idle_timer = 0;
        uint64_t launched_ns = 0;
        uint64_t ready_ns = 0;
        uint64_t drain_started_ns = 0;  // DRAINING since (0: not draining)
        MacAddress tap_mac;        // zero for replicas adopted after a restart
        bool stored = false;       // its row exists (a restore writes it after the replay)
        std::string restored_from;  // snapshot directory, for the journal
    };
    struct ServiceRuntime {
        ServiceRecord record;
        std::vector<SnapshotRecord> snapshots;
        std::map<ReplicaId, ReplicaRuntime> replicas;
        WakeBuffer wake;
        Backoff backoff;
        Scheduler::TimerId retry_timer = 0;
        bool in_dataplane = false;
        bool wake_pending = false;  // a wake arrived while draining or failed
        uint64_t wakes = 0;
        double last_wake_latency_ms = -1;
        WakeTrace wake_trace;  // the wake in flight
        WakeTrace last_wake;
        uint64_t scale_out_hold_until_ns = 0;  // a scale-out restore failed: wait
        ServiceView::Decision last_decision;
        uint64_t scale_decisions = 0;
    };

    ServiceRuntime *find(ServiceId id);
    ServiceRuntime *find(const std::string &name);
    const ServiceRuntime *find(const std::string &name) const;
    ReplicaRuntime *find_replica(ReplicaId id, ServiceRuntime **owner);
    ServiceView view_of(const ServiceRuntime &s) const;

    // Changes the state in memory (checked against the transition table); returns
    // whether it changed. set_state() also persists it.
    bool transition(ServiceRuntime &s, ServiceState to);
    void set_state(ServiceRuntime &s, ServiceState to);
    void sync_dataplane(ServiceRuntime &s);
    void publish_replicas(ServiceRuntime &s);
    void journal(const ServiceRuntime &s, std::optional<ReplicaId> replica, const char *kind,
                 const std::string &message);

    // Steps of the lifecycle.
    void start_golden_boot(ServiceRuntime &s);
    // A wake (or a minimum): one restore in flight per service.
    void start_restore(ServiceRuntime &s);
    // One more replica restored from the golden snapshot on its own tap; scale-out
    // calls it once per missing replica, so they restore in parallel. False when it
    // could not start (`scale_out`: the service keeps serving, no failure state).
    bool launch_restore(ServiceRuntime &s, bool scale_out);
    Result<ReplicaRuntime *> new_replica(ServiceRuntime &s, ReplicaState state, Tap &tap,
                                         std::optional<SnapshotId> snapshot);
    // Hands the replica to a monitor and records the monitor's identity.
    Status launch_replica(ServiceRuntime &s, ReplicaRuntime &rt, LaunchRequest::Mode mode,
                          std::vector<std::string> snapshots, Tap tap);
    void replica_ready(ServiceRuntime &s, ReplicaRuntime &r, const MonitorEvent &event);
    // Takes the ring buffer's pending records: this service's frames join its wake
    // buffer, the others are returned for later.
    std::vector<DpEvent> collect_pending_syns(ServiceRuntime &s);
    void replay(ServiceRuntime &s, ReplicaRuntime &r, std::vector<std::vector<uint8_t>> packets);
    ReplayTarget replay_target(const ReplicaRuntime &r) const;
    // Since when the replica has seen no packet (its last one, or READY).
    uint64_t quiet_since(const ReplicaRuntime &r);
    void check_idle(ServiceId sid, ReplicaId rid);
    void drain_replica(ServiceRuntime &s, ReplicaRuntime &r);
    // Stops a DRAINING replica once its flows are idle (or max_drain_ms is over);
    // else looks again when they could be.
    void check_drained(ServiceId sid, ReplicaId rid);

    // The autoscaler's fast loop.
    bool autoscales(const ServiceRuntime &s) const;
    // Adds the service to (or drops it from) the fast loop's set, arming the loop.
    void refresh_autoscaling(ServiceRuntime &s);
    void arm_autoscale_tick();
    void autoscale_tick();
    // Reads the counters of the services' replicas (one batched read) and applies
    // one decision per service.
    void evaluate(std::span<ServiceRuntime *const> services, uint64_t now_ns);
    void apply_decision(ServiceRuntime &s, const ScaleDecision &d, uint64_t now_ns);
    void stop_replica(ServiceRuntime &s, ReplicaRuntime &r);
    void forget_replica(ServiceRuntime &s, ReplicaId rid);
    void replica_gone(ServiceRuntime &s, ReplicaId rid, const MonitorEvent &event);
    void golden_written(ServiceRuntime &s, ReplicaRuntime &r, const MonitorEvent &event);
    void stateful_written(ServiceRuntime &s, ReplicaRuntime &r, const MonitorEvent &event);
    void after_replica_change(ServiceRuntime &s);
    void fail(ServiceRuntime &s, const std::string &stage, const std::string &reason);
    void retry(ServiceId sid);
    void arm_op_timer(ServiceRuntime &s, ReplicaRuntime &r, uint64_t ms, const char *what);
    void cancel_timers(ReplicaRuntime &r);
    void persist_replica(ReplicaRuntime &r);
    void persist_state(ServiceRuntime &s);
    void prune_console_logs(const ServiceRuntime &s);

    std::optional<SnapshotRecord> golden(const ServiceRuntime &s) const;
    std::vector<std::string> restore_chain(const ServiceRuntime &s,
                                           std::optional<SnapshotId> *from) const;
    size_t ready_replicas(const ServiceRuntime &s) const;
    bool restore_in_flight(const ServiceRuntime &s) const;

    Store &store_;
    Ports ports_;
    MetricsRegistry &metrics_;
    ControllerConfig config_;
    std::map<ServiceId, ServiceRuntime> services_;
    std::unordered_map<ReplicaId, ServiceId> replica_owner_;
    IdAllocator replica_ids_;

    Autoscaler autoscaler_;
    std::set<ServiceId> autoscaled_;
    Scheduler::TimerId autoscale_timer_ = 0;
    uint64_t next_tick_ns_ = 0;
    // Fast-loop scratch, reused between ticks (the steady state allocates nothing).
    std::vector<ServiceRuntime *> tick_services_;
    std::vector<ReplicaId> tick_ids_;
    std::vector<DpReplicaLoad> tick_loads_;
    std::vector<ReplicaLoad> tick_replicas_;
    uint64_t load_read_errors_ = 0;

    // Metrics owned by the controller (stable references into the registry).
    CounterFamily &wakes_;
    Histogram &wake_latency_;
    Histogram &restore_latency_;
    CounterFamily &failures_;
    Counter &frames_buffered_;
    Counter &frames_dropped_;
    Counter &frames_replayed_;
    Counter &idle_stops_;
    CounterFamily &scale_decisions_;
    Counter &autoscale_ticks_;
    Counter &events_ignored_;
};

}  // namespace wisp::wispd
