// Fakes of wispd's ports for logic tests of the controller. They record what the
// controller asked for; the test plays the other side (monitor events, data-plane
// events, time). Acceptance tests use the real implementations instead.
#pragma once

#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "wispd/controller.h"
#include "wispd/metrics.h"
#include "wispd/ports.h"

namespace wisp::wispd::test {

// Time that moves only when the test says so.
class ManualScheduler final : public Scheduler {
public:
    uint64_t now_ns() const override { return now_ns_; }
    int64_t wall_ms() const override { return 1'700'000'000'000 + static_cast<int64_t>(now_ns_ / 1'000'000); }
    TimerId schedule_at(uint64_t deadline_ns, std::function<void()> fn) override {
        TimerId id = ++next_;
        timers_[id] = {deadline_ns, std::move(fn)};
        return id;
    }
    void cancel(TimerId id) override { timers_.erase(id); }

    // Moves time forward, firing due timers in deadline order (timers armed by a
    // firing timer fire too if they fall due within the step).
    void advance_ms(uint64_t ms) { advance_to(now_ns_ + ms * 1'000'000); }
    void advance_to(uint64_t target_ns) {
        for (;;) {
            auto next = timers_.end();
            for (auto it = timers_.begin(); it != timers_.end(); ++it)
                if (it->second.first <= target_ns &&
                    (next == timers_.end() || it->second.first < next->second.first))
                    next = it;
            if (next == timers_.end()) break;
            now_ns_ = std::max(now_ns_, next->second.first);
            auto fn = std::move(next->second.second);
            timers_.erase(next);
            fn();
        }
        now_ns_ = std::max(now_ns_, target_ns);
    }
    // Fires whatever is due now (timers scheduled "after 0 ms").
    void run_due() { advance_to(now_ns_); }
    size_t pending() const { return timers_.size(); }
    // Deadline of the earliest pending timer (0 if none).
    uint64_t next_deadline_ns() const {
        uint64_t best = 0;
        for (auto &[id, t] : timers_)
            if (!best || t.first < best) best = t.first;
        return best;
    }

private:
    uint64_t now_ns_ = 1'000'000'000;
    TimerId next_ = 0;
    std::map<TimerId, std::pair<uint64_t, std::function<void()>>> timers_;
};

class FakeDataPlane final : public DataPlane {
public:
    std::map<ServiceId, DpService> services;
    std::map<ServiceId, std::vector<DpReplica>> replicas;
    std::map<ReplicaId, int> attached;  // replica -> tap ifindex
    std::map<ReplicaId, uint64_t> activity;
    std::vector<ServiceId> stale;  // ids in the "pinned maps" from an earlier run
    std::vector<DpCounter> stats{{"forwarded", 0}, {"woke", 0}};
    std::optional<Error> attach_error;

    Status upsert_service(const DpService &s) override {
        services[s.id] = s;
        return {};
    }
    Status set_service_state(ServiceId id, DpServiceState state) override {
        services.at(id).state = state;
        return {};
    }
    Status remove_service(ServiceId id) override {
        services.erase(id);
        replicas.erase(id);
        std::erase(stale, id);
        return {};
    }
    Status set_replicas(ServiceId id, const std::vector<DpReplica> &set) override {
        replicas[id] = set;
        return {};
    }
    Status attach_tap(int ifindex, ReplicaId replica) override {
        if (attach_error) return *attach_error;
        attached[replica] = ifindex;
        return {};
    }
    Result<uint64_t> last_activity_ns(ReplicaId replica) override {
        auto it = activity.find(replica);
        return it == activity.end() ? uint64_t{0} : it->second;
    }
    // Counters the test sets per replica; every call of replica_loads() is counted.
    std::map<ReplicaId, DpReplicaLoad> loads;
    int load_reads = 0;
    Status replica_loads(std::span<const ReplicaId> ids, std::vector<DpReplicaLoad> &out) override {
        ++load_reads;
        out.clear();
        for (ReplicaId id : ids) {
            DpReplicaLoad l = loads.count(id) ? loads.at(id) : DpReplicaLoad{};
            if (auto a = activity.find(id); a != activity.end())
                l.last_activity_ns = std::max(l.last_activity_ns, a->second);
            out.push_back(l);
        }
        return {};
    }
    Result<std::vector<ServiceId>> list_services() override {
        std::vector<ServiceId> ids = stale;
        for (auto &[id, s] : services) ids.push_back(id);
        return ids;
    }
    std::vector<DpCounter> counters() override { return stats; }
    int event_fd() override { return -1; }
    // Records "still in the ring buffer": handed out by the next drain_events().
    std::vector<DpEvent> pending;
    Status drain_events(const std::function<void(const DpEvent &)> &sink) override {
        auto events = std::move(pending);
        pending.clear();
        for (auto &e : events) sink(e);
        return {};
    }

    DpServiceState state_of(ServiceId id) const { return services.at(id).state; }
    std::vector<ReplicaId> ready_of(ServiceId id) const {
        std::vector<ReplicaId> out;
        auto it = replicas.find(id);
        if (it == replicas.end()) return out;
        for (auto &r : it->second)
            if (r.state == DpReplicaState::kReady) out.push_back(r.id);
        return out;
    }
};

class FakeMonitorPool final : public MonitorPool {
public:
    struct Launch {
        LaunchRequest::Mode mode;
        ReplicaId replica;
        ServiceId service;
        std::string image;
        std::vector<std::string> snapshots;
        uint32_t memory_mib;
        std::string cmdline;
        std::string tap;
        MacAddress mac;
        std::string vip;
        std::string console_log;
    };
    std::vector<Launch> launches;
    std::vector<std::pair<ReplicaId, SnapshotRequest>> snapshots;
    std::vector<ReplicaId> stops;
    std::vector<ReplicaId> alive;  // what adopt() reports
    std::vector<ReplicaRecord> adopt_asked;
    int launch_failures_left = 0;  // the next N launches fail with "no monitor available"

    Result<MonitorHandle> launch(LaunchRequest r) override {
        if (launch_failures_left > 0) {
            --launch_failures_left;
            return Error{ENOSPC, "no monitor available"};
        }
        launches.push_back({r.mode, r.replica, r.service, r.image, r.snapshots, r.memory_mib,
                            r.cmdline, r.tap.name, r.guest_mac, r.vip, r.console_log});
        return MonitorHandle{static_cast<pid_t>(1000 + r.replica),
                             "/run/wisp/monitors/" + std::to_string(r.replica) + ".sock"};
    }
    Status snapshot(ReplicaId replica, const SnapshotRequest &req) override {
        snapshots.emplace_back(replica, req);
        return {};
    }
    Status stop(ReplicaId replica) override {
        stops.push_back(replica);
        return {};
    }
    std::vector<ReplicaId> adopt(const std::vector<ReplicaRecord> &known) override {
        adopt_asked = known;
        return alive;
    }
    size_t idle_monitors() const override { return 3; }
    std::vector<std::string> kept, released;  // keep_snapshot / release_snapshot calls
    void keep_snapshot(const std::string &dir) override { kept.push_back(dir); }
    void release_snapshot(const std::string &dir) override { released.push_back(dir); }
};

class FakeTaps final : public TapFactory {
public:
    int created = 0;
    Result<Tap> create() override {
        ++created;
        Tap tap{"ftap" + std::to_string(created), 100 + created, UniqueFd()};
        tap.mac = MacAddress{{0x02, 0x54, 0x41, 0x50, 0x00, static_cast<uint8_t>(created)}};
        return tap;
    }
};

class FakeInjector final : public FrameInjector {
public:
    std::vector<std::pair<ReplayTarget, std::vector<std::vector<uint8_t>>>> calls;
    Status inject(const ReplayTarget &to, const std::vector<std::vector<uint8_t>> &packets) override {
        calls.emplace_back(to, packets);
        return {};
    }
};

// Every fake port plus a metrics registry, as one member of a test fixture.
struct FakePorts {
    ManualScheduler clock;
    FakeDataPlane dp;
    FakeMonitorPool pool;
    FakeTaps taps;
    FakeInjector injector;
    MetricsRegistry metrics;
    Ports ports() { return Ports{dp, pool, taps, injector, clock}; }
};

}  // namespace wisp::wispd::test
