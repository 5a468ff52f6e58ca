// The pure parts of the service lifecycle: which state changes are legal, the
// failure backoff, and the bookkeeping of SYNs buffered while a service wakes.
// No clocks are read and no kernel is called here; callers pass the time in.
#pragma once

#include <cstdint>
#include <deque>
#include <set>
#include <vector>

#include "wispd/types.h"

namespace wisp::wispd {

// Whether the controller may move a service from `from` to `to`. The diagram in
// docs/operations.md is this table; a test walks every pair.
bool transition_allowed(ServiceState from, ServiceState to);

// Exponential failure backoff with a cap, and crash-loop detection.
//
// Each failure doubles the delay before the next attempt (base, 2*base, ... up to
// cap); a success resets it. After `crash_loop_after` failures in a row the service
// is in a crash loop: `inspect` says so and the delay stays at the cap until a
// success.
class Backoff {
public:
    struct Policy {
        uint64_t base_ms = 250;
        uint64_t cap_ms = 30'000;
        uint32_t crash_loop_after = 3;
    };
    Backoff() : Backoff(Policy{}) {}
    explicit Backoff(Policy policy, uint32_t failures = 0) : policy_(policy), failures_(failures) {}

    // Records a failure; returns the delay before the next attempt.
    uint64_t record_failure();
    void record_success() { failures_ = 0; }

    uint32_t consecutive_failures() const { return failures_; }
    bool crash_loop() const { return failures_ >= policy_.crash_loop_after; }
    // The delay after `failures` failures in a row (0 for none).
    uint64_t delay_ms_after(uint32_t failures) const;
    const Policy &policy() const { return policy_; }

private:
    Policy policy_;
    uint32_t failures_ = 0;
};

// Small integer ids handed out smallest-first and reused after release, in
// O(log n): the data plane indexes fixed-size arrays with them, and a wake must not
// wait for the store to pick one.
class IdAllocator {
public:
    // Ids first .. last, inclusive.
    IdAllocator(uint32_t first, uint32_t last) : next_(first), last_(last) {}
    // The smallest free id, or 0 when every id is in use.
    uint32_t take();
    // Marks an id as in use (recovered from the store). Ids out of range are ignored.
    void reserve(uint32_t id);
    // Frees an id taken or reserved before; others are ignored.
    void release(uint32_t id);
    bool in_use(uint32_t id) const;

private:
    std::set<uint32_t> released_;  // free ids below next_
    uint32_t next_;                // every id >= next_ is free
    uint32_t last_;
};

// A packet captured by the data plane while its service was at zero.
struct BufferedFrame {
    uint64_t captured_ns = 0;  // the data plane's timestamp (CLOCK_MONOTONIC)
    std::vector<uint8_t> bytes;  // the IP packet
};

// The SYNs (or first datagrams) of one service waiting for a replica. Bounded in
// frames and bytes: a SYN flood at a service at zero costs a fixed amount of
// memory, and what does not fit is counted and dropped (those clients retransmit).
class WakeBuffer {
public:
    static constexpr size_t kMaxFrames = 256;
    static constexpr size_t kMaxBytes = 256 * 1024;

    // Keeps the frame unless a bound is reached; returns whether it was kept.
    bool add(BufferedFrame frame);
    // Hands over every buffered frame, oldest first, and empties the buffer. The
    // counters (dropped, first capture time) restart with the next wake.
    std::vector<BufferedFrame> take();
    void clear();

    size_t frames() const { return frames_.size(); }
    size_t bytes() const { return bytes_; }
    uint64_t dropped() const { return dropped_; }
    // Capture time of the oldest frame of this wake (wake latency starts here); 0
    // when nothing was buffered.
    uint64_t first_captured_ns() const { return first_ns_; }

private:
    std::deque<BufferedFrame> frames_;
    size_t bytes_ = 0;
    uint64_t dropped_ = 0;
    uint64_t first_ns_ = 0;
};

}  // namespace wisp::wispd
