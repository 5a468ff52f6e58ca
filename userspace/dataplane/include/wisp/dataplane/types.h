// Value types of the data-plane API: addresses, services, replicas, counters and
// ring-buffer events, in C++ terms. Conversion to and from the map structs of
// bpf/wisp_abi.h happens only inside the library.
#pragma once

#include <array>
#include <compare>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "wisp/result.h"
#include "wisp_abi.h"

namespace wisp::dataplane {

using Mac = std::array<uint8_t, 6>;

Result<Mac> parse_mac(std::string_view text);  // "02:00:00:00:00:01"
std::string format_mac(const Mac &mac);

// An IPv6 address, or an IPv4 address in its IPv4-mapped form (::ffff:a.b.c.d): the
// data plane's one 16-byte address format.
class IpAddress {
  public:
    IpAddress() = default;  // ::
    explicit IpAddress(const std::array<uint8_t, 16> &bytes) : bytes_(bytes) {}

    // "198.18.0.1" or "2001:db8::1".
    static Result<IpAddress> parse(std::string_view text);
    // `addr` in network byte order, as in struct in_addr.
    static IpAddress from_ipv4(uint32_t addr);

    bool is_ipv4() const;
    // For IPv4 addresses: network byte order.
    uint32_t ipv4() const;
    const std::array<uint8_t, 16> &bytes() const { return bytes_; }
    std::string to_string() const;

    auto operator<=>(const IpAddress &) const = default;

  private:
    std::array<uint8_t, 16> bytes_{};
};

enum class Protocol : uint8_t { tcp = 6, udp = 17 };

enum class ServiceState : uint32_t {
    zero = WISP_SERVICE_ZERO,
    waking = WISP_SERVICE_WAKING,
    ready = WISP_SERVICE_READY,
    draining = WISP_SERVICE_DRAINING,
};

enum class ReplicaState : uint32_t {
    free = WISP_REPLICA_FREE,
    starting = WISP_REPLICA_STARTING,
    ready = WISP_REPLICA_READY,
    draining = WISP_REPLICA_DRAINING,
};

enum class EventType : uint32_t {
    wake = WISP_EVENT_WAKE,
    buffered = WISP_EVENT_BUFFERED,
};

const char *to_string(ServiceState state);
const char *to_string(ReplicaState state);
const char *to_string(EventType type);
// The statistic's name as operators see it ("forwarded", "ringbuf_full", ...).
const char *stat_name(wisp_stat stat);

// Where a service listens.
struct ServiceKey {
    IpAddress vip;
    uint16_t port = 0;  // host byte order
    Protocol protocol = Protocol::tcp;

    auto operator<=>(const ServiceKey &) const = default;
};

struct Service {
    uint32_t id = 0;
    ServiceState state = ServiceState::zero;
    std::vector<uint32_t> replicas;  // at most WISP_REPLICA_SLOTS ids, none 0
};

struct Replica {
    uint32_t service_id = 0;
    ReplicaState state = ReplicaState::starting;
    uint32_t tap_ifindex = 0;     // where frames for the guest go
    uint32_t egress_ifindex = 0;  // where the guest's replies leave (the uplink)
    Mac guest_mac{};
    Mac host_mac{};     // source MAC of frames to the guest: its gateway (the tap's MAC)
    IpAddress vip;      // the address the guest answers from
    uint16_t port = 0;  // host byte order
    Protocol protocol = Protocol::tcp;
    // Output only: set by Dataplane::set_replica, new for every new use of an id.
    uint32_t generation = 0;
};

// Per-replica traffic, summed over CPUs. "in" is toward the guest, "out" from it.
// Timestamps are CLOCK_MONOTONIC_COARSE nanoseconds (0 = never): compare them with
// monotonic_now_ns(); they lag real time by at most one scheduler tick.
struct ReplicaCounters {
    uint64_t in_packets = 0;
    uint64_t in_bytes = 0;
    uint64_t out_packets = 0;
    uint64_t out_bytes = 0;
    uint64_t new_flows = 0;
    uint64_t last_in_ns = 0;
    uint64_t last_out_ns = 0;
    uint64_t spoofed = 0;

    uint64_t last_activity_ns() const {
        return last_in_ns > last_out_ns ? last_in_ns : last_out_ns;
    }
};

// The global counters, summed over CPUs, indexed by enum wisp_stat.
struct Statistics {
    std::array<uint64_t, WISP_STAT_MAX> values{};
    uint64_t operator[](wisp_stat stat) const { return values.at(stat); }
};

// One ring-buffer record. `frame` points into the ring buffer and is valid only
// during the callback that receives the event.
struct Event {
    EventType type = EventType::wake;
    uint32_t service_id = 0;
    uint64_t timestamp_ns = 0;  // CLOCK_MONOTONIC
    uint32_t ifindex = 0;       // where the frame arrived
    uint32_t orig_len = 0;      // length on the wire
    uint16_t l3_offset = 0;     // IP header offset inside `frame`
    uint16_t l3_proto = 0;      // ETH_P_IP or ETH_P_IPV6
    std::span<const uint8_t> frame;

    bool truncated() const { return frame.size() < orig_len; }
};

// clock_gettime(CLOCK_MONOTONIC) in nanoseconds: the clock of every data-plane
// timestamp.
uint64_t monotonic_now_ns();

}  // namespace wisp::dataplane
