// The control plane's vocabulary: services, replicas, snapshots, events, and the
// states they move through. Plain data, shared by the store, the controller and
// the API; no behaviour beyond naming.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace wisp::wispd {

// Ids are small integers reused after deletion (the smallest free one is taken),
// so the data plane can index fixed-size maps with them.
using ServiceId = uint32_t;
using ReplicaId = uint32_t;
using SnapshotId = int64_t;

// Where a service is in its life. docs/operations.md has the diagram.
enum class ServiceState : uint8_t {
    kCreating,      // accepted; waiting to boot its image for the golden snapshot
    kBooting,       // a monitor runs the image; waiting for the guest's `ready`
    kSnapshotting,  // writing the golden snapshot
    kStandby,       // at zero: golden snapshot on disk, data plane says ZERO
    kWaking,        // a restore is in flight; SYNs are buffered
    kRunning,       // at least one replica is READY in the data plane
    kDraining,      // idle replicas leaving (stopping, or snapshotting first)
    kFailed,        // the last attempt failed; waiting out a backoff
};

enum class ReplicaState : uint8_t {
    kBooting,       // fresh boot of the image (golden snapshot pending)
    kRestoring,     // restore from a snapshot in flight
    kReady,         // serving; in the data plane's selection
    kDraining,      // out of the selection; existing flows may finish
    kSnapshotting,  // writing a stateful snapshot before it stops
    kStopping,      // stop sent; waiting for the monitor to exit
};

enum class SnapshotKind : uint8_t { kGolden, kStateful, kDiff };
enum class Protocol : uint8_t { kTcp, kUdp };

const char *to_string(ServiceState s);
const char *to_string(ReplicaState s);
const char *to_string(SnapshotKind k);
const char *to_string(Protocol p);
std::optional<ServiceState> parse_service_state(std::string_view s);
std::optional<ReplicaState> parse_replica_state(std::string_view s);
std::optional<SnapshotKind> parse_snapshot_kind(std::string_view s);
std::optional<Protocol> parse_protocol(std::string_view s);

// Bounds every entry point enforces (API validation, config, store checks).
inline constexpr uint32_t kMinMemoryMib = 8;
inline constexpr uint32_t kMaxMemoryMib = 4096;
inline constexpr uint32_t kDefaultMemoryMib = 64;
inline constexpr uint32_t kDefaultIdleTimeoutMs = 1000;
inline constexpr uint32_t kMinIdleTimeoutMs = 10;
inline constexpr uint32_t kMaxIdleTimeoutMs = 24u * 3600u * 1000u;
inline constexpr uint32_t kMaxReplicasLimit = 64;  // per service
inline constexpr uint32_t kMaxTargetPerReplica = 1'000'000;
inline constexpr size_t kMaxNameLength = 63;
inline constexpr size_t kMaxCmdlineLength = 1024;  // fits the guest's boot-info page

// What a user asks for. Validated by spec.h before it reaches the store.
struct ServiceSpec {
    std::string name;
    std::string image;  // absolute path of the guest ELF
    uint32_t memory_mib = kDefaultMemoryMib;
    uint16_t port = 0;
    Protocol protocol = Protocol::kTcp;
    std::string vip;  // IPv4 or IPv6 literal; the instance answers from it (DSR)
    std::string cmdline;
    uint32_t idle_timeout_ms = kDefaultIdleTimeoutMs;
    bool stateful = false;
    uint32_t min_replicas = 0;
    uint32_t max_replicas = 1;
    uint32_t target_per_replica = 0;  // autoscale target; 0 = wake-driven only
};

// The settings that can change after creation (PATCH / `wisp service set|scale`).
struct ServiceSettings {
    uint32_t idle_timeout_ms = kDefaultIdleTimeoutMs;
    uint32_t min_replicas = 0;
    uint32_t max_replicas = 1;
    uint32_t target_per_replica = 0;
};

// Why the last attempt failed and when the next one may start. Wall-clock
// milliseconds so `inspect` can show them; the backoff timer itself runs on the
// monotonic clock.
struct FailureInfo {
    std::string reason;             // empty when the service is healthy
    uint32_t consecutive_failures = 0;
    int64_t last_failure_ms = 0;
    int64_t next_attempt_ms = 0;    // 0 = no backoff pending
    bool crash_loop = false;        // failures keep coming: backoff is at its cap
};

struct ServiceRecord {
    ServiceId id = 0;
    ServiceSpec spec;
    ServiceState state = ServiceState::kCreating;
    FailureInfo failure;
    int64_t created_ms = 0;
    int64_t updated_ms = 0;
};

struct ReplicaRecord {
    ReplicaId id = 0;
    ServiceId service = 0;
    ReplicaState state = ReplicaState::kRestoring;
    std::string tap;         // interface name
    int32_t tap_ifindex = 0;
    std::string guest_mac;   // "02:..:..", locally administered
    pid_t monitor_pid = 0;
    std::string control_socket;  // the monitor's control socket (re-adoption)
    std::optional<SnapshotId> snapshot;  // what it was restored from
    int64_t started_ms = 0;
    int64_t ready_ms = 0;    // 0 until READY
    int64_t updated_ms = 0;
};

struct SnapshotRecord {
    SnapshotId id = 0;
    ServiceId service = 0;
    SnapshotKind kind = SnapshotKind::kGolden;
    std::string path;  // the snapshot directory
    std::optional<SnapshotId> parent;  // a diff snapshot's base
    int64_t created_ms = 0;
};

// One line of the lifecycle journal (`GET /v1/events`).
struct EventRecord {
    int64_t id = 0;
    int64_t at_ms = 0;
    std::string service;  // name, kept after the service is deleted
    std::optional<ReplicaId> replica;
    std::string kind;     // "created", "wake", "ready", "failed", ...
    std::string message;
};

}  // namespace wisp::wispd
