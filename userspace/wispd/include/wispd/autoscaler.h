// The autoscaling policy: from the data plane's per-replica counters to a desired
// replica count per service, the reason for it, and which replicas to drain when
// the count goes down.
//
// Pure logic (no clocks, no kernel calls): the daemon's fast loop (period <= 5 ms)
// reads the counters, calls tick() for each service it autoscales with the current
// CLOCK_MONOTONIC time, then starts `desired - current` restores in parallel or
// drains the replicas in `drain`. Rules and defaults: docs/autoscale.md.
//
// Cost per tick: O(replicas of the service) plus a constant (a scan of <= 16 panic
// samples; the closed segments of the stable window are re-read only when one
// closes or leaves it). Memory (~1 KiB per service, 48 bytes per replica) is
// allocated when a service is first seen and when its replica list grows past what
// it had; the steady state allocates nothing.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <span>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "wispd/types.h"

namespace wisp::wispd {

// What `target_per_replica` counts.
enum class LoadSignal : uint8_t {
    // New flows per second per replica, from wisp_rep_stats.new_flows. Exact from
    // the counters the data plane keeps today, and it is the load the data plane
    // can actually move: only new flows are spread over replicas (flow affinity).
    kNewFlowRate,
    // Open flows per replica at once, from ReplicaLoad::active_flows (the caller's
    // estimate; the data plane keeps no open-flow gauge yet, see docs/autoscale.md).
    kConcurrency,
};

// Why the desired count is what it is.
enum class ScaleReason : uint8_t {
    kHold,      // desired == current
    kScaleOut,  // the stable window (its busiest segment, or all of it) surely needs more
    kPanic,     // the panic window surely needs >= panic_threshold x current: jump now,
                // and keep growing with the load since the step while panic lasts
    kScaleIn,   // the stable window shows less load, settled, cooldown over: drain some
    kCooldown,  // less load, but the cooldown, the stable window or the settling is
                // not over: hold
    kBounds,    // current is outside [min, max] (a changed or pinned count): clamp
};

const char *to_string(LoadSignal s);
const char *to_string(ScaleReason r);
std::optional<LoadSignal> parse_load_signal(std::string_view s);

// Tunables shared by every service. The defaults are argued in docs/autoscale.md.
struct AutoscalePolicy {
    // Normal scale-out and scale-in look at this much history; scale-in needs a
    // full window of it; panic mode lasts this long after its last trigger.
    uint64_t stable_window_ns = 1'000'000'000;
    // The stable window is kept as this many segments (1..32). Decisions size for
    // the busiest segment, not the average, so bursts longer than a segment keep
    // their capacity.
    uint32_t stable_segments = 10;
    // The short window that catches steps.
    uint64_t panic_window_ns = 10'000'000;
    // Panic when the panic window's load needs >= this many times the current count.
    double panic_threshold = 2.0;
    // kNewFlowRate: the panic window's rate counts only as far as it stays with this
    // many standard deviations of Poisson noise taken off its flow count
    // (n - sigmas * sqrt(n)). 10 ms hold few flows, and the rule is asked 200 times a
    // second: with less, noise alone panics overloaded (not stepped) services.
    double confidence_sigmas = 3.0;
    // In panic, the load since the step grows the count further with this many
    // sigmas taken off: its window only grows, so a small margin keeps noise from
    // adding replicas while it still converges on the new level in tens of ms.
    double panic_growth_sigmas = 1.0;
    // Scale in only to a count that would run at <= this fraction of the target at
    // the busiest segment of the stable window (hysteresis against flapping).
    double scale_in_utilization = 0.8;
    // No scale-in until this long after the last scale-out (wakes included).
    uint64_t scale_in_cooldown_ns = 2'000'000'000;
    // Stateful services drain one replica at a time, this far apart: each drained
    // replica writes a snapshot before it stops.
    uint64_t stateful_drain_interval_ns = 250'000'000;
};

// One service's settings, as the policy needs them.
struct AutoscaleParams {
    uint32_t min_replicas = 0;
    uint32_t max_replicas = 1;
    // 0: no load-driven scaling (wake-driven only); min and max still hold.
    uint32_t target_per_replica = 0;
    bool stateful = false;
    LoadSignal signal = LoadSignal::kNewFlowRate;
};

// The params of a service spec (signal: kNewFlowRate).
AutoscaleParams autoscale_params(const ServiceSpec &spec);

// One replica of the service as the fast loop sees it this tick. List every
// replica the controller knows, draining ones too (their flows are still load).
struct ReplicaLoad {
    ReplicaId id = 0;
    ReplicaState state = ReplicaState::kReady;
    // Cumulative counters of wisp_rep_stats (summed over CPUs). They may restart at
    // zero when an id is reused: a counter going down is read as a reset.
    uint64_t new_flows = 0;
    uint64_t in_packets = 0;
    // kConcurrency: the caller's estimate of open flows on this replica now.
    uint32_t active_flows = 0;
    // When the replica was launched (any clock; only compared with its siblings):
    // among equally idle replicas the newest is drained first.
    uint64_t started_ns = 0;
};

struct ScaleDecision {
    uint32_t current = 0;  // capacity: READY plus starting (booting, restoring) replicas
    uint32_t desired = 0;  // within [min, max]
    ScaleReason reason = ScaleReason::kHold;
    bool panicking = false;  // panic mode: no scale-in until it ends
    // The load the policy saw, in the signal's unit (flows/s or open flows): the
    // stable window's average, and the panic window's (-1 until the history is
    // half a panic window long). For logs and metrics.
    double stable_load = 0;
    double panic_load = -1;
    // Exactly current - desired replicas (READY or starting) when desired < current,
    // else empty. Valid until the next call on this Autoscaler.
    std::span<const ReplicaId> drain;
};

// The policy's memory: per service, the load history and the counters last seen.
// Not thread-safe; the loop thread owns it.
class Autoscaler {
public:
    explicit Autoscaler(AutoscalePolicy policy = {});

    // One tick for one service: reads the replicas' counters, updates the windows
    // and returns the decision. `now_ns` must not go backwards for a service (a
    // jump back, or a gap longer than the stable window, restarts its history).
    // `replicas` may be in any order (the same order every tick keeps it O(n));
    // ids must be unique. Act on the decision before the next tick: replicas being
    // restored must appear as kRestoring/kBooting, drained ones as kDraining (or
    // not at all), or the next tick asks again.
    ScaleDecision tick(ServiceId service, const AutoscaleParams &params,
                       std::span<const ReplicaLoad> replicas, uint64_t now_ns);

    // Drops a service's history (deleted, or back at zero).
    void forget(ServiceId service);
    size_t tracked_services() const { return services_.size(); }
    const AutoscalePolicy &policy() const { return policy_; }

    static constexpr uint32_t kMaxSegments = 32;
    static constexpr uint32_t kPanicSamples = 16;

private:
    // Cumulative load: new flows (kNewFlowRate) or open flows x ns (kConcurrency).
    // Unsigned and compared only by difference, so wrapping is harmless.
    struct Sample {
        uint64_t at_ns = 0;
        uint64_t cumulative = 0;
    };
    // What the closed segments inside the stable window give. It changes only when a
    // segment closes or one leaves (part of) the window, so it is kept between ticks.
    struct ClosedSegments {
        double busiest = 0;  // largest average
        double surely = 0;   // largest lower bound (confidence_sigmas off)
        double recent = 0;   // largest average of those in the newer half
        bool any = false;
        Sample stable_from;  // the oldest segment start inside the window
        uint64_t valid_until_ns = 0;  // recompute at or after this time (0: now)
    };
    struct ReplicaSlot {
        ReplicaId id = 0;
        uint64_t new_flows = 0;
        uint64_t in_packets = 0;
        uint64_t packets_at_segment = 0;  // in_packets when the current segment began
        uint64_t packets_last_segment = 0;
        uint64_t seen_tick = 0;
    };
    struct History {
        LoadSignal signal = LoadSignal::kNewFlowRate;
        uint64_t first_ns = 0;
        uint64_t last_ns = 0;
        uint64_t ticks = 0;
        uint64_t cumulative = 0;
        std::array<Sample, kPanicSamples> panic{};  // ring, newest at panic_head
        uint32_t panic_head = 0;
        uint32_t panic_count = 0;
        // Where the segments began: the closed ones of one window, then the open
        // one (segment_head). A closed segment ends where the next one begins.
        std::array<Sample, kMaxSegments + 1> segments{};
        uint32_t segment_head = 0;
        uint32_t segment_count = 0;
        ClosedSegments closed;
        uint64_t panic_until_ns = 0;
        Sample panic_anchor;  // the tick that last triggered panic
        uint64_t last_scale_out_ns = 0;
        uint64_t last_scale_in_ns = 0;
        uint32_t last_capacity = 0;
        std::vector<ReplicaSlot> slots;
    };
    // Load added over a span of time, in the signal's cumulative unit.
    struct Window {
        double amount = 0;
        uint64_t ns = 0;  // 0: no such window yet
    };
    struct Windows {
        Window stable;
        Window panic;
        // Over the segments of the stable window: the busiest one's average, and the
        // largest lower bound (confidence_sigmas off); the busiest average of the
        // segments in its newer half.
        double busiest = 0;
        double busiest_surely = 0;
        double busiest_recent = 0;
    };

    void restart(History &h, LoadSignal signal, uint64_t now_ns) const;
    // Folds this tick's counters into the history.
    void absorb(History &h, std::span<const ReplicaLoad> replicas, uint64_t now_ns);
    void record(History &h, uint64_t now_ns) const;
    Windows windows(History &h, uint64_t now_ns) const;
    void refresh_closed(History &h, uint64_t now_ns) const;
    // A window's average load (flows/s or open flows), and the lower bound that
    // `sigmas` standard deviations of Poisson noise leave of it.
    double mean(const History &h, Window w) const;
    double surely(const History &h, Window w, double sigmas) const;
    void choose_drain(const History &h, const AutoscaleParams &params,
                      std::span<const ReplicaLoad> replicas, uint32_t count);
    ReplicaSlot *slot_for(History &h, ReplicaId id, size_t hint);

    AutoscalePolicy policy_;
    uint64_t segment_ns_ = 0;
    std::unordered_map<ServiceId, History> services_;
    // Scratch for choose_drain(), kept between ticks so scale-ins do not allocate.
    struct Candidate {
        bool starting = false;  // no flows yet: the cheapest to give up
        uint64_t activity = 0;  // open flows (kConcurrency) or recent packets in
        uint64_t started_ns = 0;
        ReplicaId id = 0;
    };
    std::vector<Candidate> candidates_;
    std::vector<ReplicaId> drain_;
};

}  // namespace wisp::wispd
