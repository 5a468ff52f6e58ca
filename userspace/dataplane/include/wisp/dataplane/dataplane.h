// wisp::dataplane::Dataplane — the loaded data plane (bpf/wisp_dataplane.bpf.c):
// its pinned maps, its two programs, their attachments, and the wake-event ring.
//
// Lifecycle (what wispd does):
//   auto dp = Dataplane::open({.pin_root = "/sys/fs/bpf/wisp"});   // create or re-open
//   dp->attach_uplink(uplink_ifindex);        // XDP wisp_ingress (libxdp)
//   dp->upsert_service(key, {.id = 7});       // state ZERO: first SYN wakes it
//   epoll on dp->event_fd(); dp->consume_events(handler) -> WAKE for service 7
//   dp->attach_tap(tap); dp->set_replica(3, {...READY...});
//   dp->upsert_service(key, {.id = 7, .state = ready, .replicas = {3}});
//   inject_frame(tap, replay_frame(event, guest_mac, tap_mac));
//
// Destroying a Dataplane releases this process's handles only: attached programs and
// pinned maps stay, so forwarding continues while wispd restarts. A new open() with
// the same pin root finds the same maps and entries (reused_pins() is true), and
// attach_uplink()/attach_tap() atomically swap in the freshly loaded programs.
// detach_uplink(), detach_tap() and unpin() undo everything.
//
// Not thread-safe: one owner (wispd's event loop) calls it.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "wisp/dataplane/types.h"
#include "wisp/result.h"
#include "wisp_abi.h"

namespace wisp::dataplane {

// Map sizes used when the maps are created; existing pins keep their own sizes.
struct MapSizes {
    uint32_t services = 1024;
    uint32_t replicas = 4096;  // replica ids are 1 .. replicas-1
    uint32_t flows = 262144;   // LRU: idle flows are evicted beyond this
    uint32_t taps = 4096;
    uint32_t event_bytes = 1u << 20;  // ring buffer, a power of two >= page size
};

struct Options {
    std::string pin_root = WISP_DEFAULT_PIN_ROOT;
    MapSizes sizes;
    uint32_t capture_limit = WISP_CAPTURE_MAX;  // bytes of a frame kept in a wake record
    // Per-CPU flow cache in front of the flow table (a power of two; 48 bytes each).
    uint32_t flow_cache_slots = 8192;
};

enum class XdpMode { native, generic };

// The maps, for diagnostics and tests (bpftool, raw lookups); typed, never by name.
enum class Map { services, replicas, replica_stats, flows, taps, ports, events, stats };

using EventHandler = std::function<void(const Event &)>;

class Dataplane {
  public:
    // Loads the programs with their maps pinned under options.pin_root, creating the
    // directory and maps, or re-using the pins that are there.
    static Result<std::unique_ptr<Dataplane>> open(const Options &options = {});
    ~Dataplane();
    Dataplane(const Dataplane &) = delete;
    Dataplane &operator=(const Dataplane &) = delete;

    const std::string &pin_root() const;
    // True when open() found existing pins (a restart), false when it created them.
    bool reused_pins() const;
    const MapSizes &sizes() const;  // the sizes in effect

    // --- attachments -----------------------------------------------------------
    // Attaches wisp_ingress to the uplink through libxdp, in native mode, falling back
    // to generic (skb) mode when the driver has no native XDP and `mode` allows it
    // (native). When a wisp_ingress using these same maps is already attached (a
    // restart), it is replaced atomically. Another program there: EEXIST.
    Result<XdpMode> attach_uplink(uint32_t ifindex, XdpMode mode = XdpMode::native);
    // Detaches a wisp_ingress that uses these maps (also one a previous process
    // attached). ENOENT when there is none.
    Status detach_uplink(uint32_t ifindex);
    // Attaches wisp_tap_in to the tap's TC ingress (creating its clsact qdisc),
    // replacing an earlier wisp_tap_in atomically.
    Status attach_tap(uint32_t ifindex);
    Status detach_tap(uint32_t ifindex);

    // --- services --------------------------------------------------------------
    // Creates or replaces a service (atomically, as one map value). Maintains the port
    // filter so host traffic to other ports skips the service lookup.
    Status upsert_service(const ServiceKey &key, const Service &service);
    Status remove_service(const ServiceKey &key);
    // Read-modify-write of the state alone. ENOENT for an unknown service.
    Status set_service_state(const ServiceKey &key, ServiceState state);
    Result<Service> lookup_service(const ServiceKey &key) const;
    Result<std::vector<std::pair<ServiceKey, Service>>> list_services() const;

    // --- replicas --------------------------------------------------------------
    // Writes replica `id` (1 .. sizes().replicas-1) and maps its tap to it. A new use
    // of the id (it was FREE, or its tap/addresses/service changed) gets a new
    // generation — flows still pointing at the previous use are re-picked — and
    // zeroed counters. Returns the generation.
    Result<uint32_t> set_replica(uint32_t id, const Replica &replica);
    Status set_replica_state(uint32_t id, ReplicaState state);
    // Marks the id FREE and unmaps its tap; its flows are re-picked on their next
    // packet.
    Status remove_replica(uint32_t id);
    Result<Replica> lookup_replica(uint32_t id) const;
    Result<ReplicaCounters> replica_counters(uint32_t id) const;
    // The counters of replicas first .. first+count-1 in ONE batched map read
    // (bpf_map_lookup_batch), for callers that watch many replicas every few ms:
    // out[i] is replica first+i. Ids past the map's end are not read (out is
    // shorter). Reuses `out`'s and an internal buffer's memory between calls.
    Status replica_counters_range(uint32_t first, uint32_t count,
                                  std::vector<ReplicaCounters> &out) const;

    // The flow-table entry of a flow, if any.
    Result<std::optional<wisp_flow>> lookup_flow(const wisp_flow_key &key) const;

    Result<Statistics> statistics() const;

    // --- wake events -------------------------------------------------------------
    // Readable (EPOLLIN) when records are waiting. Owned by the Dataplane.
    int event_fd() const;
    // Calls `handler` for every waiting record, without blocking; returns how many.
    // The handler must not throw.
    Result<int> consume_events(const EventHandler &handler);

    // --- teardown and low-level access -----------------------------------------
    // Removes the pins (and the pin root, if empty). Attached programs keep their
    // maps until they are detached.
    Status unpin();
    int map_fd(Map map) const;
    int xdp_program_fd() const;  // wisp_ingress, as loaded by this process
    int tap_program_fd() const;  // wisp_tap_in

    struct Impl;

  private:
    explicit Dataplane(std::unique_ptr<Impl> impl);
    std::unique_ptr<Impl> impl_;
};

}  // namespace wisp::dataplane
