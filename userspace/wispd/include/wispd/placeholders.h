// Stand-ins for the ports whose real implementations live on other branches (the
// data plane in userspace/dataplane/, monitors in vmm/ + snapshot/). They let
// wispd run end to end today — API, store, lifecycle, systemd — and make the
// missing piece visible instead of hiding it: a service's golden boot fails with
// "monitor pool: ... not wired" and shows up as FAILED with that reason.
//
// main() picks these; replacing them is the integration step (see
// docs/operations.md, "Integration seams").
#pragma once

#include <map>

#include "wispd/ports.h"

namespace wisp::wispd {

// Keeps the service and replica tables in memory; no packets flow, no events come.
class DetachedDataPlane final : public DataPlane {
public:
    Status upsert_service(const DpService &s) override;
    Status set_service_state(ServiceId id, DpServiceState state) override;
    Status remove_service(ServiceId id) override;
    Status set_replicas(ServiceId id, const std::vector<DpReplica> &replicas) override;
    Status attach_tap(int, ReplicaId) override { return {}; }
    Result<uint64_t> last_activity_ns(ReplicaId) override { return uint64_t{0}; }
    Result<std::vector<ServiceId>> list_services() override;
    std::vector<DpCounter> counters() override;
    int event_fd() override { return -1; }
    Status drain_events(const std::function<void(const DpEvent &)> &) override { return {}; }

private:
    std::map<ServiceId, DpService> services_;
    std::map<ServiceId, std::vector<DpReplica>> replicas_;
};

// Refuses every launch with ENOSYS and a message saying why.
class UnavailableMonitorPool final : public MonitorPool {
public:
    Result<MonitorHandle> launch(LaunchRequest) override;
    Status snapshot(ReplicaId, const SnapshotRequest &) override;
    Status stop(ReplicaId) override;
    std::vector<ReplicaId> adopt(const std::vector<ReplicaRecord> &) override { return {}; }
    size_t idle_monitors() const override { return 0; }
};

}  // namespace wisp::wispd
