#include "wispd/placeholders.h"

namespace wisp::wispd {

Status DetachedDataPlane::upsert_service(const DpService &s) {
    services_[s.id] = s;
    return {};
}

Status DetachedDataPlane::set_service_state(ServiceId id, DpServiceState state) {
    auto it = services_.find(id);
    if (it == services_.end()) return Error{ENOENT, "service id " + std::to_string(id)};
    it->second.state = state;
    return {};
}

Status DetachedDataPlane::remove_service(ServiceId id) {
    services_.erase(id);
    replicas_.erase(id);
    return {};
}

Status DetachedDataPlane::set_replicas(ServiceId id, const std::vector<DpReplica> &replicas) {
    replicas_[id] = replicas;
    return {};
}

Result<std::vector<ServiceId>> DetachedDataPlane::list_services() {
    std::vector<ServiceId> ids;
    for (auto &[id, s] : services_) ids.push_back(id);
    return ids;
}

std::vector<DpCounter> DetachedDataPlane::counters() {
    // The statistics the data plane will export (bpf/wisp_abi.h), at zero.
    return {{"passed", 0},   {"forwarded", 0},    {"woke", 0},      {"buffered", 0},
            {"dropped_cold", 0}, {"ringbuf_full", 0}, {"malformed", 0}, {"spoofed", 0}};
}

namespace {
Error not_wired() {
    return Error{ENOSYS, "monitor pool: wisp-vmm monitors are not wired into wispd yet"};
}
}  // namespace

Result<MonitorHandle> UnavailableMonitorPool::launch(LaunchRequest) { return not_wired(); }
Status UnavailableMonitorPool::snapshot(ReplicaId, const SnapshotRequest &) { return not_wired(); }
Status UnavailableMonitorPool::stop(ReplicaId) { return not_wired(); }

}  // namespace wisp::wispd
