// The autoscaling policy (wispd/autoscaler.h) on load traces: steps, ramps, spikes,
// oscillations, the bounds, and traces recorded from a real guest behind the real
// data plane (tests/unit/traces/README.md says how each was obtained).
//
// A small simulation plays the controller: it ticks the policy every 5 ms (the
// daemon's fast-loop period), spreads each tick's new flows over the READY replicas
// like the data plane's selection does, restores replicas in a few milliseconds,
// drains the ones the policy names, and reuses replica ids (with zeroed counters)
// the way the data plane does.
#include "wispd/autoscaler.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdlib>
#include <fstream>
#include <functional>
#include <map>
#include <new>
#include <random>
#include <sstream>
#include <string>
#include <vector>

// Counts the allocations of this test binary, for the steady-state test: through
// the sanitizer's allocator hooks under ASan (which owns operator new there), by
// replacing operator new otherwise.
namespace {
std::atomic<uint64_t> g_allocations{0};
}  // namespace

#if defined(__has_feature)
#if __has_feature(address_sanitizer)
#define WISP_TEST_ASAN 1
#endif
#endif

#ifdef WISP_TEST_ASAN
#include <sanitizer/allocator_interface.h>
namespace {
void count_malloc(const volatile void *, size_t) {
    g_allocations.fetch_add(1, std::memory_order_relaxed);
}
void ignore_free(const volatile void *) {}
void count_allocations() {
    static const int installed =
        __sanitizer_install_malloc_and_free_hooks(count_malloc, ignore_free);
    ASSERT_NE(installed, 0) << "the sanitizer refused the allocation hooks";
}
}  // namespace
#else
namespace {
void count_allocations() {}  // operator new below counts from the start
}  // namespace

void *operator new(size_t n) {
    g_allocations.fetch_add(1, std::memory_order_relaxed);
    if (void *p = std::malloc(n ? n : 1)) return p;
    throw std::bad_alloc();
}
void operator delete(void *p) noexcept { std::free(p); }
void operator delete(void *p, size_t) noexcept { std::free(p); }
#endif

namespace {

using namespace wisp::wispd;

constexpr uint64_t kMs = 1'000'000;
constexpr uint64_t kSec = 1'000'000'000;
constexpr uint64_t kTick = 5 * kMs;  // the daemon's fast-loop period

// ---- traces ------------------------------------------------------------------------

// A service's load over time as cumulative new flows (kNewFlowRate), or open flows
// (kConcurrency), at points in time; linear in between, flat after the last point.
struct Trace {
    std::vector<std::pair<uint64_t, double>> points;  // (ns, value), ascending

    double at(uint64_t t) const {
        if (points.empty()) return 0;
        if (t <= points.front().first) return points.front().second;
        auto it = std::lower_bound(points.begin(), points.end(), t,
                                   [](const auto &p, uint64_t v) { return p.first < v; });
        if (it == points.end()) return points.back().second;
        auto prev = it - 1;
        double f = double(t - prev->first) / double(it->first - prev->first);
        return prev->second + f * (it->second - prev->second);
    }
    uint64_t end() const { return points.empty() ? 0 : points.back().first; }
};

// Poisson-distributed count with mean `mean`, from our own generator so the traces
// are the same with every standard library: Knuth's product method for small
// means, a normal approximation (Box-Muller) above 30.
uint64_t poisson(std::mt19937_64 &rng, double mean) {
    auto uniform = [&] { return (double(rng() >> 11) + 0.5) / double(1ull << 53); };
    if (mean <= 0) return 0;
    if (mean > 30) {
        double z = std::sqrt(-2 * std::log(uniform())) * std::cos(2 * M_PI * uniform());
        return uint64_t(std::max(0.0, std::round(mean + std::sqrt(mean) * z)));
    }
    double limit = std::exp(-mean), p = uniform();
    uint64_t k = 0;
    while (p > limit) {
        p *= uniform();
        ++k;
    }
    return k;
}

// A generated trace: arrivals of new flows at `rate(t)` flows/s, counted in 1 ms
// buckets with Poisson noise (fixed seed: every run sees the same trace).
Trace flows_at_rate(uint64_t duration, const std::function<double(uint64_t)> &rate,
                    uint64_t seed = 42) {
    std::mt19937_64 rng(seed);
    Trace t;
    double total = 0;
    t.points.push_back({0, 0});
    for (uint64_t at = kMs; at <= duration; at += kMs) {
        total += double(poisson(rng, rate(at - kMs / 2) / 1000.0));
        t.points.push_back({at, total});
    }
    return t;
}

// The formulas of the generated traces (docs/autoscale.md shows them too).
std::function<double(uint64_t)> step(double before, double after, uint64_t at) {
    return [=](uint64_t t) { return t < at ? before : after; };
}
std::function<double(uint64_t)> ramp(double from, double to, uint64_t start, uint64_t end) {
    return [=](uint64_t t) {
        if (t <= start) return from;
        if (t >= end) return to;
        return from + (to - from) * double(t - start) / double(end - start);
    };
}
std::function<double(uint64_t)> square(double low, double high, uint64_t period, uint64_t start,
                                       uint64_t stop) {
    return [=](uint64_t t) {
        if (t < start || t >= stop) return low;
        return (t - start) % period < period / 2 ? high : low;
    };
}

// A recorded trace: CSV "t_ms,new_flows,in_packets" (cumulative counters of the
// replicas, summed), as tests/unit/traces/record_load_trace writes them.
struct Recorded {
    Trace flows;
    Trace packets;
};

Recorded load_recorded(const std::string &name) {
    std::string path = std::string(WISP_AUTOSCALE_TRACES) + "/" + name;
    std::ifstream in(path);
    Recorded r;
    if (!in) {
        ADD_FAILURE() << "cannot read " << path;
        return r;
    }
    std::string line;
    uint64_t t0 = 0;
    double f0 = 0, p0 = 0;
    bool first = true;
    while (std::getline(in, line)) {
        if (line.empty() || line[0] == '#' || !std::isdigit(static_cast<unsigned char>(line[0])))
            continue;
        std::istringstream row(line);
        double ms = 0, flows = 0, packets = 0;
        char comma = 0;
        row >> ms >> comma >> flows >> comma >> packets;
        uint64_t at = uint64_t(std::llround(ms * 1e6));
        if (first) {
            t0 = at, f0 = flows, p0 = packets;
            first = false;
        }
        r.flows.points.push_back({at - t0, flows - f0});
        r.packets.points.push_back({at - t0, packets - p0});
    }
    EXPECT_GT(r.flows.points.size(), 100u) << path;
    return r;
}

// ---- the simulated controller ------------------------------------------------------

struct Decision {
    uint64_t at;
    uint32_t from;
    uint32_t to;
    ScaleReason reason;
};

class Simulation {
public:
    explicit Simulation(AutoscaleParams params, AutoscalePolicy policy = {})
        : params_(params), scaler_(policy) {}
    // `last.drain` points into the Autoscaler: moves keep it valid, copies would not.
    Simulation(const Simulation &) = delete;
    Simulation(Simulation &&) = default;

    uint64_t restore_ns = 3 * kMs;     // restore -> READY
    uint64_t drain_ns = 20 * kMs;      // DRAINING -> gone (its flows went idle)
    double packets_per_flow = 6;       // SYN, request, ACKs, FIN
    bool wake_from_zero = true;        // a flow at a service at zero starts a replica

    // Starts `n` READY replicas at time 0 (the service was already running).
    void start_ready(uint32_t n) {
        for (uint32_t i = 0; i < n; ++i) add(ReplicaState::kReady, 0);
    }

    // Plays `load` (cumulative flows, or open flows with kConcurrency) from `from`
    // to `to`, one tick per kTick.
    void run(const Trace &load, uint64_t from, uint64_t to) {
        for (uint64_t t = from; t <= to; t += kTick) tick(load, t);
    }

    void tick(const Trace &load, uint64_t now) {
        now_ = now;
        settle();
        if (params_.signal == LoadSignal::kNewFlowRate) {
            double total = load.at(now);
            pending_ += std::max(0.0, total - offered_);
            offered_ = std::max(offered_, total);
            spread_new_flows();
        } else {
            spread_open_flows(load.at(now));
        }
        last = scaler_.tick(kService, params_, replicas_, now);
        bool restoring = std::any_of(replicas_.begin(), replicas_.end(), [](const ReplicaLoad &r) {
            return r.state == ReplicaState::kRestoring;
        });
        if (restoring && last.desired == last.current) ++held_while_restoring;
        apply(last);
    }

    const std::vector<Decision> &decisions() const { return decisions_; }
    size_t count(ScaleReason r) const {
        return size_t(std::count_if(decisions_.begin(), decisions_.end(),
                                    [r](const Decision &d) { return d.reason == r; }));
    }
    uint32_t capacity() const {
        uint32_t n = 0;
        for (auto &r : replicas_)
            n += r.state == ReplicaState::kReady || r.state == ReplicaState::kRestoring;
        return n;
    }
    uint32_t ready() const {
        uint32_t n = 0;
        for (auto &r : replicas_) n += r.state == ReplicaState::kReady;
        return n;
    }
    // The first decision at or after `t` that went up (or down).
    const Decision *first_up_after(uint64_t t) const {
        for (auto &d : decisions_)
            if (d.at >= t && d.to > d.from) return &d;
        return nullptr;
    }
    // The count asked for at time t: the last decision at or before t, else `before`.
    uint32_t desired_at(uint64_t t, uint32_t before) const {
        for (auto &d : decisions_)
            if (d.at <= t) before = d.to;
        return before;
    }
    size_t ups() const {
        return size_t(std::count_if(decisions_.begin(), decisions_.end(),
                                    [](const Decision &d) { return d.to > d.from; }));
    }
    const Decision *first_down_after(uint64_t t) const {
        for (auto &d : decisions_)
            if (d.at >= t && d.to < d.from) return &d;
        return nullptr;
    }
    std::vector<ReplicaLoad> &replicas() { return replicas_; }
    Autoscaler &scaler() { return scaler_; }
    AutoscaleParams &params() { return params_; }
    std::string history() const {
        std::ostringstream os;
        for (auto &d : decisions_)
            os << "  t=" << double(d.at) / 1e6 << "ms " << d.from << "->" << d.to << " "
               << to_string(d.reason) << "\n";
        return os.str();
    }

    ScaleDecision last;
    size_t held_while_restoring = 0;  // ticks that asked for nothing while restores ran
    uint32_t started = 0;             // restores started (wakes included)
    static constexpr ServiceId kService = 7;

private:
    // Replica ids are reused, smallest free first, with zeroed counters: the
    // data plane's rule, so the policy sees counter resets.
    void add(ReplicaState state, uint64_t now) {
        ReplicaId id = 1;
        while (std::any_of(replicas_.begin(), replicas_.end(),
                           [id](const ReplicaLoad &r) { return r.id == id; }))
            ++id;
        ReplicaLoad r;
        r.id = id;
        r.state = state;
        r.started_ns = now;
        // A restoring replica may still show the previous user's counters until
        // the data plane zeroes them when it is set READY.
        r.new_flows = leftover_[id];
        replicas_.push_back(r);
        ready_at_[id] = now + restore_ns;
        if (state == ReplicaState::kRestoring) ++started;
        std::sort(replicas_.begin(), replicas_.end(),
                  [](const ReplicaLoad &a, const ReplicaLoad &b) { return a.id < b.id; });
    }

    void settle() {
        for (auto &r : replicas_) {
            if (r.state == ReplicaState::kRestoring && now_ >= ready_at_[r.id]) {
                r.state = ReplicaState::kReady;
                r.new_flows = r.in_packets = 0;  // zeroed with the new incarnation
            }
        }
        std::erase_if(replicas_, [&](const ReplicaLoad &r) {
            bool gone = r.state == ReplicaState::kDraining && now_ >= gone_at_[r.id];
            if (gone) leftover_[r.id] = r.new_flows;
            return gone;
        });
    }

    void spread_new_flows() {
        uint64_t flows = uint64_t(pending_);
        std::vector<ReplicaLoad *> ready;
        for (auto &r : replicas_)
            if (r.state == ReplicaState::kReady) ready.push_back(&r);
        if (ready.empty()) {
            // Held (captured SYNs) until a replica is READY; a service at zero wakes.
            if (flows > 0 && capacity() == 0 && wake_from_zero) add(ReplicaState::kRestoring, now_);
            return;
        }
        pending_ -= double(flows);
        for (uint64_t i = 0; i < flows; ++i) {
            ReplicaLoad *r = ready[(rr_++) % ready.size()];
            r->new_flows += 1;
            r->in_packets += uint64_t(packets_per_flow);
        }
    }

    // Open flows: new ones go to READY replicas; draining ones keep theirs and lose
    // them as they finish (modelled as halving every tick).
    void spread_open_flows(double open) {
        uint64_t want = uint64_t(std::llround(open));
        uint64_t held = 0;
        for (auto &r : replicas_)
            if (r.state == ReplicaState::kDraining) {
                r.active_flows /= 2;
                held += r.active_flows;
            }
        std::vector<ReplicaLoad *> ready;
        for (auto &r : replicas_)
            if (r.state == ReplicaState::kReady) ready.push_back(&r);
        if (ready.empty()) {
            if (want > 0 && capacity() == 0 && wake_from_zero) add(ReplicaState::kRestoring, now_);
            return;
        }
        uint64_t rest = want > held ? want - held : 0;
        for (size_t i = 0; i < ready.size(); ++i) {
            ready[i]->active_flows = uint32_t(rest / ready.size() + (i < rest % ready.size()));
            ready[i]->in_packets += ready[i]->active_flows;
        }
    }

    void apply(const ScaleDecision &d) {
        EXPECT_GE(d.desired, params_.min_replicas);
        EXPECT_LE(d.desired, std::max(params_.min_replicas, params_.max_replicas));
        if (d.desired == d.current) {
            EXPECT_TRUE(d.drain.empty());
            return;
        }
        decisions_.push_back({now_, d.current, d.desired, d.reason});
        if (d.desired > d.current) {
            EXPECT_TRUE(d.drain.empty());
            for (uint32_t i = d.current; i < d.desired; ++i) add(ReplicaState::kRestoring, now_);
            return;
        }
        EXPECT_EQ(d.drain.size(), size_t(d.current - d.desired));
        for (ReplicaId id : d.drain) {
            auto it = std::find_if(replicas_.begin(), replicas_.end(),
                                   [id](const ReplicaLoad &r) { return r.id == id; });
            ASSERT_NE(it, replicas_.end()) << "drain names an unknown replica " << id;
            ASSERT_TRUE(it->state == ReplicaState::kReady || it->state == ReplicaState::kRestoring)
                << "drain names a replica that is not capacity: " << id;
            it->state = ReplicaState::kDraining;
            gone_at_[id] = now_ + drain_ns;
        }
    }

    AutoscaleParams params_;
    Autoscaler scaler_;
    std::vector<ReplicaLoad> replicas_;
    std::map<ReplicaId, uint64_t> ready_at_, gone_at_, leftover_;
    std::vector<Decision> decisions_;
    double offered_ = 0, pending_ = 0;
    uint64_t rr_ = 0, now_ = 0;
};

AutoscaleParams flows_per_second(uint32_t target, uint32_t min, uint32_t max) {
    AutoscaleParams p;
    p.target_per_replica = target;
    p.min_replicas = min;
    p.max_replicas = max;
    return p;
}

// A service with `ready` READY replicas playing `load` from 0 to `until`.
Simulation play(AutoscaleParams params, uint32_t ready, const Trace &load, uint64_t until) {
    Simulation sim(params);
    sim.start_ready(ready);
    sim.run(load, 0, until);
    return sim;
}

// ---- step, ramp, spike, oscillation ------------------------------------------------

TEST(AutoscalerTrace, StepToEightTimesTheLoadIsDecidedWithin10MsAndJumpsSeveralReplicasAtOnce) {
    // 800 flows/s on one replica (target 1000), then 7500 flows/s from t = 2 s.
    const uint64_t at = 2 * kSec;
    Simulation sim = play(flows_per_second(1000, 1, 16), 1,
                          flows_at_rate(4 * kSec, step(800, 7500, at)), 4 * kSec);

    const Decision *up = sim.first_up_after(0);
    ASSERT_NE(up, nullptr) << sim.history();
    EXPECT_GE(up->at, at) << "nothing scaled out before the step:\n" << sim.history();
    EXPECT_LE(up->at - at, 10 * kMs) << sim.history();
    EXPECT_EQ(up->reason, ScaleReason::kPanic);
    EXPECT_GE(up->to, 4u) << "one decision restores several replicas in parallel";
    // Most of the way within 50 ms; the last replica (7.5 needs 8) once the load
    // since the step is likely above 7, or the stable window surely is.
    EXPECT_GE(sim.desired_at(at + 50 * kMs, 1), 6u) << sim.history();
    EXPECT_GE(sim.desired_at(at + sim.scaler().policy().stable_window_ns + kTick, 1), 8u)
        << sim.history();
    EXPECT_LE(sim.capacity(), 9u) << sim.history();
    EXPECT_EQ(sim.count(ScaleReason::kScaleIn), 0u) << sim.history();
}

TEST(AutoscalerTrace, StepToFiveTimesTheCapacityPanicsWithinOnePanicWindowAndATick) {
    // 2 replicas at 1500 flows/s (target 1000), then 9500.
    const uint64_t at = 1 * kSec + 2 * kMs;  // between two ticks
    Simulation sim = play(flows_per_second(1000, 1, 16), 2,
                          flows_at_rate(2 * kSec, step(1500, 9500, at)), 2 * kSec);
    const Decision *up = sim.first_up_after(0);
    ASSERT_NE(up, nullptr) << sim.history();
    EXPECT_EQ(up->reason, ScaleReason::kPanic) << sim.history();
    EXPECT_GE(up->at, at);
    EXPECT_LE(up->at - at, sim.scaler().policy().panic_window_ns + kTick) << sim.history();
    EXPECT_GE(up->to, 6u) << sim.history();
    EXPECT_GE(sim.capacity(), 10u) << "ceil(9500 / 1000):\n" << sim.history();
    EXPECT_LE(sim.capacity(), 11u) << sim.history();
}

TEST(AutoscalerTrace, StepJustPastTwiceTheCapacityIsCoveredWithinTheStableWindow) {
    // 2 replicas at 1500 flows/s, then 4500: 45 flows in 10 ms rarely tell 2.25x
    // from noise, so mostly the stable window scales it: its busiest segment first,
    // the whole window for the last replica (12 % over 4).
    const uint64_t at = 1 * kSec;
    Simulation sim = play(flows_per_second(1000, 1, 16), 2,
                          flows_at_rate(3 * kSec, step(1500, 4500, at)), 3 * kSec);
    EXPECT_GE(sim.desired_at(at + 200 * kMs, 2), 4u) << sim.history();
    EXPECT_GE(sim.desired_at(at + sim.scaler().policy().stable_window_ns + kTick, 2), 5u)
        << sim.history();
    EXPECT_LE(sim.capacity(), 7u) << sim.history();
    for (auto &d : sim.decisions()) EXPECT_GT(d.to, d.from) << sim.history();
}

TEST(AutoscalerTrace, SmallStepIsFollowedByTheStableWindowWithoutPanic) {
    // 2 replicas at 1600 flows/s, then 2600: needs a third, but is no panic.
    const uint64_t at = 2 * kSec;
    Simulation sim = play(flows_per_second(1000, 1, 16), 2,
                          flows_at_rate(5 * kSec, step(1600, 2600, at)), 5 * kSec);
    EXPECT_EQ(sim.count(ScaleReason::kPanic), 0u) << sim.history();
    const Decision *up = sim.first_up_after(0);
    ASSERT_NE(up, nullptr) << sim.history();
    EXPECT_EQ(up->reason, ScaleReason::kScaleOut);
    EXPECT_EQ(up->to, 3u);
    EXPECT_GE(up->at, at);
    EXPECT_LE(up->at - at, sim.scaler().policy().stable_window_ns) << sim.history();
    EXPECT_EQ(sim.decisions().size(), 1u) << sim.history();
}

TEST(AutoscalerTrace, RampIsFollowedUpStepByStepNeverDownAndEndsAtTheNeededCount) {
    // 500 -> 7600 flows/s over 4 s, then flat for 3 s; target 1000: 8 replicas.
    Simulation sim = play(flows_per_second(1000, 1, 16), 1,
                          flows_at_rate(8 * kSec, ramp(500, 7600, 1 * kSec, 5 * kSec)), 8 * kSec);
    EXPECT_EQ(sim.capacity(), 8u) << sim.history();
    for (auto &d : sim.decisions()) EXPECT_GT(d.to, d.from) << sim.history();
    EXPECT_EQ(sim.count(ScaleReason::kScaleIn), 0u);
    // Followed, not lagging by the whole window: at the end of the ramp, 7+ of 8.
    uint32_t at_end = 0;
    for (auto &d : sim.decisions())
        if (d.at <= 5 * kSec) at_end = d.to;
    EXPECT_GE(at_end, 7u) << sim.history();
}

TEST(AutoscalerTrace, ShortSpikeScalesOutWithinItAndBackOnlyAfterCooldownAndAQuietStableWindow) {
    // 400 flows/s, a 30 ms spike to 10000 at t = 1 s, then 400 again.
    const uint64_t spike = 1 * kSec;
    Simulation sim(flows_per_second(1000, 1, 16));
    sim.start_ready(1);
    auto rate = [&](uint64_t t) { return t >= spike && t < spike + 30 * kMs ? 10000.0 : 400.0; };
    sim.run(flows_at_rate(6 * kSec, rate), 0, 6 * kSec);

    const Decision *up = sim.first_up_after(0);
    ASSERT_NE(up, nullptr) << sim.history();
    EXPECT_EQ(up->reason, ScaleReason::kPanic);
    EXPECT_LE(up->at - spike, 10 * kMs);
    // Up while the spike lasts (and one tick after), never past what it needs.
    for (size_t i = 0; i < sim.ups(); ++i) {
        EXPECT_LE(sim.decisions()[i].at, spike + 30 * kMs + kTick) << sim.history();
        EXPECT_LE(sim.decisions()[i].to, 11u) << sim.history();
    }
    const Decision *down = sim.first_down_after(up->at);
    ASSERT_NE(down, nullptr) << sim.history();
    EXPECT_EQ(down->reason, ScaleReason::kScaleIn);
    const auto &policy = sim.scaler().policy();
    EXPECT_GE(down->at - sim.decisions()[sim.ups() - 1].at, policy.scale_in_cooldown_ns)
        << sim.history();
    EXPECT_GE(down->at - (spike + 30 * kMs), policy.stable_window_ns) << sim.history();
    EXPECT_EQ(down->to, 1u) << "straight back to what 400 flows/s needs:\n" << sim.history();
    EXPECT_EQ(sim.decisions().size(), sim.ups() + 1) << sim.history();
}

TEST(AutoscalerTrace, LoadOscillatingFasterThanTheStableWindowHoldsItsPeakCapacityWithoutFlapping) {
    // 900 <-> 4500 flows/s, 400 ms period, for 20 s: 100 load changes.
    Simulation sim = play(
        flows_per_second(1000, 1, 16), 1,
        flows_at_rate(21 * kSec, square(900, 4500, 400 * kMs, 1 * kSec, 21 * kSec)), 21 * kSec);
    EXPECT_LE(sim.decisions().size(), 2u) << sim.history();
    EXPECT_EQ(sim.count(ScaleReason::kScaleIn), 0u) << sim.history();
    EXPECT_GE(sim.capacity(), 5u) << "sized for the peaks:\n" << sim.history();
    EXPECT_LE(sim.capacity(), 6u) << sim.history();
}

TEST(AutoscalerTrace, SlowOscillationIsFollowedPhaseByPhaseInTheDirectionOfEachPhase) {
    // 900 <-> 4500 flows/s, 8 s period (4 s each), three periods from t = 1 s.
    const uint64_t period = 8 * kSec, start = 1 * kSec;
    Simulation sim =
        play(flows_per_second(1000, 1, 16), 1,
             flows_at_rate(25 * kSec, square(900, 4500, period, start, 25 * kSec)), 25 * kSec);
    // Each phase: at most 3 decisions, all in its direction (a decision belongs to
    // the phase it happens in; scale-ins come late, so they fall in the low phase).
    // A 2.25x step is no sure panic from 2 replicas: the stable window follows it.
    std::map<uint64_t, std::vector<Decision>> by_phase;
    for (auto &d : sim.decisions()) by_phase[(d.at - start) / (period / 2)].push_back(d);
    for (auto &[phase, list] : by_phase) {
        EXPECT_LE(list.size(), 3u) << "phase " << phase << ":\n" << sim.history();
        for (auto &d : list)
            EXPECT_EQ(d.to > d.from, phase % 2 == 0) << "phase " << phase << ":\n"
                                                     << sim.history();
    }
    EXPECT_EQ(sim.count(ScaleReason::kScaleIn), 3u) << "low phases give capacity back:\n"
                                                   << sim.history();
    EXPECT_LE(sim.decisions().size(), 10u) << sim.history();
}

TEST(AutoscalerTrace, LoadNoisyAroundAReplicaBoundaryDoesNotFlap) {
    // 2900..3100 flows/s (target 1000) wandering for 30 s: 3 or 4 replicas, chosen once.
    Simulation sim(flows_per_second(1000, 1, 16));
    sim.start_ready(3);
    auto rate = [](uint64_t t) { return 3000 + 100 * std::sin(double(t) / 7e8); };
    sim.run(flows_at_rate(30 * kSec, rate, 7), 0, 30 * kSec);
    EXPECT_LE(sim.decisions().size(), 1u) << sim.history();
    EXPECT_GE(sim.capacity(), 3u);
}

// ---- bounds and edge cases -----------------------------------------------------------

TEST(AutoscalerBounds, NeverScalesAboveMaxEvenInPanic) {
    Simulation sim = play(flows_per_second(1000, 1, 3), 1,
                          flows_at_rate(2 * kSec, step(500, 50000, 500 * kMs)), 2 * kSec);
    EXPECT_EQ(sim.capacity(), 3u) << sim.history();
    EXPECT_EQ(sim.decisions().size(), 1u) << sim.history();
    EXPECT_EQ(sim.decisions().front().reason, ScaleReason::kPanic);
    EXPECT_EQ(sim.last.reason, ScaleReason::kHold) << "at max, more load is no decision";
}

TEST(AutoscalerBounds, BringsAServiceUpToItsMinWithoutLoadAndNeverBelowIt) {
    Simulation sim(flows_per_second(1000, 2, 8));
    sim.run(flows_at_rate(6 * kSec, [](uint64_t) { return 0.0; }), 0, 6 * kSec);
    ASSERT_FALSE(sim.decisions().empty());
    EXPECT_EQ(sim.decisions().front().reason, ScaleReason::kBounds);
    EXPECT_EQ(sim.decisions().front().at, 0u);
    EXPECT_EQ(sim.capacity(), 2u);
    EXPECT_EQ(sim.decisions().size(), 1u) << sim.history();
}

TEST(AutoscalerBounds, ZeroLoadReturnsToMinInOneStepAfterCooldownAndStableWindow) {
    // 5500 flows/s until t = 2 s, then nothing.
    const uint64_t stop = 2 * kSec;
    Simulation sim = play(flows_per_second(1000, 1, 16), 6,
                          flows_at_rate(8 * kSec, step(5500, 0, stop)), 8 * kSec);
    const Decision *down = sim.first_down_after(0);
    ASSERT_NE(down, nullptr) << sim.history();
    EXPECT_GE(down->at, stop + sim.scaler().policy().stable_window_ns) << sim.history();
    EXPECT_LE(down->at, stop + 2 * sim.scaler().policy().stable_window_ns) << sim.history();
    EXPECT_EQ(down->to, 1u);
    EXPECT_EQ(sim.decisions().size(), 1u) << sim.history();
    EXPECT_EQ(sim.capacity(), 1u);
}

TEST(AutoscalerBounds, ZeroLoadWithMinZeroGoesToZeroAndTheNextFlowWakesItAgain) {
    Simulation sim(flows_per_second(1000, 0, 4));
    sim.start_ready(2);
    auto rate = [](uint64_t t) { return t < 1 * kSec || t >= 6 * kSec ? 1500.0 : 0.0; };
    sim.run(flows_at_rate(8 * kSec, rate), 0, 8 * kSec);
    const Decision *down = sim.first_down_after(1 * kSec);
    ASSERT_NE(down, nullptr) << sim.history();
    EXPECT_EQ(down->to, 0u) << sim.history();
    EXPECT_LT(down->at, 6 * kSec);
    EXPECT_EQ(sim.capacity(), 2u) << "woken by the data plane, then scaled for 1500/s:\n"
                                  << sim.history();
}

TEST(AutoscalerBounds, ReplicasStillRestoringCountAsCapacityAndAreNotAskedForTwice) {
    // Restores take 400 ms here; 500 -> 8500 flows/s needs 9 replicas.
    Simulation sim(flows_per_second(1000, 1, 16));
    sim.restore_ns = 400 * kMs;
    sim.start_ready(1);
    sim.run(flows_at_rate(3 * kSec, step(500, 8500, 1 * kSec)), 0, 3 * kSec);
    EXPECT_EQ(sim.started, sim.capacity() - 1) << "no replica was asked for twice:\n"
                                               << sim.history();
    EXPECT_GE(sim.capacity(), 9u) << sim.history();
    EXPECT_LE(sim.capacity(), 11u) << sim.history();
    for (auto &d : sim.decisions()) EXPECT_GT(d.to, d.from) << sim.history();
    EXPECT_GE(sim.held_while_restoring, 70u) << "400 ms of restores are 80 ticks";
}

TEST(AutoscalerBounds, APinnedCountHoldsUnderAnyLoad) {
    // `wisp service scale NAME 3` = min = max = 3.
    Simulation up(flows_per_second(1000, 3, 3));
    up.start_ready(1);
    up.run(flows_at_rate(3 * kSec, step(0, 20000, 1 * kSec)), 0, 3 * kSec);
    ASSERT_EQ(up.decisions().size(), 1u) << up.history();
    EXPECT_EQ(up.decisions().front().reason, ScaleReason::kBounds);
    EXPECT_EQ(up.capacity(), 3u);

    Simulation down(flows_per_second(1000, 3, 3));
    down.start_ready(6);
    down.run(flows_at_rate(6 * kSec, step(20000, 0, 1 * kSec)), 0, 6 * kSec);
    ASSERT_EQ(down.decisions().size(), 1u) << down.history();
    EXPECT_EQ(down.decisions().front().reason, ScaleReason::kBounds);
    EXPECT_EQ(down.decisions().front().at, 0u) << "a pin applies at once, no cooldown";
    EXPECT_EQ(down.capacity(), 3u);
}

TEST(AutoscalerBounds, ZeroTargetLeavesScalingToWakesAndIdleTimeoutsButKeepsTheBounds) {
    Simulation sim = play(flows_per_second(0, 1, 2), 3,
                          flows_at_rate(3 * kSec, step(100, 50000, 1 * kSec)), 3 * kSec);
    ASSERT_EQ(sim.decisions().size(), 1u) << sim.history();
    EXPECT_EQ(sim.decisions().front().reason, ScaleReason::kBounds);
    EXPECT_EQ(sim.capacity(), 2u);
}

TEST(AutoscalerPolicy, AWakeStartsTheCooldownSoTheWokenReplicaIsNotDrainedAtOnce) {
    // At zero with min 0; a few flows wake it; then silence.
    Simulation sim(flows_per_second(1000, 0, 4));
    auto rate = [](uint64_t t) { return t >= 100 * kMs && t < 110 * kMs ? 1000.0 : 0.0; };
    sim.run(flows_at_rate(5 * kSec, rate), 0, 5 * kSec);
    const Decision *down = sim.first_down_after(0);
    ASSERT_NE(down, nullptr) << sim.history();
    EXPECT_GE(down->at, 100 * kMs + sim.scaler().policy().scale_in_cooldown_ns) << sim.history();
    EXPECT_EQ(down->to, 0u);
}

TEST(AutoscalerPolicy, ScaleInDrainsStartingReplicasFirstThenTheLeastBusyThenTheNewest) {
    Autoscaler scaler;
    AutoscaleParams params = flows_per_second(100, 1, 8);
    std::vector<ReplicaLoad> replicas = {
        {.id = 1, .state = ReplicaState::kReady, .started_ns = 1},
        {.id = 2, .state = ReplicaState::kReady, .started_ns = 2},
        {.id = 3, .state = ReplicaState::kReady, .started_ns = 3},
        {.id = 4, .state = ReplicaState::kRestoring, .started_ns = 4},
        {.id = 5, .state = ReplicaState::kReady, .started_ns = 5},
        {.id = 6, .state = ReplicaState::kDraining, .started_ns = 6},
    };
    // Replica 2 keeps getting packets (long flows), 1 and 5 a few, 3 none. Total
    // load: 50 flows/s = one replica.
    ScaleDecision d;
    for (uint64_t t = 0; t <= 4 * kSec; t += kTick) {
        replicas[1].in_packets += 20;
        replicas[0].in_packets += 1;
        replicas[4].in_packets += 1;
        if (t % (20 * kMs) == 0) replicas[1].new_flows += 1;
        d = scaler.tick(1, params, replicas, t);
        if (d.desired != d.current) break;
    }
    ASSERT_EQ(d.reason, ScaleReason::kScaleIn);
    EXPECT_EQ(d.current, 5u) << "READY and restoring; not the draining one";
    EXPECT_EQ(d.desired, 1u);
    EXPECT_EQ(std::vector<ReplicaId>(d.drain.begin(), d.drain.end()),
              (std::vector<ReplicaId>{4, 3, 5, 1}))
        << "restoring 4, idle 3, then of the equally busy 5 and 1 the newer first";
}

TEST(AutoscalerPolicy, StatefulServicesDrainOneReplicaAtATime) {
    AutoscaleParams params = flows_per_second(1000, 1, 16);
    params.stateful = true;
    Simulation sim =
        play(params, 5, flows_at_rate(6 * kSec, [](uint64_t) { return 0.0; }), 6 * kSec);
    EXPECT_EQ(sim.capacity(), 1u) << sim.history();
    ASSERT_EQ(sim.decisions().size(), 4u) << sim.history();
    for (size_t i = 0; i < sim.decisions().size(); ++i) {
        EXPECT_EQ(sim.decisions()[i].to + 1, sim.decisions()[i].from);
        if (i > 0)
            EXPECT_GE(sim.decisions()[i].at - sim.decisions()[i - 1].at,
                      sim.scaler().policy().stateful_drain_interval_ns);
    }
}

TEST(AutoscalerPolicy, AFewFlowsInAPanicWindowAreNoRate) {
    // 4 flows arriving together every 500 ms: 400/s in 10 ms, 8 flows/s really.
    Simulation sim(flows_per_second(100, 1, 16));
    sim.start_ready(1);
    Trace bursts;
    for (uint64_t t = 0; t <= 5 * kSec; t += kMs)
        bursts.points.push_back({t, double(4 * (t / (500 * kMs)))});
    sim.run(bursts, 0, 5 * kSec);
    EXPECT_EQ(sim.count(ScaleReason::kPanic), 0u) << sim.history();
    EXPECT_EQ(sim.decisions().size(), 0u) << sim.history();
}

TEST(AutoscalerPolicy, ACounterThatRestartsAtZeroIsAResetNotABurst) {
    Autoscaler scaler;
    AutoscaleParams params = flows_per_second(1000, 1, 16);
    std::vector<ReplicaLoad> replicas = {{.id = 1, .state = ReplicaState::kReady,
                                          .new_flows = 5'000'000, .in_packets = 30'000'000}};
    for (uint64_t t = 0; t < 1 * kSec; t += kTick) {
        replicas[0].new_flows += 2;  // 400 flows/s
        EXPECT_EQ(scaler.tick(1, params, replicas, t).desired, 1u);
    }
    replicas[0].new_flows = 3;  // the id was reused: the data plane zeroed it
    replicas[0].in_packets = 10;
    for (uint64_t t = 1 * kSec; t < 2 * kSec; t += kTick) {
        auto d = scaler.tick(1, params, replicas, t);
        EXPECT_EQ(d.desired, 1u) << "at " << t / kMs << " ms, load " << d.stable_load;
        EXPECT_LT(d.stable_load, 1000.0);
        replicas[0].new_flows += 2;
    }
}

TEST(AutoscalerPolicy, AGapLongerThanTheStableWindowRestartsTheHistory) {
    Autoscaler scaler;
    AutoscaleParams params = flows_per_second(1000, 1, 16);
    std::vector<ReplicaLoad> replicas = {{.id = 1, .state = ReplicaState::kReady}};
    for (uint64_t t = 0; t < 1 * kSec; t += kTick) {
        replicas[0].new_flows += 4;
        (void)scaler.tick(1, params, replicas, t);
    }
    // Ten seconds unobserved, in which 30000 flows came: not a 3000/s load now.
    replicas[0].new_flows += 30000;
    auto d = scaler.tick(1, params, replicas, 11 * kSec);
    EXPECT_EQ(d.stable_load, 0.0);
    EXPECT_EQ(d.desired, 1u);
    EXPECT_EQ(d.reason, ScaleReason::kHold);
}

TEST(AutoscalerPolicy, ConcurrencySignalFollowsOpenFlowsUpInPanicAndDownAfterTheCooldown) {
    AutoscaleParams params = flows_per_second(10, 1, 16);
    params.signal = LoadSignal::kConcurrency;
    Simulation sim(params);
    sim.start_ready(1);
    // 8 open flows, 55 from t = 1 s (panic: 6 replicas), 15 from t = 3 s.
    Trace open{{{0, 8}, {1 * kSec - 1, 8}, {1 * kSec, 55}, {3 * kSec - 1, 55}, {3 * kSec, 15}}};
    sim.run(open, 0, 8 * kSec);
    const Decision *up = sim.first_up_after(0);
    ASSERT_NE(up, nullptr) << sim.history();
    EXPECT_EQ(up->reason, ScaleReason::kPanic);
    EXPECT_LE(up->at - 1 * kSec, 10 * kMs);
    EXPECT_EQ(sim.desired_at(1 * kSec + 10 * kMs, 1), 6u) << sim.history();
    EXPECT_LE(sim.ups(), 2u) << sim.history();
    // 15 open flows at 80 % of 10 per replica: 2 replicas.
    EXPECT_EQ(sim.capacity(), 2u) << sim.history();
    EXPECT_EQ(sim.count(ScaleReason::kScaleIn), 1u) << sim.history();
}

TEST(AutoscalerPolicy, OpenFlowsOnDrainingReplicasAreLoadButNotCapacity) {
    Autoscaler scaler;
    AutoscaleParams params = flows_per_second(10, 1, 16);
    params.signal = LoadSignal::kConcurrency;
    std::vector<ReplicaLoad> replicas = {
        {.id = 1, .state = ReplicaState::kReady, .active_flows = 5},
        {.id = 2, .state = ReplicaState::kDraining, .active_flows = 30},
        {.id = 3, .state = ReplicaState::kStopping, .active_flows = 0},
    };
    ScaleDecision d;
    for (uint64_t t = 0; t <= 200 * kMs; t += kTick) d = scaler.tick(1, params, replicas, t);
    EXPECT_EQ(d.current, 1u);
    EXPECT_DOUBLE_EQ(d.stable_load, 35.0);
    EXPECT_EQ(d.desired, 4u) << "35 open flows at 10 per replica";
}

TEST(AutoscalerPolicy, ForgottenServicesLeaveNothingBehind) {
    Autoscaler scaler;
    std::vector<ReplicaLoad> replicas = {{.id = 1, .state = ReplicaState::kReady}};
    for (ServiceId s = 1; s <= 100; ++s)
        (void)scaler.tick(s, flows_per_second(10, 0, 2), replicas, 0);
    EXPECT_EQ(scaler.tracked_services(), 100u);
    for (ServiceId s = 1; s <= 100; ++s) scaler.forget(s);
    EXPECT_EQ(scaler.tracked_services(), 0u);
}

TEST(AutoscalerPolicy, SteadyStateTicksDoNotAllocate) {
    Autoscaler scaler;
    AutoscaleParams params = flows_per_second(100, 1, 16);
    std::vector<ReplicaLoad> replicas;
    for (ReplicaId id = 1; id <= 16; ++id)
        replicas.push_back({.id = id, .state = ReplicaState::kReady});
    uint64_t t = 0;
    auto run_for = [&](uint64_t ns, uint32_t flows_per_tick) {
        for (uint64_t end = t + ns; t < end; t += kTick) {
            for (auto &r : replicas) r.new_flows += flows_per_tick;
            (void)scaler.tick(1, params, replicas, t);
        }
    };
    count_allocations();
    run_for(2 * kSec, 1);  // warm up: state, slots, windows, a first scale-in
    uint64_t before = g_allocations.load();
    run_for(5 * kSec, 1);
    EXPECT_EQ(g_allocations.load() - before, 0u);
}

// ---- recorded traces -------------------------------------------------------------------

// When the recorded load starts and stops: the first and the last millisecond with a
// new flow (the recorder's own probe flow is before the first row).
std::pair<uint64_t, uint64_t> active_span(const Trace &flows) {
    uint64_t first = 0, last = 0;
    for (uint64_t t = 0; t + kMs <= flows.end(); t += kMs)
        if (flows.at(t + kMs) - flows.at(t) >= 1) {
            if (!first) first = t;
            last = t + kMs;
        }
    return {first, last};
}

// Up decisions first, then down ones: the direction changes at most once.
size_t direction_changes(const std::vector<Decision> &decisions) {
    size_t changes = 0;
    for (size_t i = 1; i < decisions.size(); ++i)
        changes +=
            (decisions[i].to > decisions[i].from) != (decisions[i - 1].to > decisions[i - 1].from);
    return changes;
}

TEST(AutoscalerRecorded, WrkStepScalesOutWithin10MsHoldsAndReturnsToMinOnceTheLoadIsGone) {
    // hello behind the real data plane: 1 s idle, wrk with 4 closing connections
    // for 1.5 s, 2 s idle (traces/README.md).
    Recorded rec = load_recorded("wrk_step.csv");
    auto [start, stop] = active_span(rec.flows);
    ASSERT_GT(start, 500 * kMs);
    ASSERT_GT(stop, start + 1 * kSec);
    // Target: a sixth of the recorded plateau, so the step needs 6 replicas.
    double plateau = rec.flows.at(start + 1200 * kMs) - rec.flows.at(start + 200 * kMs);
    ASSERT_GT(plateau, 1000.0) << "the recording should hold a real wrk load";
    Simulation sim = play(flows_per_second(uint32_t(plateau / 6), 1, 16), 1, rec.flows,
                          rec.flows.end() + 4 * kSec);
    // wrk takes a few ms to open its connections: the step is where the load over
    // 5 ms first reaches half the plateau.
    uint64_t step_at = start;
    while (step_at < stop &&
           rec.flows.at(step_at) - rec.flows.at(step_at - 5 * kMs) < plateau * 0.005 / 2)
        step_at += kMs / 10;

    const Decision *up = sim.first_up_after(0);
    ASSERT_NE(up, nullptr) << sim.history();
    EXPECT_EQ(up->reason, ScaleReason::kPanic) << sim.history();
    EXPECT_GE(up->at, start);
    EXPECT_LE(up->at - step_at, 10 * kMs)
        << "first flow at " << start / kMs << " ms, step at " << step_at / 1e6 << " ms\n"
        << sim.history();
    EXPECT_GE(sim.desired_at(start + 100 * kMs, 1), 6u) << sim.history();
    EXPECT_LE(sim.ups(), 4u) << sim.history();
    for (size_t i = 0; i < sim.ups(); ++i)
        EXPECT_LE(sim.decisions()[i].at, stop) << sim.history();
    // Once the load is gone: one decision, back to min, when the stable window no
    // longer holds a segment of it.
    ASSERT_EQ(sim.decisions().size(), sim.ups() + 1) << sim.history();
    const Decision &down = sim.decisions().back();
    EXPECT_EQ(down.reason, ScaleReason::kScaleIn);
    EXPECT_EQ(down.to, 1u);
    const auto &policy = sim.scaler().policy();
    EXPECT_GE(down.at,
              stop + policy.stable_window_ns - policy.stable_window_ns / policy.stable_segments)
        << sim.history();
}

TEST(AutoscalerRecorded, WrkBurstsEvery300MsAreSizedOnceAndGivenBackOnlyAsTheyFade) {
    // hello behind the real data plane: wrk started every 300 ms and stopped 150 ms
    // later, 10 times; the guest serves the later bursts more slowly (traces/README.md).
    Recorded rec = load_recorded("wrk_bursts.csv");
    auto [start, stop] = active_span(rec.flows);
    ASSERT_GT(stop, start + 2 * kSec);
    double mean = rec.flows.at(stop) * 1e9 / double(stop - start);
    ASSERT_GT(mean, 500.0) << "the recording should hold real wrk bursts";
    // Target: half the mean over the bursts and their gaps; the bursts need more.
    Simulation sim =
        play(flows_per_second(uint32_t(mean / 2), 1, 16), 1, rec.flows, rec.flows.end() + 4 * kSec);

    EXPECT_GE(sim.ups(), 1u) << sim.history();
    EXPECT_LE(sim.ups(), 2u) << "20 load changes, sized in the first bursts:\n" << sim.history();
    EXPECT_LE(sim.decisions()[sim.ups() - 1].at, start + 600 * kMs) << sim.history();
    EXPECT_LE(direction_changes(sim.decisions()), 1u) << "no flapping:\n" << sim.history();
    EXPECT_LE(sim.decisions().size(), sim.ups() + 2) << sim.history();
    const Decision *down = sim.first_down_after(0);
    ASSERT_NE(down, nullptr) << sim.history();
    EXPECT_GE(down->at, start + 2 * kSec) << "no scale-in while the bursts are strong:\n"
                                          << sim.history();
    EXPECT_EQ(sim.capacity(), 1u) << sim.history();
}

}  // namespace
