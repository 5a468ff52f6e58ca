#include "wispd/controller.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <filesystem>

#include "wisp/snapshot/store.h"

namespace wisp::wispd {

namespace fs = std::filesystem;

namespace {

// Wake latency is in the low milliseconds when things go well; the upper buckets
// catch boots that fall back to the slow path.
const std::vector<double> kLatencyBuckets = {0.0005, 0.001, 0.002, 0.003, 0.005, 0.0075,
                                             0.01,   0.02,  0.05,  0.1,   0.25,  0.5,
                                             1,      2.5,   5};

double ns_to_s(uint64_t ns) { return static_cast<double>(ns) / 1e9; }
double ns_to_ms(uint64_t ns) { return static_cast<double>(ns) / 1e6; }

void remove_tree_logged(const std::string &path) {
    std::error_code ec;
    fs::remove_all(path, ec);
    if (ec) spdlog::warn("removing {}: {}", path, ec.message());
}

Status make_dirs(const std::string &path) {
    std::error_code ec;
    fs::create_directories(path, ec);
    if (ec) return Error{ec.value(), "create directory " + path};
    return {};
}

}  // namespace

Controller::Controller(Store &store, Ports ports, MetricsRegistry &metrics,
                       ControllerConfig config)
    : store_(store),
      ports_(ports),
      metrics_(metrics),
      config_(std::move(config)),
      replica_ids_(1, config_.max_replica_id),
      autoscaler_(config_.autoscale),
      wakes_(metrics.counters("wisp_wakes_total",
                              "Services woken from zero whose replica became ready")),
      wake_latency_(metrics
                        .histograms("wisp_wake_latency_seconds",
                                    "From the first buffered SYN to the replica READY in the "
                                    "data plane",
                                    kLatencyBuckets)
                        .with()),
      restore_latency_(metrics
                           .histograms("wisp_restore_latency_seconds",
                                       "From the restore request to the monitor's running event",
                                       kLatencyBuckets)
                           .with()),
      failures_(metrics.counters("wisp_failures_total",
                                 "Failed lifecycle steps, by stage (boot, snapshot, restore, "
                                 "crash)")),
      frames_buffered_(metrics.counter("wisp_frames_buffered_total",
                                       "Frames buffered while their service woke")),
      frames_dropped_(metrics.counter("wisp_frames_dropped_total",
                                      "Frames dropped because a wake buffer was full")),
      frames_replayed_(metrics.counter("wisp_frames_replayed_total",
                                       "Buffered frames replayed into a replica's tap")),
      idle_stops_(metrics.counter("wisp_idle_stops_total",
                                  "Replicas taken down after their idle timeout")),
      scale_decisions_(metrics.counters(
          "wisp_scale_decisions_total",
          "Autoscaler decisions that changed a service's replica count, by service and "
          "reason (scale_out, panic, scale_in, bounds)")),
      autoscale_ticks_(metrics.counter("wisp_autoscale_ticks_total",
                                       "Runs of the autoscaler's fast loop")),
      events_ignored_(metrics.counter(
          "wisp_events_ignored_total",
          "Data-plane or monitor events for unknown services or replicas")) {
    metrics.counter("wisp_internal_errors_total",
                    "Illegal lifecycle transitions attempted (bugs); should stay 0");
}

Controller::~Controller() {
    ports_.scheduler.cancel(autoscale_timer_);
    for (auto &[id, s] : services_) {
        ports_.scheduler.cancel(s.retry_timer);
        for (auto &[rid, r] : s.replicas) cancel_timers(r);
    }
}

// ---- lookups ------------------------------------------------------------------------

Controller::ServiceRuntime *Controller::find(ServiceId id) {
    auto it = services_.find(id);
    return it == services_.end() ? nullptr : &it->second;
}

Controller::ServiceRuntime *Controller::find(const std::string &name) {
    for (auto &[id, s] : services_)
        if (s.record.spec.name == name) return &s;
    return nullptr;
}

const Controller::ServiceRuntime *Controller::find(const std::string &name) const {
    for (auto &[id, s] : services_)
        if (s.record.spec.name == name) return &s;
    return nullptr;
}

Controller::ReplicaRuntime *Controller::find_replica(ReplicaId id, ServiceRuntime **owner) {
    auto it = replica_owner_.find(id);
    if (it == replica_owner_.end()) return nullptr;
    auto *s = find(it->second);
    if (!s) return nullptr;
    auto r = s->replicas.find(id);
    if (r == s->replicas.end()) return nullptr;
    *owner = s;
    return &r->second;
}

std::optional<SnapshotRecord> Controller::golden(const ServiceRuntime &s) const {
    for (auto it = s.snapshots.rbegin(); it != s.snapshots.rend(); ++it)
        if (it->kind == SnapshotKind::kGolden) return *it;
    return std::nullopt;
}

std::vector<std::string> Controller::restore_chain(const ServiceRuntime &s,
                                                   std::optional<SnapshotId> *from) const {
    auto base = golden(s);
    if (s.record.spec.stateful) {
        for (auto it = s.snapshots.rbegin(); it != s.snapshots.rend(); ++it) {
            if (it->kind == SnapshotKind::kStateful) {
                *from = it->id;
                return {it->path};
            }
            if (it->kind == SnapshotKind::kDiff && base) {
                *from = it->id;
                return {base->path, it->path};
            }
        }
    }
    if (!base) return {};
    *from = base->id;
    return {base->path};
}

size_t Controller::ready_replicas(const ServiceRuntime &s) const {
    return static_cast<size_t>(std::count_if(s.replicas.begin(), s.replicas.end(), [](auto &p) {
        return p.second.record.state == ReplicaState::kReady;
    }));
}

bool Controller::restore_in_flight(const ServiceRuntime &s) const {
    return std::any_of(s.replicas.begin(), s.replicas.end(), [](auto &p) {
        return p.second.record.state == ReplicaState::kRestoring;
    });
}

ServiceView Controller::view_of(const ServiceRuntime &s) const {
    ServiceView v;
    v.record = s.record;
    for (auto &[id, r] : s.replicas) v.replicas.push_back(r.record);
    v.snapshots = s.snapshots;
    v.buffered_frames = s.wake.frames();
    v.dropped_frames = s.wake.dropped();
    v.restore_in_flight = restore_in_flight(s);
    v.wakes = s.wakes;
    v.last_wake_latency_ms = s.last_wake_latency_ms;
    v.last_wake = s.last_wake;
    v.autoscaled = autoscaled_.count(s.record.id) > 0;
    v.last_decision = s.last_decision;
    v.scale_decisions = s.scale_decisions;
    return v;
}

std::vector<ServiceView> Controller::services() const {
    std::vector<ServiceView> out;
    for (auto &[id, s] : services_) out.push_back(view_of(s));
    std::sort(out.begin(), out.end(),
              [](auto &a, auto &b) { return a.record.spec.name < b.record.spec.name; });
    return out;
}

std::optional<ServiceView> Controller::service(const std::string &name) const {
    auto *s = find(name);
    if (!s) return std::nullopt;
    return view_of(*s);
}

Result<std::vector<ReplicaRecord>> Controller::replicas(std::optional<std::string> name) const {
    std::vector<ReplicaRecord> out;
    for (auto &[id, s] : services_) {
        if (name && s.record.spec.name != *name) continue;
        for (auto &[rid, r] : s.replicas) out.push_back(r.record);
    }
    if (name && !find(*name)) return Error{ENOENT, "service: '" + *name + "' does not exist"};
    std::sort(out.begin(), out.end(), [](auto &a, auto &b) { return a.id < b.id; });
    return out;
}

// ---- bookkeeping ----------------------------------------------------------------------

void Controller::journal(const ServiceRuntime &s, std::optional<ReplicaId> replica,
                         const char *kind, const std::string &message) {
    spdlog::info("service {}{}: {}", s.record.spec.name,
                 replica ? fmt::format(" replica {}", *replica) : "", message);
    auto st = store_.append_event(
        {0, ports_.scheduler.wall_ms(), s.record.spec.name, replica, kind, message});
    if (!st) spdlog::warn("event journal: {}", st.error().describe());
}

void Controller::persist_state(ServiceRuntime &s) {
    s.record.updated_ms = ports_.scheduler.wall_ms();
    auto st = store_.set_service_state(s.record.id, s.record.state, s.record.failure,
                                       s.record.updated_ms);
    if (!st) spdlog::error("service {}: persisting state: {}", s.record.spec.name,
                           st.error().describe());
}

void Controller::persist_replica(ReplicaRuntime &r) {
    r.record.updated_ms = ports_.scheduler.wall_ms();
    Status st;
    if (r.stored) {
        st = store_.update_replica(r.record);
    } else {
        auto id = store_.insert_replica(r.record);
        if (id) r.stored = true;
        else st = std::move(id).error();
    }
    if (!st) spdlog::error("replica {}: persisting: {}", r.record.id, st.error().describe());
}

bool Controller::transition(ServiceRuntime &s, ServiceState to) {
    ServiceState from = s.record.state;
    if (from == to) return false;
    if (!transition_allowed(from, to)) {
        metrics_.counter("wisp_internal_errors_total", "").inc();
        spdlog::error("service {}: illegal transition {} -> {} (a bug; applying it anyway)",
                      s.record.spec.name, to_string(from), to_string(to));
    }
    s.record.state = to;
    return true;
}

void Controller::set_state(ServiceRuntime &s, ServiceState to) {
    if (transition(s, to)) persist_state(s);
}

void Controller::sync_dataplane(ServiceRuntime &s) {
    std::optional<DpServiceState> want;
    switch (s.record.state) {
        case ServiceState::kStandby:
        case ServiceState::kDraining: want = DpServiceState::kZero; break;
        case ServiceState::kWaking: want = DpServiceState::kWaking; break;
        case ServiceState::kRunning: want = DpServiceState::kReady; break;
        // While failed, WAKING makes the data plane keep capturing SYNs (typed
        // BUFFERED, so no flood of wakes); they are replayed after the backoff.
        case ServiceState::kFailed:
            if (golden(s)) want = DpServiceState::kWaking;
            break;
        default: break;
    }
    if (!want) {
        if (s.in_dataplane) {
            auto st = ports_.dataplane.remove_service(s.record.id);
            if (!st) spdlog::error("data plane: removing {}: {}", s.record.spec.name,
                                   st.error().describe());
            s.in_dataplane = false;
        }
        return;
    }
    DpService dp{s.record.id, s.record.spec.vip, s.record.spec.port, s.record.spec.protocol,
                 *want};
    auto st = ports_.dataplane.upsert_service(dp);
    if (!st) {
        spdlog::error("data plane: service {}: {}", s.record.spec.name, st.error().describe());
        return;
    }
    s.in_dataplane = true;
}

void Controller::publish_replicas(ServiceRuntime &s) {
    // Before its golden snapshot a service is not in the data plane: nothing to say.
    if (!s.in_dataplane) return;
    std::vector<DpReplica> set;
    for (auto &[id, r] : s.replicas) {
        if (r.record.state != ReplicaState::kReady && r.record.state != ReplicaState::kDraining)
            continue;
        set.push_back({id, s.record.id, r.record.tap_ifindex, MacAddress::for_replica(id),
                       r.tap_mac,
                       r.record.state == ReplicaState::kReady ? DpReplicaState::kReady
                                                              : DpReplicaState::kDraining});
    }
    auto st = ports_.dataplane.set_replicas(s.record.id, set);
    if (!st) spdlog::error("data plane: replicas of {}: {}", s.record.spec.name,
                           st.error().describe());
}

void Controller::cancel_timers(ReplicaRuntime &r) {
    ports_.scheduler.cancel(r.op_timer);
    ports_.scheduler.cancel(r.idle_timer);
    r.op_timer = r.idle_timer = 0;
}

void Controller::forget_replica(ServiceRuntime &s, ReplicaId rid) {
    auto it = s.replicas.find(rid);
    if (it == s.replicas.end()) return;
    cancel_timers(it->second);
    if (it->second.stored) {
        auto st = store_.delete_replica(rid);
        if (!st) spdlog::error("replica {}: deleting: {}", rid, st.error().describe());
    }
    replica_owner_.erase(rid);
    replica_ids_.release(rid);
    s.replicas.erase(it);
}

void Controller::prune_console_logs(const ServiceRuntime &s) {
    std::error_code ec;
    std::vector<fs::path> logs;
    for (auto &e : fs::directory_iterator(config_.layout.service_logs(s.record.spec.name), ec))
        if (e.path().extension() == ".log") logs.push_back(e.path());
    if (logs.size() <= config_.console_logs_kept) return;
    std::sort(logs.begin(), logs.end());
    for (size_t i = 0; i + config_.console_logs_kept < logs.size(); ++i) fs::remove(logs[i], ec);
}

// ---- recovery ----------------------------------------------------------------------

Status Controller::recover() {
    auto services = store_.list_services();
    if (!services) return std::move(services).error();
    auto replicas = store_.list_replicas();
    if (!replicas) return std::move(replicas).error();

    for (auto &record : *services) {
        // Half-written snapshots of a writer that died (a kill -9 mid-snapshot).
        if (auto n = snapshot::remove_abandoned(config_.layout.service_snapshots(record.spec.name));
            n && *n > 0)
            spdlog::info("service {}: removed {} unfinished snapshot directories",
                         record.spec.name, *n);
        ServiceRuntime s;
        s.record = record;
        s.backoff = Backoff(config_.backoff, record.failure.consecutive_failures);
        auto snaps = store_.list_snapshots(record.id);
        if (!snaps) return std::move(snaps).error();
        for (auto &snap : *snaps) {
            if (fs::exists(snap.path)) {
                s.snapshots.push_back(snap);
                continue;
            }
            spdlog::warn("service {}: snapshot {} is missing on disk; forgetting it",
                         record.spec.name, snap.path);
            (void)store_.delete_snapshot(snap.id);
        }
        services_.emplace(record.id, std::move(s));
    }

    // Monitors outlive wispd (KillMode=process): ask the pool which are still alive.
    auto alive_ids = ports_.monitors.adopt(*replicas);
    for (auto &r : *replicas) {
        auto *s = find(r.service);
        bool alive = std::find(alive_ids.begin(), alive_ids.end(), r.id) != alive_ids.end();
        if (!s || !alive) {
            (void)store_.delete_replica(r.id);
            if (s) journal(*s, r.id, "lost", "replica did not survive the restart of wispd");
            continue;
        }
        replica_owner_[r.id] = s->record.id;
        replica_ids_.reserve(r.id);
        auto &rt = s->replicas[r.id];
        rt.record = r;
        rt.stored = true;
        if (r.state == ReplicaState::kReady) {
            // Its idle clock restarts now: the data plane's stamps say the rest.
            rt.ready_ns = ports_.scheduler.now_ns();
            journal(*s, r.id, "adopted", "running replica re-adopted after a restart");
        } else {
            // Whatever it was doing (booting, restoring, snapshotting, stopping) was
            // driven by the old process; finish it by stopping the monitor.
            journal(*s, r.id, "adopted",
                    fmt::format("replica was {} across the restart; stopping it",
                                to_string(r.state)));
            stop_replica(*s, rt);
        }
    }

    for (auto &[id, s] : services_) {
        ServiceState stored = s.record.state;
        s.record.state = ready_replicas(s)   ? ServiceState::kRunning
                         : golden(s)         ? ServiceState::kStandby
                                             : ServiceState::kCreating;
        if (stored == ServiceState::kFailed && s.record.state != ServiceState::kRunning) {
            // Keep the crash-loop history; the backoff restarts from now.
            s.record.state = ServiceState::kFailed;
            uint64_t delay = s.backoff.delay_ms_after(s.backoff.consecutive_failures());
            s.record.failure.next_attempt_ms = ports_.scheduler.wall_ms() + static_cast<int64_t>(delay);
            ServiceId sid = id;
            s.retry_timer = ports_.scheduler.schedule_after_ms(delay, [this, sid] { retry(sid); });
        }
        persist_state(s);
        sync_dataplane(s);
        publish_replicas(s);
        std::optional<SnapshotId> from;
        for (auto &path : restore_chain(s, &from)) ports_.monitors.keep_snapshot(path);
        for (auto &[rid, r] : s.replicas)
            if (r.record.state == ReplicaState::kReady) {
                ServiceId sid = id;
                ReplicaId rep = rid;
                r.idle_timer = ports_.scheduler.schedule_after_ms(
                    s.record.spec.idle_timeout_ms, [this, sid, rep] { check_idle(sid, rep); });
            }
        if (s.record.state == ServiceState::kCreating) {
            ServiceId sid = id;
            s.retry_timer = ports_.scheduler.schedule_after_ms(0, [this, sid] {
                if (auto *svc = find(sid); svc && svc->record.state == ServiceState::kCreating) {
                    svc->retry_timer = 0;
                    start_golden_boot(*svc);
                }
            });
        } else if (s.record.state == ServiceState::kStandby && s.record.spec.min_replicas > 0) {
            start_restore(s);
        }
        refresh_autoscaling(s);
    }

    // Entries in the pinned maps that the store no longer knows (deleted while
    // wispd was down, or a crash between the two writes).
    auto in_maps = ports_.dataplane.list_services();
    if (in_maps) {
        for (ServiceId id : *in_maps)
            if (!find(id)) {
                spdlog::info("data plane: removing stale service id {}", id);
                (void)ports_.dataplane.remove_service(id);
            }
    } else {
        spdlog::warn("data plane: listing services: {}", in_maps.error().describe());
    }
    spdlog::info("recovered {} services, {} live replicas", services_.size(),
                 replica_owner_.size());
    return {};
}

// ---- API operations ---------------------------------------------------------------

Result<ServiceRecord> Controller::create_service(const ServiceSpec &spec) {
    auto created = store_.create_service(spec, ServiceState::kCreating, ports_.scheduler.wall_ms());
    if (!created) return std::move(created).error();
    ServiceRuntime s;
    s.record = *created;
    s.backoff = Backoff(config_.backoff);
    // Created here, not on the wake path.
    if (auto st = make_dirs(config_.layout.service_logs(spec.name)); !st)
        spdlog::warn("{}", st.error().describe());
    auto [it, inserted] = services_.emplace(created->id, std::move(s));
    journal(it->second, {}, "created",
            fmt::format("{} on {}:{}/{}", spec.image, spec.vip, spec.port, to_string(spec.protocol)));
    start_golden_boot(it->second);
    return it->second.record;
}

Status Controller::delete_service(const std::string &name) {
    auto *s = find(name);
    if (!s) return Error{ENOENT, "service: '" + name + "' does not exist"};
    // The store first: if that fails, nothing has been torn down yet.
    WISP_RETURN_IF_ERROR(store_.delete_service(s->record.id));
    journal(*s, {}, "deleted", "service deleted");
    ports_.scheduler.cancel(s->retry_timer);
    for (auto &[rid, r] : s->replicas) {
        cancel_timers(r);
        auto st = ports_.monitors.stop(rid);
        if (!st) spdlog::warn("replica {}: stop: {}", rid, st.error().describe());
        replica_owner_.erase(rid);
        replica_ids_.release(rid);
    }
    for (auto &snap : s->snapshots) ports_.monitors.release_snapshot(snap.path);
    if (s->in_dataplane) {
        auto st = ports_.dataplane.remove_service(s->record.id);
        if (!st) spdlog::error("data plane: removing {}: {}", name, st.error().describe());
    }
    remove_tree_logged(config_.layout.service_snapshots(name));
    remove_tree_logged(config_.layout.service_logs(name));
    autoscaled_.erase(s->record.id);
    autoscaler_.forget(s->record.id);
    services_.erase(s->record.id);
    return {};
}

Result<ServiceRecord> Controller::update_settings(const std::string &name,
                                                  const ServiceSettings &settings) {
    auto *s = find(name);
    if (!s) return Error{ENOENT, "service: '" + name + "' does not exist"};
    if (settings.min_replicas > settings.max_replicas)
        return invalid("min_replicas: must not exceed max_replicas");
    if (s->record.spec.stateful && settings.max_replicas > 1)
        return invalid("max_replicas: a stateful service runs at most one replica");
    WISP_RETURN_IF_ERROR(
        store_.update_service_settings(s->record.id, settings, ports_.scheduler.wall_ms()));
    auto &spec = s->record.spec;
    spec.idle_timeout_ms = settings.idle_timeout_ms;
    spec.min_replicas = settings.min_replicas;
    spec.max_replicas = settings.max_replicas;
    spec.target_per_replica = settings.target_per_replica;
    journal(*s, {}, "updated",
            fmt::format("idle timeout {} ms, replicas {}..{}, target {}", spec.idle_timeout_ms,
                        spec.min_replicas, spec.max_replicas, spec.target_per_replica));

    // A new idle timeout applies from now: re-check every ready replica.
    ServiceId sid = s->record.id;
    for (auto &[rid, r] : s->replicas) {
        if (r.record.state != ReplicaState::kReady) continue;
        ports_.scheduler.cancel(r.idle_timer);
        ReplicaId rep = rid;
        r.idle_timer = ports_.scheduler.schedule_after_ms(0, [this, sid, rep] { check_idle(sid, rep); });
    }
    // New bounds apply at once, through the policy (which drains the least busy
    // replicas and starts the missing ones in parallel); then the fast loop takes
    // the service on, or lets it go.
    if (s->record.state == ServiceState::kRunning) {
        ServiceRuntime *one[] = {s};
        evaluate(one, ports_.scheduler.now_ns());
    }
    refresh_autoscaling(*s);
    // At zero with a minimum: wake one (the fast loop starts the others with it).
    if (ready_replicas(*s) < spec.min_replicas && s->record.state == ServiceState::kStandby)
        start_restore(*s);
    s->record.updated_ms = ports_.scheduler.wall_ms();
    return s->record;
}

// ---- autoscaling ------------------------------------------------------------------
//
// The fast loop runs every autoscale_period_ns while at least one service is in
// autoscaled_, and not at all otherwise: no per-tick work for services that do not
// autoscale. Per tick: one batched read of the data plane's counters for every
// replica of every autoscaled service, then Autoscaler::tick() per service.

bool Controller::autoscales(const ServiceRuntime &s) const {
    const auto &spec = s.record.spec;
    if (spec.stateful || spec.max_replicas <= 1) return false;
    if (spec.target_per_replica == 0 && spec.min_replicas <= 1) return false;
    if (s.record.state != ServiceState::kRunning && s.record.state != ServiceState::kWaking)
        return false;
    return std::any_of(s.replicas.begin(), s.replicas.end(), [](auto &p) {
        auto st = p.second.record.state;
        return st == ReplicaState::kReady || st == ReplicaState::kRestoring;
    });
}

void Controller::refresh_autoscaling(ServiceRuntime &s) {
    ServiceId id = s.record.id;
    if (autoscales(s)) {
        if (autoscaled_.insert(id).second) arm_autoscale_tick();
        return;
    }
    if (autoscaled_.erase(id)) autoscaler_.forget(id);
}

void Controller::arm_autoscale_tick() {
    if (autoscale_timer_ || autoscaled_.empty()) return;
    uint64_t now = ports_.scheduler.now_ns();
    // Fixed rate while it keeps up; after a stall (a busy loop turn) from now.
    next_tick_ns_ = std::max(next_tick_ns_ + config_.autoscale_period_ns, now);
    if (next_tick_ns_ > now + config_.autoscale_period_ns) next_tick_ns_ = now;
    autoscale_timer_ = ports_.scheduler.schedule_at(next_tick_ns_, [this] { autoscale_tick(); });
}

void Controller::autoscale_tick() {
    autoscale_timer_ = 0;
    autoscale_ticks_.inc();
    tick_services_.clear();
    for (auto it = autoscaled_.begin(); it != autoscaled_.end();) {
        auto *s = find(*it);
        if (!s || !autoscales(*s)) {
            autoscaler_.forget(*it);
            it = autoscaled_.erase(it);
            continue;
        }
        tick_services_.push_back(s);
        ++it;
    }
    evaluate(tick_services_, ports_.scheduler.now_ns());
    arm_autoscale_tick();
}

namespace {
// Replicas the policy hears about: serving, leaving, or starting.
bool listed_for_policy(ReplicaState st) {
    return st == ReplicaState::kReady || st == ReplicaState::kDraining ||
           st == ReplicaState::kRestoring;
}
}  // namespace

void Controller::evaluate(std::span<ServiceRuntime *const> services, uint64_t now) {
    // The counters of every replica in the maps, in one batched read.
    tick_ids_.clear();
    for (auto *s : services)
        for (auto &[rid, r] : s->replicas)
            if (r.record.state == ReplicaState::kReady || r.record.state == ReplicaState::kDraining)
                tick_ids_.push_back(rid);
    if (auto st = ports_.dataplane.replica_loads(tick_ids_, tick_loads_); !st) {
        if (load_read_errors_++ % 1000 == 0)
            spdlog::error("autoscaler: reading replica counters: {} ({} times)",
                          st.error().describe(), load_read_errors_);
        return;
    }
    size_t next = 0;  // tick_ids_ holds the services' replicas in this same order
    for (auto *s : services) {
        tick_replicas_.clear();
        for (auto &[rid, r] : s->replicas) {
            if (!listed_for_policy(r.record.state)) continue;
            ReplicaLoad load{rid, r.record.state, 0, 0, 0, r.launched_ns};
            if (r.record.state != ReplicaState::kRestoring && next < tick_loads_.size()) {
                load.new_flows = tick_loads_[next].new_flows;
                load.in_packets = tick_loads_[next].in_packets;
                ++next;
            }
            tick_replicas_.push_back(load);
        }
        ScaleDecision d = autoscaler_.tick(s->record.id, autoscale_params(s->record.spec),
                                           tick_replicas_, now);
        if (d.desired != d.current) apply_decision(*s, d, now);
    }
}

void Controller::apply_decision(ServiceRuntime &s, const ScaleDecision &d, uint64_t now) {
    if (d.desired > d.current) {
        if (now < s.scale_out_hold_until_ns) return;
        uint32_t started = 0;
        for (uint32_t i = d.current; i < d.desired; ++i) {
            if (!launch_restore(s, true)) break;
            ++started;
        }
        if (started == 0) return;
    } else {
        // The policy names exactly current - desired replicas. The last READY one
        // is never drained here: going to zero is the idle timeout's job (a wake
        // would otherwise wait for a replica that is still draining).
        std::vector<ReplicaId> drain(d.drain.begin(), d.drain.end());
        uint32_t acted = 0;
        for (ReplicaId rid : drain) {
            auto it = s.replicas.find(rid);
            if (it == s.replicas.end()) continue;
            ReplicaRuntime &r = it->second;
            if (r.record.state == ReplicaState::kRestoring) {
                journal(s, rid, "scale-in", "restore cancelled by a scale-in");
                stop_replica(s, r);
                ++acted;
            } else if (r.record.state == ReplicaState::kReady && ready_replicas(s) > 1) {
                drain_replica(s, r);
                ++acted;
            }
        }
        if (acted == 0) return;
    }
    ++s.scale_decisions;
    s.last_decision = {d.reason, d.current, d.desired, d.stable_load, ports_.scheduler.wall_ms()};
    scale_decisions_.with({{"service", s.record.spec.name}, {"reason", to_string(d.reason)}}).inc();
    journal(s, {}, "scale",
            fmt::format("{}: {} -> {} replicas (load {:.0f}/s over the stable window{})",
                        to_string(d.reason), d.current, d.desired, d.stable_load,
                        d.panic_load >= 0 ? fmt::format(", {:.0f}/s over the panic window",
                                                        d.panic_load)
                                          : std::string()));
}

// ---- golden boot --------------------------------------------------------------------

Result<Controller::ReplicaRuntime *> Controller::new_replica(ServiceRuntime &s,
                                                             ReplicaState state, Tap &tap,
                                                             std::optional<SnapshotId> snapshot) {
    // The id comes from memory, not from the store: its row is written once the
    // replica runs (after the replay, for a wake), so no disk commit delays a wake.
    ReplicaId id = replica_ids_.take();
    if (id == 0)
        return Error{ENOSPC, "all " + std::to_string(config_.max_replica_id) +
                                 " replica ids are in use"};
    ReplicaRecord rec;
    rec.id = id;
    rec.service = s.record.id;
    rec.state = state;
    rec.tap = tap.name;
    rec.tap_ifindex = tap.ifindex;
    rec.guest_mac = MacAddress::for_replica(id).to_string();
    rec.snapshot = snapshot;
    rec.started_ms = rec.updated_ms = ports_.scheduler.wall_ms();
    replica_owner_[id] = s.record.id;
    auto &rt = s.replicas[id];
    rt.record = rec;
    rt.tap_mac = tap.mac;
    rt.launched_ns = ports_.scheduler.now_ns();
    return &rt;
}

Status Controller::launch_replica(ServiceRuntime &s, ReplicaRuntime &rt, LaunchRequest::Mode mode,
                                  std::vector<std::string> snapshots, Tap tap) {
    ReplicaId rid = rt.record.id;
    LaunchRequest req;
    req.mode = mode;
    req.replica = rid;
    req.service = s.record.id;
    req.image = s.record.spec.image;
    req.snapshots = std::move(snapshots);
    req.memory_mib = s.record.spec.memory_mib;
    req.cmdline = s.record.spec.cmdline;
    req.tap = std::move(tap);
    req.guest_mac = MacAddress::for_replica(rid);
    req.vip = s.record.spec.vip;
    req.console_log = config_.layout.console_log(s.record.spec.name, rt.record.started_ms, rid);
    auto handle = ports_.monitors.launch(std::move(req));
    if (!handle) return std::move(handle).error();
    rt.record.monitor_pid = handle->pid;
    rt.record.control_socket = handle->control_socket;
    // A restore is recorded once it runs (replica_ready), after the replay.
    if (mode == LaunchRequest::Mode::kBoot) {
        persist_replica(rt);
        prune_console_logs(s);
    }
    return {};
}

void Controller::start_golden_boot(ServiceRuntime &s) {
    ports_.scheduler.cancel(s.retry_timer);
    s.retry_timer = 0;
    auto tap = ports_.taps.create();
    if (!tap) return fail(s, "boot", "tap: " + tap.error().describe());
    auto r = new_replica(s, ReplicaState::kBooting, *tap, std::nullopt);
    if (!r) return fail(s, "boot", "store: " + r.error().describe());
    ReplicaRuntime &rt = **r;
    ReplicaId rid = rt.record.id;

    if (auto st = launch_replica(s, rt, LaunchRequest::Mode::kBoot, {}, std::move(*tap)); !st) {
        forget_replica(s, rid);
        return fail(s, "boot", "monitor: " + st.error().describe());
    }
    set_state(s, ServiceState::kBooting);
    arm_op_timer(s, rt, config_.golden_boot_timeout_ms, "boot");
    journal(s, rid, "booting", "booting the image for its golden snapshot");
}

void Controller::golden_written(ServiceRuntime &s, ReplicaRuntime &r, const MonitorEvent &ev) {
    auto snap = store_.add_snapshot(s.record.id, SnapshotKind::kGolden, ev.snapshot_dir,
                                    std::nullopt, ports_.scheduler.wall_ms());
    if (!snap) {
        stop_replica(s, r);
        return fail(s, "snapshot", "store: " + snap.error().describe());
    }
    s.snapshots.push_back(*snap);
    ports_.monitors.keep_snapshot(snap->path);
    // The booted instance does not serve: every wake restores the golden snapshot,
    // so the first request sees exactly what every later one sees.
    stop_replica(s, r);
    s.backoff.record_success();
    s.record.failure.consecutive_failures = 0;
    s.record.failure.crash_loop = false;
    s.record.failure.next_attempt_ms = 0;
    set_state(s, ServiceState::kStandby);
    sync_dataplane(s);
    journal(s, r.record.id, "standby", "golden snapshot written: " + ev.snapshot_dir);
    if (s.record.spec.min_replicas > 0) start_restore(s);
}

// ---- wake ---------------------------------------------------------------------------
//
// The wake path is the product: from the SYN's capture to its replay nothing here
// writes to disk, forks, or walks every service. Bookkeeping (store rows, journal,
// console-log pruning) happens after the replay.

ReplayTarget Controller::replay_target(const ReplicaRuntime &r) const {
    return {r.record.tap_ifindex, MacAddress::for_replica(r.record.id), r.tap_mac};
}

void Controller::on_dataplane_event(const DpEvent &ev) {
    auto *s = find(ev.service);
    if (!s) {
        events_ignored_.inc();
        return;
    }
    switch (s->record.state) {
        case ServiceState::kRunning: {
            // The frame raced the READY flip: hand it to a ready replica directly.
            for (auto &[rid, r] : s->replicas) {
                if (r.record.state != ReplicaState::kReady) continue;
                auto st = ports_.injector.inject(replay_target(r), {ev.packet});
                if (st) frames_replayed_.inc();
                else spdlog::warn("replica {}: replay: {}", rid, st.error().describe());
                return;
            }
            break;
        }
        case ServiceState::kStandby:
        case ServiceState::kWaking:
        case ServiceState::kDraining:
        case ServiceState::kFailed: break;
        default:
            // Not in the data plane yet (creating): nothing to wake.
            events_ignored_.inc();
            return;
    }
    if (s->wake.frames() == 0 && s->wake_trace.consumed_ns == 0) {
        s->wake_trace = {};
        s->wake_trace.consumed_ns = ports_.scheduler.now_ns();
    }
    if (s->wake.add({ev.timestamp_ns, ev.packet})) frames_buffered_.inc();
    else frames_dropped_.inc();

    switch (s->record.state) {
        case ServiceState::kStandby: start_restore(*s); break;
        case ServiceState::kDraining:
        case ServiceState::kFailed: s->wake_pending = true; break;
        default: break;  // waking: one restore in flight per service
    }
}

void Controller::start_restore(ServiceRuntime &s) {
    if (restore_in_flight(s)) return;
    (void)launch_restore(s, false);
}

bool Controller::launch_restore(ServiceRuntime &s, bool scale_out) {
    // A wake that cannot start fails the service (backoff, SYNs kept); a scale-out
    // that cannot start leaves it serving on what it has and tries again shortly.
    auto failed = [&](const std::string &why) {
        if (!scale_out) {
            fail(s, "restore", why);
            return false;
        }
        failures_.with({{"stage", "scale-out"}}).inc();
        s.scale_out_hold_until_ns =
            ports_.scheduler.now_ns() + config_.scale_out_retry_ms * 1'000'000;
        journal(s, {}, "scale-out-failed",
                fmt::format("{}; next attempt in {} ms", why, config_.scale_out_retry_ms));
        return false;
    };
    std::optional<SnapshotId> from;
    auto chain = restore_chain(s, &from);
    if (chain.empty()) return failed("no snapshot to restore from");
    if (!scale_out) {
        ports_.scheduler.cancel(s.retry_timer);
        s.retry_timer = 0;
        s.wake_pending = false;
    }

    auto tap = ports_.taps.create();
    if (!tap) return failed("tap: " + tap.error().describe());
    int ifindex = tap->ifindex;
    auto r = new_replica(s, ReplicaState::kRestoring, *tap, from);
    if (!r) return failed(r.error().describe());
    ReplicaRuntime &rt = **r;
    ReplicaId rid = rt.record.id;
    rt.restored_from = chain.back();
    // Pooled taps come with their return path attached.
    if (!tap->prepared) {
        if (auto st = ports_.dataplane.attach_tap(ifindex, rid); !st) {
            forget_replica(s, rid);
            return failed("data plane: " + st.error().describe());
        }
    }

    if (auto st = launch_replica(s, rt, LaunchRequest::Mode::kRestore, chain, std::move(*tap)); !st) {
        forget_replica(s, rid);
        return failed("monitor: " + st.error().describe());
    }
    if (!scale_out) {
        s.wake_trace.restore_sent_ns = ports_.scheduler.now_ns();
        s.wake_trace.replica = rid;
    }
    if (s.record.state != ServiceState::kRunning) {
        // Persisted with the outcome (running, or failed): no commit on the wake path.
        transition(s, ServiceState::kWaking);
        sync_dataplane(s);
    }
    arm_op_timer(s, rt, config_.restore_timeout_ms, "restore");
    return true;
}

std::vector<DpEvent> Controller::collect_pending_syns(ServiceRuntime &s) {
    std::vector<DpEvent> others;
    auto st = ports_.dataplane.drain_events([&](const DpEvent &ev) {
        if (ev.service != s.record.id) {
            others.push_back(ev);
            return;
        }
        if (s.wake.add({ev.timestamp_ns, ev.packet})) frames_buffered_.inc();
        else frames_dropped_.inc();
    });
    if (!st) spdlog::error("data plane events: {}", st.error().describe());
    return others;
}

void Controller::replay(ServiceRuntime &s, ReplicaRuntime &r,
                        std::vector<std::vector<uint8_t>> packets) {
    if (packets.empty()) return;
    auto st = ports_.injector.inject(replay_target(r), packets);
    if (st) frames_replayed_.inc(packets.size());
    else spdlog::warn("service {} replica {}: replaying {} frames: {} (clients will retransmit)",
                      s.record.spec.name, r.record.id, packets.size(), st.error().describe());
}

void Controller::replica_ready(ServiceRuntime &s, ReplicaRuntime &r, const MonitorEvent &ev) {
    ports_.scheduler.cancel(r.op_timer);
    r.op_timer = 0;
    r.record.state = ReplicaState::kReady;

    // Order matters: the replica is READY in the maps before the service flips, and
    // both before the replay, so the client's next packets take the fast path.
    publish_replicas(s);
    bool woke = s.record.state == ServiceState::kWaking;
    if (woke) transition(s, ServiceState::kRunning);
    sync_dataplane(s);
    uint64_t now = ports_.scheduler.now_ns();  // READY in the maps
    r.record.ready_ms = ports_.scheduler.wall_ms();
    r.ready_ns = now;
    // SYNs captured before the flip may still sit in the ring buffer: take them
    // now, or they would wait for the next loop turn.
    std::vector<DpEvent> other_services = collect_pending_syns(s);

    WakeTrace &trace = s.wake_trace;
    uint64_t first_ns = s.wake.first_captured_ns();
    std::vector<std::vector<uint8_t>> packets;
    packets.reserve(s.wake.frames());
    for (auto &f : s.wake.take()) packets.push_back(std::move(f.bytes));
    size_t replayed = packets.size();
    replay(s, r, std::move(packets));
    uint64_t replayed_ns = ports_.scheduler.now_ns();

    // ---- off the wake path from here ----
    restore_latency_.observe(ns_to_s(now - r.launched_ns));
    std::string latency;
    if (first_ns && now >= first_ns) {
        trace.syn_ns = first_ns;
        trace.monitor_command_ns = ev.command_ns;
        trace.guest_entry_ns = ev.guest_ns;
        trace.ready_ns = now;
        trace.replayed_ns = replayed_ns;
        trace.frames = static_cast<uint32_t>(replayed);
        trace.replica = r.record.id;
        s.last_wake = trace;
        wake_latency_.observe(ns_to_s(now - first_ns));
        wakes_.with({{"service", s.record.spec.name}}).inc();
        ++s.wakes;
        s.last_wake_latency_ms = ns_to_ms(now - first_ns);
        latency = fmt::format(", {:.3f} ms after the first SYN", s.last_wake_latency_ms);
    }
    trace = {};
    ServiceId sid = s.record.id;
    ReplicaId rid = r.record.id;
    // The store and the journal catch up a little later, once the guest has had the
    // cores to itself: no disk write delays a wake.
    std::vector<std::pair<std::string, std::string>> lines = {
        {woke ? "waking" : "scale-out", "restoring from " + r.restored_from},
        {"ready", fmt::format("replica running {:.3f} ms after the restore began{}; {} frames "
                              "replayed",
                              ns_to_ms(now - r.launched_ns), latency, replayed)}};
    ports_.scheduler.schedule_after_ms(config_.bookkeeping_delay_ms, [this, sid, rid, lines] {
        auto *svc = find(sid);
        if (!svc) return;
        for (auto &[kind, message] : lines) journal(*svc, rid, kind.c_str(), message);
        auto it = svc->replicas.find(rid);
        if (it != svc->replicas.end()) persist_replica(it->second);
        persist_state(*svc);
        prune_console_logs(*svc);
    });

    r.op_timer = ports_.scheduler.schedule_after_ms(config_.healthy_after_ms, [this, sid, rid] {
        ServiceRuntime *svc = nullptr;
        auto *rep = find_replica(rid, &svc);
        if (!rep || svc->record.id != sid) return;
        rep->op_timer = 0;
        if (rep->record.state != ReplicaState::kReady || svc->backoff.consecutive_failures() == 0)
            return;
        svc->backoff.record_success();
        svc->record.failure.consecutive_failures = 0;
        svc->record.failure.crash_loop = false;
        svc->record.failure.next_attempt_ms = 0;
        persist_state(*svc);
    });
    r.idle_timer = ports_.scheduler.schedule_after_ms(s.record.spec.idle_timeout_ms,
                                                      [this, sid, rid] { check_idle(sid, rid); });
    refresh_autoscaling(s);
    if (ready_replicas(s) < s.record.spec.min_replicas) start_restore(s);
    for (auto &other : other_services) on_dataplane_event(other);
}

// ---- idle -----------------------------------------------------------------------------

uint64_t Controller::quiet_since(const ReplicaRuntime &r) {
    uint64_t last = 0;
    if (auto a = ports_.dataplane.last_activity_ns(r.record.id); a) last = *a;
    else spdlog::warn("replica {}: last activity: {}", r.record.id, a.error().describe());
    return std::max(last, r.ready_ns);
}

void Controller::check_idle(ServiceId sid, ReplicaId rid) {
    ServiceRuntime *s = nullptr;
    auto *r = find_replica(rid, &s);
    if (!r || s->record.id != sid) return;
    r->idle_timer = 0;
    if (r->record.state != ReplicaState::kReady) return;

    uint64_t now = ports_.scheduler.now_ns();
    uint64_t since = quiet_since(*r);
    uint64_t timeout_ns = uint64_t{s->record.spec.idle_timeout_ms} * 1'000'000;
    if (now >= since + timeout_ns) {
        if (ready_replicas(*s) > s->record.spec.min_replicas) {
            journal(*s, rid, "idle",
                    fmt::format("no packet for {:.1f} ms", ns_to_ms(now - since)));
            idle_stops_.inc();
            drain_replica(*s, *r);
            return;
        }
        since = now;  // kept for min_replicas: look again one timeout later
    }
    r->idle_timer = ports_.scheduler.schedule_at(since + timeout_ns,
                                                 [this, sid, rid] { check_idle(sid, rid); });
}

void Controller::drain_replica(ServiceRuntime &s, ReplicaRuntime &r) {
    cancel_timers(r);
    r.record.state = ReplicaState::kDraining;
    persist_replica(r);
    if (ready_replicas(s) == 0 && s.record.state == ServiceState::kRunning) {
        set_state(s, ServiceState::kDraining);
        sync_dataplane(s);  // ZERO: the next SYN wakes the service again
    }
    publish_replicas(s);

    if (s.record.spec.stateful) {
        auto base = golden(s);
        SnapshotRequest req;
        req.kind = base ? SnapshotKind::kDiff : SnapshotKind::kStateful;
        req.dir = config_.layout.snapshot_dir(s.record.spec.name, req.kind,
                                              ports_.scheduler.wall_ms(), r.record.id);
        if (base) req.base_dir = base->path;
        auto st = make_dirs(config_.layout.service_snapshots(s.record.spec.name));
        if (st) st = ports_.monitors.snapshot(r.record.id, req);
        if (st) {
            r.record.state = ReplicaState::kSnapshotting;
            persist_replica(r);
            publish_replicas(s);
            arm_op_timer(s, r, config_.snapshot_timeout_ms, "stateful snapshot");
            return;
        }
        journal(s, r.record.id, "snapshot-failed",
                "stateful snapshot could not start: " + st.error().describe() +
                    "; state since the previous snapshot is lost");
        stop_replica(s, r);
        return;
    }
    // Stateless: it stays in the maps as DRAINING (its flows keep reaching it, new
    // ones go elsewhere) and stops once they are quiet. A replica drained for its
    // idle timeout is quiet already and stops at once.
    r.drain_started_ns = ports_.scheduler.now_ns();
    check_drained(s.record.id, r.record.id);
}

void Controller::check_drained(ServiceId sid, ReplicaId rid) {
    ServiceRuntime *s = nullptr;
    auto *r = find_replica(rid, &s);
    if (!r || s->record.id != sid) return;
    r->idle_timer = 0;
    if (r->record.state != ReplicaState::kDraining) return;
    uint64_t now = ports_.scheduler.now_ns();
    uint64_t since = quiet_since(*r);
    uint64_t quiet_ns =
        std::min<uint64_t>(s->record.spec.idle_timeout_ms, config_.drain_idle_ms) * 1'000'000;
    uint64_t deadline = r->drain_started_ns + config_.max_drain_ms * 1'000'000;
    if (now >= since + quiet_ns || now >= deadline) {
        if (now < since + quiet_ns)
            journal(*s, rid, "drain-timeout",
                    fmt::format("still carrying traffic {} ms after it was drained; stopping it",
                                config_.max_drain_ms));
        else if (now > r->drain_started_ns)
            journal(*s, rid, "drained",
                    fmt::format("flows quiet for {:.1f} ms, {:.1f} ms after it was drained",
                                ns_to_ms(now - since), ns_to_ms(now - r->drain_started_ns)));
        stop_replica(*s, *r);
        return;
    }
    r->idle_timer = ports_.scheduler.schedule_at(std::min(since + quiet_ns, deadline),
                                                 [this, sid, rid] { check_drained(sid, rid); });
}

void Controller::stateful_written(ServiceRuntime &s, ReplicaRuntime &r, const MonitorEvent &ev) {
    std::optional<SnapshotId> parent;
    if (ev.snapshot_kind == SnapshotKind::kDiff) {
        if (auto base = golden(s)) parent = base->id;
    }
    auto snap = store_.add_snapshot(s.record.id, ev.snapshot_kind, ev.snapshot_dir, parent,
                                    ports_.scheduler.wall_ms());
    if (snap) {
        // Only the newest state matters; older stateful snapshots go.
        std::vector<SnapshotRecord> keep;
        for (auto &old : s.snapshots) {
            if (old.kind == SnapshotKind::kGolden) {
                keep.push_back(old);
                continue;
            }
            // The store sets their rows' reference to NULL; so must we.
            for (auto &[rid, rep] : s.replicas)
                if (rep.record.snapshot == old.id) rep.record.snapshot.reset();
            (void)store_.delete_snapshot(old.id);
            ports_.monitors.release_snapshot(old.path);
            remove_tree_logged(old.path);
        }
        keep.push_back(*snap);
        s.snapshots = std::move(keep);
        ports_.monitors.keep_snapshot(snap->path);
        journal(s, r.record.id, "snapshot",
                fmt::format("{} snapshot written: {}", to_string(ev.snapshot_kind), ev.snapshot_dir));
    } else {
        journal(s, r.record.id, "snapshot-failed", "store: " + snap.error().describe());
    }
    stop_replica(s, r);
}

void Controller::stop_replica(ServiceRuntime &s, ReplicaRuntime &r) {
    cancel_timers(r);
    r.record.state = ReplicaState::kStopping;
    persist_replica(r);
    publish_replicas(s);
    auto st = ports_.monitors.stop(r.record.id);
    if (!st) {
        spdlog::warn("replica {}: stop: {}", r.record.id, st.error().describe());
        ReplicaId rid = r.record.id;
        forget_replica(s, rid);
        after_replica_change(s);
        return;
    }
    arm_op_timer(s, r, config_.stop_timeout_ms, "stop");
}

// ---- monitor events ---------------------------------------------------------------------

void Controller::on_monitor_event(const MonitorEvent &ev) {
    ServiceRuntime *s = nullptr;
    auto *r = find_replica(ev.replica, &s);
    if (!r) {
        events_ignored_.inc();
        return;
    }
    switch (ev.type) {
        case MonitorEvent::Type::kGuestReady: {
            if (r->record.state != ReplicaState::kBooting ||
                s->record.state != ServiceState::kBooting)
                return;
            ports_.scheduler.cancel(r->op_timer);
            SnapshotRequest req{SnapshotKind::kGolden,
                                config_.layout.snapshot_dir(s->record.spec.name,
                                                            SnapshotKind::kGolden,
                                                            ports_.scheduler.wall_ms(),
                                                            r->record.id),
                                ""};
            auto st = make_dirs(config_.layout.service_snapshots(s->record.spec.name));
            if (st) st = ports_.monitors.snapshot(r->record.id, req);
            if (!st) {
                stop_replica(*s, *r);
                return fail(*s, "snapshot", st.error().describe());
            }
            r->record.state = ReplicaState::kSnapshotting;
            persist_replica(*r);
            set_state(*s, ServiceState::kSnapshotting);
            arm_op_timer(*s, *r, config_.snapshot_timeout_ms, "snapshot");
            journal(*s, r->record.id, "guest-ready",
                    fmt::format("guest initialised after {:.1f} ms; writing the golden snapshot",
                                ns_to_ms(ports_.scheduler.now_ns() - r->launched_ns)));
            return;
        }
        case MonitorEvent::Type::kRunning:
            if (r->record.state == ReplicaState::kRestoring) replica_ready(*s, *r, ev);
            return;
        case MonitorEvent::Type::kFirstHypercall:
            // Usually after the replay (the guest runs in parallel with it).
            if (s->last_wake.replica == ev.replica && s->last_wake.first_hypercall_ns == 0)
                s->last_wake.first_hypercall_ns = ev.guest_ns;
            else if (s->wake_trace.replica == ev.replica)
                s->wake_trace.first_hypercall_ns = ev.guest_ns;
            return;
        case MonitorEvent::Type::kSnapshotWritten:
            if (r->record.state != ReplicaState::kSnapshotting) return;
            ports_.scheduler.cancel(r->op_timer);
            r->op_timer = 0;
            if (s->record.state == ServiceState::kSnapshotting)
                golden_written(*s, *r, ev);
            else
                stateful_written(*s, *r, ev);
            return;
        case MonitorEvent::Type::kSnapshotFailed:
            if (r->record.state != ReplicaState::kSnapshotting) return;
            if (s->record.state == ServiceState::kSnapshotting) {
                stop_replica(*s, *r);
                return fail(*s, "snapshot", ev.detail);
            }
            journal(*s, r->record.id, "snapshot-failed",
                    ev.detail + "; state since the previous snapshot is lost");
            stop_replica(*s, *r);
            return;
        case MonitorEvent::Type::kExited: replica_gone(*s, ev.replica, ev); return;
    }
}

void Controller::replica_gone(ServiceRuntime &s, ReplicaId rid, const MonitorEvent &ev) {
    auto &r = s.replicas.at(rid);
    ReplicaState was = r.record.state;
    uint64_t ready_ns = r.ready_ns;
    forget_replica(s, rid);
    publish_replicas(s);
    std::string why = ev.detail.empty() ? fmt::format("exit status {}", ev.exit_status) : ev.detail;

    switch (was) {
        case ReplicaState::kStopping:
            journal(s, rid, "stopped", "monitor exited");
            break;
        case ReplicaState::kBooting:
            if (s.record.state == ServiceState::kBooting)
                return fail(s, "boot", "monitor exited during boot: " + why);
            break;
        case ReplicaState::kSnapshotting:
            if (s.record.state == ServiceState::kSnapshotting)
                return fail(s, "snapshot", "monitor exited while writing the snapshot: " + why);
            journal(s, rid, "lost", "monitor exited while writing a stateful snapshot: " + why);
            break;
        case ReplicaState::kRestoring:
            return fail(s, "restore", "monitor exited during restore: " + why);
        case ReplicaState::kReady:
        case ReplicaState::kDraining: {
            // A crash. It is out of the maps already (publish_replicas above); the
            // next SYN wakes a new replica unless this is a crash loop.
            failures_.with({{"stage", "crash"}}).inc();
            uint64_t now = ports_.scheduler.now_ns();
            if (now - ready_ns >= config_.healthy_after_ms * 1'000'000) s.backoff.record_success();
            uint64_t delay = s.backoff.record_failure();
            s.record.failure = {"crash: replica " + std::to_string(rid) + " exited: " + why,
                                s.backoff.consecutive_failures(), ports_.scheduler.wall_ms(), 0,
                                s.backoff.crash_loop()};
            journal(s, rid, "crashed", why);
            if (ready_replicas(s) == 0 && !restore_in_flight(s)) {
                if (s.backoff.crash_loop()) {
                    s.record.failure.next_attempt_ms =
                        ports_.scheduler.wall_ms() + static_cast<int64_t>(delay);
                    if (s.record.state != ServiceState::kFailed) set_state(s, ServiceState::kFailed);
                    persist_state(s);
                    sync_dataplane(s);
                    ServiceId sid = s.record.id;
                    ports_.scheduler.cancel(s.retry_timer);
                    s.retry_timer =
                        ports_.scheduler.schedule_after_ms(delay, [this, sid] { retry(sid); });
                    journal(s, {}, "crash-loop",
                            fmt::format("{} failures in a row; next attempt in {} ms",
                                        s.backoff.consecutive_failures(), delay));
                    return;
                }
                if (s.record.state == ServiceState::kRunning) {
                    set_state(s, ServiceState::kStandby);
                    sync_dataplane(s);
                }
            }
            persist_state(s);
            break;
        }
    }
    after_replica_change(s);
}

void Controller::after_replica_change(ServiceRuntime &s) {
    bool busy = std::any_of(s.replicas.begin(), s.replicas.end(), [](auto &p) {
        auto st = p.second.record.state;
        return st == ReplicaState::kReady || st == ReplicaState::kDraining ||
               st == ReplicaState::kSnapshotting || st == ReplicaState::kRestoring;
    });
    if (s.record.state == ServiceState::kDraining && !busy) {
        // Stopping monitors may still be exiting; they are out of the maps already.
        s.backoff.record_success();
        s.record.failure.consecutive_failures = 0;
        s.record.failure.crash_loop = false;
        set_state(s, ServiceState::kStandby);
        sync_dataplane(s);
        journal(s, {}, "standby", "back to zero");
    }
    if (s.record.state == ServiceState::kStandby &&
        (s.wake_pending || s.wake.frames() > 0 || s.record.spec.min_replicas > 0))
        start_restore(s);
}

// ---- failures and timeouts ----------------------------------------------------------

void Controller::fail(ServiceRuntime &s, const std::string &stage, const std::string &reason) {
    failures_.with({{"stage", stage}}).inc();
    uint64_t delay = s.backoff.record_failure();
    int64_t wall = ports_.scheduler.wall_ms();
    s.record.failure = {stage + ": " + reason, s.backoff.consecutive_failures(), wall,
                        wall + static_cast<int64_t>(delay), s.backoff.crash_loop()};

    // Abandon whatever was in flight for this attempt. (Ids first: stopping can
    // change the replica map.)
    std::vector<ReplicaId> abandon;
    for (auto &[rid, r] : s.replicas) {
        auto st = r.record.state;
        bool golden_snapshot = st == ReplicaState::kSnapshotting &&
                               s.record.state == ServiceState::kSnapshotting;
        if (st == ReplicaState::kBooting || st == ReplicaState::kRestoring || golden_snapshot)
            abandon.push_back(rid);
    }
    for (ReplicaId rid : abandon)
        if (auto it = s.replicas.find(rid); it != s.replicas.end()) stop_replica(s, it->second);
    ServiceId sid = s.record.id;
    ports_.scheduler.cancel(s.retry_timer);
    s.retry_timer = ports_.scheduler.schedule_after_ms(delay, [this, sid] { retry(sid); });
    std::string message = fmt::format("{}; next attempt in {} ms{}", s.record.failure.reason,
                                      delay, s.backoff.crash_loop() ? " (crash loop)" : "");
    if (ready_replicas(s) > 0) {
        // A failed scale-up of a running service: it keeps serving.
        persist_state(s);
        journal(s, {}, "failed", message);
        return;
    }
    if (s.wake.frames() > 0) s.wake_pending = true;
    set_state(s, ServiceState::kFailed);
    persist_state(s);
    sync_dataplane(s);
    journal(s, {}, "failed", message);
}

void Controller::retry(ServiceId sid) {
    auto *s = find(sid);
    if (!s) return;
    s->retry_timer = 0;
    if (s->record.state == ServiceState::kRunning) {
        if (ready_replicas(*s) < s->record.spec.min_replicas) start_restore(*s);
        return;
    }
    if (s->record.state != ServiceState::kFailed) return;
    s->record.failure.next_attempt_ms = 0;
    if (golden(*s)) {
        set_state(*s, ServiceState::kStandby);
        sync_dataplane(*s);
        if (s->wake_pending || s->wake.frames() > 0 || s->record.spec.min_replicas > 0)
            start_restore(*s);
        return;
    }
    set_state(*s, ServiceState::kCreating);
    start_golden_boot(*s);
}

void Controller::arm_op_timer(ServiceRuntime &s, ReplicaRuntime &r, uint64_t ms,
                              const char *what) {
    ports_.scheduler.cancel(r.op_timer);
    ServiceId sid = s.record.id;
    ReplicaId rid = r.record.id;
    std::string op = what;
    r.op_timer = ports_.scheduler.schedule_after_ms(ms, [this, sid, rid, op, ms] {
        ServiceRuntime *svc = nullptr;
        auto *rep = find_replica(rid, &svc);
        if (!rep || svc->record.id != sid) return;
        rep->op_timer = 0;
        std::string message = fmt::format("{} timed out after {} ms", op, ms);
        if (op == "stop") {
            // The pool kills monitors that ignore stop; stop waiting for this one.
            journal(*svc, rid, "timeout", message);
            forget_replica(*svc, rid);
            publish_replicas(*svc);
            after_replica_change(*svc);
        } else if (op == "stateful snapshot") {
            journal(*svc, rid, "snapshot-failed",
                    message + "; state since the previous snapshot is lost");
            stop_replica(*svc, *rep);
        } else {
            fail(*svc, op, message);
        }
    });
}

}  // namespace wisp::wispd
