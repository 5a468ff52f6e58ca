// wispd's DataPlane port over the real data plane (userspace/dataplane/,
// bpf/wisp_dataplane.bpf.c): services and replicas in the pinned maps, TC on taps,
// the wake-event ring buffer, and the global counters for /metrics.
//
// Every call is O(1) in the number of services and replicas (one or a few map
// operations), so a wake costs the same with ten services as with ten thousand.
// The adapter remembers what it wrote (service keys, replica slots) and reads the
// maps only where the data plane itself changes them (the ZERO -> WAKING CAS) or
// after a restart (pinned entries from the previous wispd).
#pragma once

#include <memory>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "wisp/dataplane/dataplane.h"
#include "wispd/ports.h"

namespace wisp::wispd {

class BpfDataPlane final : public DataPlane {
public:
    struct Config {
        std::string pin_root;  // bpffs directory of the pins
        std::string uplink;    // the XDP program goes here; replies leave here
    };
    // Loads the data plane (re-using the pins of an earlier wispd, whose entries
    // stay intact) and attaches wisp_ingress to the uplink (atomically replacing an
    // earlier one, so forwarding never stops across a restart).
    static Result<std::unique_ptr<BpfDataPlane>> open(const Config &config);

    Status upsert_service(const DpService &service) override;
    Status set_service_state(ServiceId id, DpServiceState state) override;
    Status remove_service(ServiceId id) override;
    Status set_replicas(ServiceId id, const std::vector<DpReplica> &replicas) override;
    Status attach_tap(int ifindex, ReplicaId replica) override;
    Result<uint64_t> last_activity_ns(ReplicaId replica) override;
    Status replica_loads(std::span<const ReplicaId> ids, std::vector<DpReplicaLoad> &out) override;
    Result<std::vector<ServiceId>> list_services() override;
    std::vector<DpCounter> counters() override;
    int event_fd() override;
    Status drain_events(const std::function<void(const DpEvent &)> &sink) override;

    // Attaches the TC program to a tap. Thread-safe (it only uses the loaded
    // program): the tap pool calls it from its worker thread.
    Status attach_tap_program(int ifindex) const;

    const std::string &description() const { return description_; }
    bool reused_pins() const { return dp_->reused_pins(); }

private:
    struct ServiceEntry {
        dataplane::ServiceKey key;
        std::vector<uint32_t> slots;  // replica ids in the map value, in order
    };

    BpfDataPlane() = default;
    Result<ServiceEntry *> entry(ServiceId id);
    Status remove_replica(uint32_t id);

    std::unique_ptr<dataplane::Dataplane> dp_;
    uint32_t uplink_ifindex_ = 0;
    uint64_t stamp_resolution_ns_ = 0;  // CLOCK_MONOTONIC_COARSE tick
    std::string description_;
    std::unordered_map<ServiceId, ServiceEntry> services_;
    // Frames we could not use (truncated captures), for /metrics.
    uint64_t truncated_ = 0;
    // replica_loads() scratch, kept between ticks.
    std::vector<dataplane::ReplicaCounters> range_;
    std::vector<std::pair<ReplicaId, size_t>> by_id_;
};

}  // namespace wisp::wispd
