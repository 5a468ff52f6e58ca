#include "wispd/autoscaler.h"

#include <algorithm>
#include <cmath>

namespace wisp::wispd {

namespace {

// Replicas that serve or are about to: a restore in flight is capacity already,
// otherwise every tick of a restore would ask for it again.
bool is_capacity(ReplicaState s) {
    return s == ReplicaState::kReady || s == ReplicaState::kRestoring ||
           s == ReplicaState::kBooting;
}

bool is_starting(ReplicaState s) {
    return s == ReplicaState::kRestoring || s == ReplicaState::kBooting;
}

// The replicas `demand` (in replicas' worth of load) needs. A hair of tolerance so
// that exactly 3.0 targets' worth of load, computed in floating point, is 3.
uint32_t replicas_for(double demand) {
    if (!(demand > 1e-9)) return 0;
    double n = std::ceil(demand - 1e-9);
    return n >= 4e9 ? 4'000'000'000u : uint32_t(n);
}

AutoscalePolicy normalised(AutoscalePolicy p) {
    p.stable_window_ns = std::max<uint64_t>(p.stable_window_ns, 1'000'000);
    p.stable_segments = std::clamp<uint32_t>(p.stable_segments, 1, Autoscaler::kMaxSegments);
    p.panic_window_ns = std::clamp<uint64_t>(p.panic_window_ns, 1, p.stable_window_ns);
    if (!(p.panic_threshold >= 1.0)) p.panic_threshold = 1.0;
    if (!(p.scale_in_utilization > 0.0 && p.scale_in_utilization <= 1.0))
        p.scale_in_utilization = 1.0;
    return p;
}

}  // namespace

const char *to_string(LoadSignal s) {
    switch (s) {
        case LoadSignal::kNewFlowRate: return "new_flow_rate";
        case LoadSignal::kConcurrency: return "concurrency";
    }
    return "unknown";
}

const char *to_string(ScaleReason r) {
    switch (r) {
        case ScaleReason::kHold: return "hold";
        case ScaleReason::kScaleOut: return "scale_out";
        case ScaleReason::kPanic: return "panic";
        case ScaleReason::kScaleIn: return "scale_in";
        case ScaleReason::kCooldown: return "cooldown";
        case ScaleReason::kBounds: return "bounds";
    }
    return "unknown";
}

std::optional<LoadSignal> parse_load_signal(std::string_view s) {
    if (s == "new_flow_rate") return LoadSignal::kNewFlowRate;
    if (s == "concurrency") return LoadSignal::kConcurrency;
    return std::nullopt;
}

AutoscaleParams autoscale_params(const ServiceSpec &spec) {
    return {spec.min_replicas, spec.max_replicas, spec.target_per_replica, spec.stateful,
            LoadSignal::kNewFlowRate};
}

Autoscaler::Autoscaler(AutoscalePolicy policy)
    : policy_(normalised(policy)),
      segment_ns_(std::max<uint64_t>(1, policy_.stable_window_ns / policy_.stable_segments)) {}

void Autoscaler::forget(ServiceId service) { services_.erase(service); }

void Autoscaler::restart(History &h, LoadSignal signal, uint64_t now_ns) const {
    std::vector<ReplicaSlot> slots = std::move(h.slots);  // keep the allocation
    slots.clear();
    h = History{};
    h.slots = std::move(slots);
    h.signal = signal;
    h.first_ns = h.last_ns = now_ns;
    h.panic[0] = {now_ns, 0};
    h.panic_count = 1;
    h.segments[0] = {now_ns, 0};
    h.segment_count = 1;
}

Autoscaler::ReplicaSlot *Autoscaler::slot_for(History &h, ReplicaId id, size_t index) {
    // Keeps slots[i] for replicas[i]: in the steady state the controller lists the
    // replicas in the same order every tick and this is one comparison.
    if (index < h.slots.size() && h.slots[index].id == id) return &h.slots[index];
    auto found = std::find_if(h.slots.begin() + std::min(index, h.slots.size()), h.slots.end(),
                              [id](const ReplicaSlot &s) { return s.id == id; });
    if (found == h.slots.end()) {
        h.slots.push_back(ReplicaSlot{.id = id});
        found = h.slots.end() - 1;
    }
    if (index < h.slots.size()) std::iter_swap(h.slots.begin() + index, found);
    return &h.slots[index];
}

void Autoscaler::absorb(History &h, std::span<const ReplicaLoad> replicas, uint64_t now_ns) {
    ++h.ticks;
    uint64_t flows = 0;
    uint64_t open = 0;
    for (size_t i = 0; i < replicas.size(); ++i) {
        const ReplicaLoad &r = replicas[i];
        ReplicaSlot &slot = *slot_for(h, r.id, i);
        if (slot.seen_tick == 0) {
            // First sight: its counters so far belong to before this history.
            slot.new_flows = r.new_flows;
            slot.in_packets = slot.packets_at_segment = r.in_packets;
        }
        // A counter that went down was zeroed (the id was reused): all of it is new.
        flows += r.new_flows >= slot.new_flows ? r.new_flows - slot.new_flows : r.new_flows;
        if (r.in_packets < slot.in_packets) slot.packets_at_segment = slot.packets_last_segment = 0;
        slot.new_flows = r.new_flows;
        slot.in_packets = r.in_packets;
        slot.seen_tick = h.ticks;
        open += r.active_flows;
    }
    h.slots.resize(replicas.size());  // the replicas not listed are gone
    // The signal as a cumulative quantity, so every window is one subtraction:
    // flows, or open flows integrated over time (flow-ns).
    h.cumulative += h.signal == LoadSignal::kNewFlowRate ? flows : open * (now_ns - h.last_ns);
    h.last_ns = now_ns;
}

void Autoscaler::record(History &h, uint64_t now_ns) const {
    const Sample now{now_ns, h.cumulative};
    // Panic ring: samples at least 1/8 of the window apart, so 16 of them always
    // reach back past one window however fast the loop ticks.
    uint64_t spacing = std::max<uint64_t>(1, policy_.panic_window_ns / 8);
    if (now_ns - h.panic[h.panic_head].at_ns >= spacing) {
        h.panic_head = (h.panic_head + 1) % kPanicSamples;
        h.panic[h.panic_head] = now;
        h.panic_count = std::min(h.panic_count + 1, kPanicSamples);
    }
    // Segments close on the first tick past their length; the next one starts
    // there (ticks are not aligned to segments).
    if (now_ns - h.segments[h.segment_head].at_ns < segment_ns_) return;
    h.segment_head = (h.segment_head + 1) % (kMaxSegments + 1);
    h.segments[h.segment_head] = now;
    h.segment_count = std::min(h.segment_count + 1, kMaxSegments + 1);
    h.closed.valid_until_ns = 0;
    for (ReplicaSlot &slot : h.slots) {
        slot.packets_last_segment = slot.in_packets - slot.packets_at_segment;
        slot.packets_at_segment = slot.in_packets;
    }
}

double Autoscaler::mean(const History &h, Window w) const {
    if (w.ns == 0) return 0;
    return h.signal == LoadSignal::kNewFlowRate ? w.amount * 1e9 / double(w.ns)
                                                : w.amount / double(w.ns);
}

double Autoscaler::surely(const History &h, Window w, double sigmas) const {
    // Open flows are counted, not sampled: no noise to take off.
    if (h.signal != LoadSignal::kNewFlowRate) return mean(h, w);
    double sure = w.amount - sigmas * std::sqrt(w.amount);
    return mean(h, {std::max(0.0, sure), w.ns});
}

// Stable: from the oldest segment that began inside the window (the window is then
// between W - W/segments and W long; shorter while the history is young). Busiest:
// over every segment that overlaps the window, so a scale-in waits until the last
// busy segment has left it entirely.
void Autoscaler::refresh_closed(History &h, uint64_t now_ns) const {
    const uint64_t window = policy_.stable_window_ns;
    const uint32_t ring = kMaxSegments + 1;
    ClosedSegments c;
    c.stable_from = h.segments[h.segment_head];
    c.valid_until_ns = UINT64_MAX;
    const Sample *newer = &h.segments[h.segment_head];
    for (uint32_t k = 1; k < h.segment_count && newer->at_ns + window > now_ns; ++k) {
        const Sample &start = h.segments[(h.segment_head + ring - k) % ring];
        const Window segment{double(newer->cumulative - start.cumulative),
                             newer->at_ns - start.at_ns};
        c.any = true;
        c.busiest = std::max(c.busiest, mean(h, segment));
        c.surely = std::max(c.surely, surely(h, segment, policy_.confidence_sigmas));
        c.valid_until_ns = std::min(c.valid_until_ns, newer->at_ns + window);  // it leaves
        if (start.at_ns + window / 2 >= now_ns) {
            c.recent = std::max(c.recent, mean(h, segment));
            c.valid_until_ns = std::min(c.valid_until_ns, start.at_ns + window / 2 + 1);
        }
        if (start.at_ns + window >= now_ns) {
            c.stable_from = start;
            c.valid_until_ns = std::min(c.valid_until_ns, start.at_ns + window + 1);
        }
        newer = &start;
    }
    h.closed = c;
}

Autoscaler::Windows Autoscaler::windows(History &h, uint64_t now_ns) const {
    auto since = [&](const Sample &from) {
        return Window{double(h.cumulative - from.cumulative), now_ns - from.at_ns};
    };
    if (now_ns >= h.closed.valid_until_ns) refresh_closed(h, now_ns);
    Windows w;
    w.busiest = h.closed.busiest;
    w.busiest_surely = h.closed.surely;
    w.busiest_recent = h.closed.recent;
    w.stable = since(h.closed.stable_from);
    // The open segment counts once it is half long: shorter ones are mostly noise.
    // With nothing closed yet (a young history), the whole history counts.
    const Sample &open = h.segments[h.segment_head];
    Window partial = since(open);
    if (now_ns - open.at_ns < segment_ns_ / 2) {
        if (h.closed.any) partial.ns = 0;
        else partial = w.stable;
    }
    if (partial.ns > 0) {
        double m = mean(h, partial);
        w.busiest = std::max(w.busiest, m);
        w.busiest_recent = std::max(w.busiest_recent, m);
        w.busiest_surely =
            std::max(w.busiest_surely, surely(h, partial, policy_.confidence_sigmas));
    }

    // Panic: the sample nearest to one window ago, if at least half a window old.
    const Sample *from = nullptr;
    uint64_t best = UINT64_MAX;
    for (uint32_t k = 0; k < h.panic_count; ++k) {
        const Sample &s = h.panic[(h.panic_head + kPanicSamples - k) % kPanicSamples];
        uint64_t age = now_ns - s.at_ns;
        if (age < policy_.panic_window_ns / 2) continue;
        uint64_t off = age > policy_.panic_window_ns ? age - policy_.panic_window_ns
                                                     : policy_.panic_window_ns - age;
        if (off < best) {
            best = off;
            from = &s;
        }
    }
    if (from) w.panic = since(*from);
    return w;
}

void Autoscaler::choose_drain(const History &h, const AutoscaleParams &params,
                              std::span<const ReplicaLoad> replicas, uint32_t count) {
    candidates_.clear();
    for (size_t i = 0; i < replicas.size(); ++i) {
        const ReplicaLoad &r = replicas[i];
        if (!is_capacity(r.state)) continue;
        const ReplicaSlot &slot = h.slots[i];  // absorb() lined them up
        uint64_t packets = slot.packets_last_segment + (slot.in_packets - slot.packets_at_segment);
        uint64_t activity =
            params.signal == LoadSignal::kConcurrency
                ? (uint64_t{r.active_flows} << 32) | std::min<uint64_t>(packets, UINT32_MAX)
                : packets;
        candidates_.push_back({is_starting(r.state), activity, r.started_ns, r.id});
    }
    // Starting replicas first (no flow to wait for), then the least busy, then the
    // newest: draining waits for a replica's flows to go idle, so the fewer it has,
    // the sooner its memory is back.
    auto first = [](const Candidate &a, const Candidate &b) {
        if (a.starting != b.starting) return a.starting;
        if (a.activity != b.activity) return a.activity < b.activity;
        if (a.started_ns != b.started_ns) return a.started_ns > b.started_ns;
        return a.id > b.id;
    };
    count = std::min<uint32_t>(count, uint32_t(candidates_.size()));
    std::partial_sort(candidates_.begin(), candidates_.begin() + count, candidates_.end(), first);
    drain_.clear();
    for (uint32_t i = 0; i < count; ++i) drain_.push_back(candidates_[i].id);
}

ScaleDecision Autoscaler::tick(ServiceId service, const AutoscaleParams &params,
                               std::span<const ReplicaLoad> replicas, uint64_t now_ns) {
    auto [it, inserted] = services_.try_emplace(service);
    History &h = it->second;
    if (inserted || h.signal != params.signal || now_ns < h.last_ns ||
        now_ns - h.last_ns > policy_.stable_window_ns)
        restart(h, params.signal, now_ns);
    absorb(h, replicas, now_ns);
    record(h, now_ns);
    const Windows w = windows(h, now_ns);

    uint32_t capacity = 0;
    for (const ReplicaLoad &r : replicas) capacity += is_capacity(r.state) ? 1 : 0;
    // Growth from any source (our scale-outs landing, a wake) restarts the cooldown.
    if (capacity > h.last_capacity) h.last_scale_out_ns = now_ns;
    h.last_capacity = capacity;

    const uint32_t lo = params.min_replicas;
    const uint32_t hi = std::max(params.min_replicas, params.max_replicas);
    ScaleDecision d;
    d.current = capacity;
    d.stable_load = mean(h, w.stable);
    d.panic_load = w.panic.ns ? mean(h, w.panic) : -1;

    uint32_t want = capacity;
    ScaleReason reason = ScaleReason::kHold;
    if (params.target_per_replica > 0) {
        const double target = params.target_per_replica;
        auto needed = [&](double load) { return replicas_for(load / target); };
        const double sigmas = policy_.confidence_sigmas;
        const double growth = policy_.panic_growth_sigmas;
        const bool panic_now = w.panic.ns > 0 && surely(h, w.panic, sigmas) / target >=
                                                     policy_.panic_threshold *
                                                         std::max<uint32_t>(capacity, 1);
        if (panic_now) {
            h.panic_until_ns = now_ns + policy_.stable_window_ns;
            h.panic_anchor = {now_ns, h.cumulative};
        }
        d.panicking = now_ns < h.panic_until_ns;

        // Normal scale-out: to what the busiest segment of the stable window, or the
        // whole window (small overloads only show in many flows), surely needs. The
        // busiest of ten segments is a high draw; its sure part is not. Only once the
        // history holds a segment: before that (a fresh wake) a few flows would read
        // as a rate.
        const bool has_segment = now_ns - h.first_ns >= segment_ns_;
        const uint32_t out = has_segment ? std::max({capacity, needed(w.busiest_surely),
                                                     needed(surely(h, w.stable, sigmas))})
                                         : capacity;
        uint32_t panic_out = capacity;
        if (panic_now) {
            // A step: as many replicas as the panic window likely needs, at once
            // (likely, not its average: a trigger is more often a high draw).
            panic_out = std::max(capacity, needed(surely(h, w.panic, growth)));
        } else if (d.panicking) {
            // Still in panic: grow with what the panic window surely holds, and with
            // the load since the trigger, which is all after the step (the trigger's
            // own window may have been half before it) and gets surer as it grows.
            panic_out = std::max(capacity, needed(surely(h, w.panic, sigmas)));
            Window since_step{double(h.cumulative - h.panic_anchor.cumulative),
                              now_ns - h.panic_anchor.at_ns};
            if (since_step.ns >= policy_.panic_window_ns)
                panic_out = std::max(panic_out, needed(surely(h, since_step, growth)));
        }
        if (panic_out > capacity && panic_out >= out) {
            want = panic_out;
            reason = ScaleReason::kPanic;
        } else if (out > capacity) {
            want = out;
            reason = ScaleReason::kScaleOut;
        } else if (!d.panicking) {
            // Size for the busiest segment at a lower utilisation than the target:
            // load must fall clearly below what fewer replicas carry. And only once
            // it has settled: while the newer half of the window asks for fewer than
            // the whole, the load is still falling, and one step down later beats a
            // staircase now.
            const double utilisation = policy_.scale_in_utilization;
            const uint32_t in = std::max(lo, needed(w.busiest / utilisation));
            if (in < capacity) {
                const bool settled_low = std::max(lo, needed(w.busiest_recent / utilisation)) == in;
                const bool evidence =
                    now_ns - h.first_ns >= policy_.stable_window_ns && settled_low;
                const bool cooled = now_ns - h.last_scale_out_ns >= policy_.scale_in_cooldown_ns;
                const bool paced =
                    !params.stateful || h.last_scale_in_ns == 0 ||
                    now_ns - h.last_scale_in_ns >= policy_.stateful_drain_interval_ns;
                if (evidence && cooled && paced) {
                    want = params.stateful ? capacity - 1 : in;
                    reason = ScaleReason::kScaleIn;
                } else {
                    reason = ScaleReason::kCooldown;
                }
            }
        }
    }

    const uint32_t bounded = std::clamp(want, lo, hi);
    if (bounded != want && (want == capacity || (bounded > capacity) != (want > capacity)))
        reason = ScaleReason::kBounds;  // the bounds overrule the load
    if (bounded == capacity && reason != ScaleReason::kCooldown) reason = ScaleReason::kHold;
    d.desired = bounded;
    d.reason = reason;

    if (bounded > capacity) h.last_scale_out_ns = now_ns;
    drain_.clear();
    if (bounded < capacity) {
        h.last_scale_in_ns = now_ns;
        choose_drain(h, params, replicas, capacity - bounded);
    }
    d.drain = drain_;
    return d;
}

}  // namespace wisp::wispd
