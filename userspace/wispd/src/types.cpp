#include "wispd/types.h"

#include <array>
#include <utility>

namespace wisp::wispd {

namespace {

template <class E, size_t N>
const char *name_of(const std::array<std::pair<E, const char *>, N> &table, E value) {
    for (auto &[v, name] : table)
        if (v == value) return name;
    return "unknown";
}

template <class E, size_t N>
std::optional<E> value_of(const std::array<std::pair<E, const char *>, N> &table,
                          std::string_view s) {
    for (auto &[v, name] : table)
        if (s == name) return v;
    return std::nullopt;
}

constexpr std::array<std::pair<ServiceState, const char *>, 8> kServiceStates{{
    {ServiceState::kCreating, "creating"},
    {ServiceState::kBooting, "booting"},
    {ServiceState::kSnapshotting, "snapshotting"},
    {ServiceState::kStandby, "standby"},
    {ServiceState::kWaking, "waking"},
    {ServiceState::kRunning, "running"},
    {ServiceState::kDraining, "draining"},
    {ServiceState::kFailed, "failed"},
}};

constexpr std::array<std::pair<ReplicaState, const char *>, 6> kReplicaStates{{
    {ReplicaState::kBooting, "booting"},
    {ReplicaState::kRestoring, "restoring"},
    {ReplicaState::kReady, "ready"},
    {ReplicaState::kDraining, "draining"},
    {ReplicaState::kSnapshotting, "snapshotting"},
    {ReplicaState::kStopping, "stopping"},
}};

constexpr std::array<std::pair<SnapshotKind, const char *>, 3> kSnapshotKinds{{
    {SnapshotKind::kGolden, "golden"},
    {SnapshotKind::kStateful, "stateful"},
    {SnapshotKind::kDiff, "diff"},
}};

constexpr std::array<std::pair<Protocol, const char *>, 2> kProtocols{{
    {Protocol::kTcp, "tcp"},
    {Protocol::kUdp, "udp"},
}};

}  // namespace

const char *to_string(ServiceState s) { return name_of(kServiceStates, s); }
const char *to_string(ReplicaState s) { return name_of(kReplicaStates, s); }
const char *to_string(SnapshotKind k) { return name_of(kSnapshotKinds, k); }
const char *to_string(Protocol p) { return name_of(kProtocols, p); }
std::optional<ServiceState> parse_service_state(std::string_view s) {
    return value_of(kServiceStates, s);
}
std::optional<ReplicaState> parse_replica_state(std::string_view s) {
    return value_of(kReplicaStates, s);
}
std::optional<SnapshotKind> parse_snapshot_kind(std::string_view s) {
    return value_of(kSnapshotKinds, s);
}
std::optional<Protocol> parse_protocol(std::string_view s) { return value_of(kProtocols, s); }

}  // namespace wisp::wispd

#include <cstdio>

#include "wispd/layout.h"

namespace wisp::wispd {

std::string Layout::console_log(const std::string &service, int64_t started_ms,
                                ReplicaId replica) const {
    char name[64];
    std::snprintf(name, sizeof name, "/%013lld-r%u.log", static_cast<long long>(started_ms),
                  replica);
    return service_logs(service) + name;
}

}  // namespace wisp::wispd
