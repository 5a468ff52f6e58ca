// The seams between wispd's controller (plain logic, unit tested with fakes) and
// the parts that touch the kernel or other processes. The daemon's main() chooses
// the implementations; docs/operations.md ("Integration seams") lists which real
// implementation fills which port.
//
//   DataPlane       BPF maps + ring buffer + TC on taps      (dataplane_adapter.h)
//   MonitorPool     pre-forked wisp-vmm processes             (monitor_pool.h)
//   TapFactory      tap devices for replicas                  (taps.h: PreparedTapPool)
//   FrameInjector   replays buffered SYNs into a tap          (taps.h: PacketSocketInjector)
//   Scheduler       time and timers                           (event_loop.h: EventLoop)
//
// Every call happens on the loop thread. Calls that start something slow (boot,
// restore, snapshot, stop) return once it has started; completion arrives later as
// a MonitorEvent through MonitorEventSink, also on the loop thread.
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "wisp/result.h"
#include "wisp/unique_fd.h"
#include "wispd/types.h"

namespace wisp::wispd {

struct MacAddress {
    std::array<uint8_t, 6> bytes{};
    std::string to_string() const;
    static std::optional<MacAddress> parse(std::string_view text);
    // The guest MAC of a replica: locally administered, unicast, unique per replica
    // id on this host (02:77:73:<id, 24 bits>; 0x77 0x73 = "ws").
    static MacAddress for_replica(ReplicaId id);
    bool operator==(const MacAddress &) const = default;
};

// ---- time -------------------------------------------------------------------------

class Scheduler {
public:
    using TimerId = uint64_t;  // never 0
    virtual ~Scheduler() = default;
    // CLOCK_MONOTONIC in ns: the clock of bpf_ktime_get_ns(), so the data plane's
    // timestamps compare directly with it.
    virtual uint64_t now_ns() const = 0;
    // Wall clock in ms since the epoch, for records and the API.
    virtual int64_t wall_ms() const = 0;
    // Runs `fn` on the loop thread once now_ns() >= deadline_ns.
    virtual TimerId schedule_at(uint64_t deadline_ns, std::function<void()> fn) = 0;
    // Forgets a timer that has not fired; unknown or 0 ids are ignored.
    virtual void cancel(TimerId id) = 0;

    TimerId schedule_after_ms(uint64_t ms, std::function<void()> fn) {
        return schedule_at(now_ns() + ms * 1'000'000, std::move(fn));
    }
};

// ---- data plane -------------------------------------------------------------------

// Mirrors the service states of bpf/wisp_abi.h; the adapter converts.
enum class DpServiceState : uint8_t { kZero, kWaking, kReady, kDraining };
enum class DpReplicaState : uint8_t { kReady, kDraining };

struct DpService {
    ServiceId id = 0;
    std::string vip;  // IPv4 or IPv6 literal (the adapter packs it into 16 bytes)
    uint16_t port = 0;
    Protocol protocol = Protocol::kTcp;
    DpServiceState state = DpServiceState::kZero;
};

struct DpReplica {
    ReplicaId id = 0;
    ServiceId service = 0;
    int tap_ifindex = 0;
    MacAddress guest_mac;
    // The tap's own MAC: the source of frames the data plane forwards to the guest.
    // All zero: the adapter reads it from the interface (replicas adopted after a
    // restart, whose tap MAC is not recorded).
    MacAddress tap_mac;
    DpReplicaState state = DpReplicaState::kReady;
};

// A record from the `wisp_events` ring buffer: a new flow to a service at zero.
struct DpEvent {
    enum class Type : uint8_t { kWake, kBuffered };
    Type type = Type::kWake;
    ServiceId service = 0;
    uint64_t timestamp_ns = 0;  // bpf_ktime_get_ns() when the frame arrived
    // The IP packet of the captured frame (its Ethernet header and VLAN tag are
    // gone: a replay addresses it to the guest anew). Always complete: the adapter
    // drops truncated captures, which could not be replayed.
    std::vector<uint8_t> packet;
};

// A replica's traffic counters (wisp_rep_stats summed over CPUs), as the fast loop
// reads them: cumulative since the replica id's current use began.
struct DpReplicaLoad {
    uint64_t new_flows = 0;
    uint64_t in_packets = 0;
    uint64_t last_activity_ns = 0;  // as last_activity_ns(): 0 if no packet yet
};

// A data-plane statistic for /metrics (e.g. {"forwarded", 1234}).
struct DpCounter {
    std::string name;
    uint64_t value = 0;
};

class DataPlane {
public:
    virtual ~DataPlane() = default;
    // Adds or replaces the service's entry (key -> id, state).
    virtual Status upsert_service(const DpService &service) = 0;
    virtual Status set_service_state(ServiceId id, DpServiceState state) = 0;
    // Removes the service and its replicas from the maps.
    virtual Status remove_service(ServiceId id) = 0;
    // Replaces the service's replica set. Replicas not listed leave the selection;
    // READY ones take new flows; DRAINING ones keep their existing flows only.
    virtual Status set_replicas(ServiceId id, const std::vector<DpReplica> &replicas) = 0;
    // Attaches the return-path program (TC ingress) to a replica's fresh tap. Cheap
    // when the tap was prepared already (pooled taps are attached ahead of time).
    virtual Status attach_tap(int ifindex, ReplicaId replica) = 0;
    // Newest packet seen for the replica in either direction (CLOCK_MONOTONIC ns;
    // the data plane's stamps are coarse: the adapter centres them on the tick they
    // fall in); 0 if none yet.
    virtual Result<uint64_t> last_activity_ns(ReplicaId replica) = 0;
    // The counters of every replica in `ids` (any order, no duplicates) in batched
    // reads of the data plane (one per run of nearby ids, usually one), whatever
    // their number: out[i] belongs to ids[i]. The autoscaler's fast loop calls it
    // once per tick for all services.
    virtual Status replica_loads(std::span<const ReplicaId> ids,
                                 std::vector<DpReplicaLoad> &out) = 0;
    // Service ids present in the (pinned) maps: start-up reconciliation removes
    // the ones the store no longer knows.
    virtual Result<std::vector<ServiceId>> list_services() = 0;
    // Counters for /metrics; names are stable (they become label values).
    virtual std::vector<DpCounter> counters() = 0;
    // The ring buffer: an fd that becomes readable when events are pending (-1 when
    // there is none), and a call that hands every pending event to `sink`.
    virtual int event_fd() = 0;
    virtual Status drain_events(const std::function<void(const DpEvent &)> &sink) = 0;
};

// ---- taps ---------------------------------------------------------------------------

// A tap device owned through its queue fd: the device disappears when the last fd
// (ours, and the monitor's copy received over SCM_RIGHTS) is closed.
struct Tap {
    std::string name;
    int ifindex = 0;
    UniqueFd fd;
    MacAddress mac;         // the host side's MAC: the guest's gateway
    bool prepared = false;  // the return path (TC program) is attached already
};

class TapFactory {
public:
    virtual ~TapFactory() = default;
    // A fresh, up tap with a kernel-chosen unique name.
    virtual Result<Tap> create() = 0;
};

// ---- monitors -----------------------------------------------------------------------

struct LaunchRequest {
    enum class Mode : uint8_t { kBoot, kRestore };
    Mode mode = Mode::kBoot;
    ReplicaId replica = 0;
    ServiceId service = 0;
    std::string image;                   // kBoot: the guest ELF
    std::vector<std::string> snapshots;  // kRestore: base first (golden), then a diff
    uint32_t memory_mib = 0;
    std::string cmdline;
    Tap tap;                             // handed to the monitor (SCM_RIGHTS)
    MacAddress guest_mac;
    std::string vip;                     // the guest's address (its gateway is the tap)
    std::string console_log;             // file the monitor appends the console to
};

struct MonitorHandle {
    pid_t pid = 0;
    std::string control_socket;  // path under the runtime dir, for re-adoption
};

struct SnapshotRequest {
    SnapshotKind kind = SnapshotKind::kGolden;
    std::string dir;       // where to write it (the monitor renames into place)
    std::string base_dir;  // kDiff: the snapshot it is a diff against
};

struct MonitorEvent {
    enum class Type : uint8_t {
        kGuestReady,       // a freshly booted guest called `ready` (init done)
        kRunning,          // a restored guest is about to run: frames written into its
                           // tap now are what its first poll reads
        kFirstHypercall,   // a restored guest made its first hypercall (timing only)
        kSnapshotWritten,  // `dir` is complete and renamed into place
        kSnapshotFailed,
        kExited,           // the monitor is gone (stopped, crashed, killed), or it
                           // refused the boot/restore (it is being stopped)
    };
    Type type = Type::kExited;
    ReplicaId replica = 0;
    std::string detail;  // exit reason or error text
    int exit_status = 0;
    SnapshotKind snapshot_kind = SnapshotKind::kGolden;  // kSnapshotWritten: what was written
    std::string snapshot_dir;                             // kSnapshotWritten
    // The monitor's own CLOCK_MONOTONIC stamps (0 when unknown): kRunning: when it
    // read the restore command and when the guest was entered; kFirstHypercall:
    // the guest's first hypercall.
    uint64_t command_ns = 0;
    uint64_t guest_ns = 0;
};

class MonitorEventSink {
public:
    virtual ~MonitorEventSink() = default;
    virtual void on_monitor_event(const MonitorEvent &event) = 0;
};

class MonitorPool {
public:
    virtual ~MonitorPool() = default;
    // Hands the request to a pre-forked monitor (boot an image, or restore a
    // snapshot chain). Returns once the monitor has accepted it.
    virtual Result<MonitorHandle> launch(LaunchRequest request) = 0;
    // Asks the replica's monitor to write a snapshot (pausing the guest meanwhile).
    virtual Status snapshot(ReplicaId replica, const SnapshotRequest &request) = 0;
    // Asks the replica's monitor to stop; kExited follows.
    virtual Status stop(ReplicaId replica) = 0;
    // After a wispd restart: re-attaches the monitors of `known` replicas that are
    // still alive (through their control sockets) and returns their ids; the others
    // are gone and the caller forgets them.
    virtual std::vector<ReplicaId> adopt(const std::vector<ReplicaRecord> &known) = 0;
    // Pre-forked monitors waiting for work (for status and metrics).
    virtual size_t idle_monitors() const = 0;
    // A snapshot future wakes restore: open its files now and warm the page cache,
    // so the wake itself opens and reads nothing.
    virtual void keep_snapshot(const std::string &dir) = 0;
    // The snapshot directory is about to be deleted: drop what was kept open for it.
    virtual void release_snapshot(const std::string &dir) = 0;
};

// ---- replaying buffered frames --------------------------------------------------

// Where replayed packets go: the replica's tap, addressed like the data plane
// addresses forwarded frames (from the tap's MAC to the guest's).
struct ReplayTarget {
    int tap_ifindex = 0;
    MacAddress guest_mac;
    MacAddress tap_mac;
};

class FrameInjector {
public:
    virtual ~FrameInjector() = default;
    // Sends the IP packets, in order, into the tap, each behind an Ethernet header
    // for `to`, so that the guest reads them as if the data plane had forwarded them.
    virtual Status inject(const ReplayTarget &to, const std::vector<std::vector<uint8_t>> &packets) = 0;
};

}  // namespace wisp::wispd
