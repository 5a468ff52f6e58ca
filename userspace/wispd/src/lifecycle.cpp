#include "wispd/lifecycle.h"

#include <algorithm>

namespace wisp::wispd {

bool transition_allowed(ServiceState from, ServiceState to) {
    using S = ServiceState;
    // Anything can fail (including a retry that fails at once); every other move
    // follows the diagram.
    if (to == S::kFailed) return true;
    switch (from) {
        // Standby straight away: a golden snapshot shared with an identical service.
        case S::kCreating: return to == S::kBooting || to == S::kStandby;
        case S::kBooting: return to == S::kSnapshotting;
        case S::kSnapshotting: return to == S::kStandby;
        case S::kStandby: return to == S::kWaking;
        case S::kWaking: return to == S::kRunning;
        case S::kRunning: return to == S::kDraining || to == S::kStandby;
        case S::kDraining: return to == S::kStandby;
        case S::kFailed: return to == S::kCreating || to == S::kStandby;
    }
    return false;
}

uint64_t Backoff::delay_ms_after(uint32_t failures) const {
    if (failures == 0) return 0;
    uint64_t delay = policy_.base_ms;
    for (uint32_t i = 1; i < failures && delay < policy_.cap_ms; ++i) delay *= 2;
    return std::min(delay, policy_.cap_ms);
}

uint64_t Backoff::record_failure() {
    ++failures_;
    return delay_ms_after(failures_);
}

uint32_t IdAllocator::take() {
    if (!released_.empty()) {
        uint32_t id = *released_.begin();
        released_.erase(released_.begin());
        return id;
    }
    if (next_ > last_) return 0;
    return next_++;
}

void IdAllocator::reserve(uint32_t id) {
    if (id == 0 || id > last_) return;
    if (id < next_) {
        released_.erase(id);
        return;
    }
    for (uint32_t free = next_; free < id; ++free) released_.insert(free);
    next_ = id + 1;
}

void IdAllocator::release(uint32_t id) {
    if (id == 0 || id >= next_) return;
    released_.insert(id);
    // Keep the set small: a free tail goes back to next_.
    while (next_ > 1 && released_.count(next_ - 1)) {
        released_.erase(next_ - 1);
        --next_;
    }
}

bool IdAllocator::in_use(uint32_t id) const {
    return id != 0 && id < next_ && !released_.count(id);
}

bool WakeBuffer::add(BufferedFrame frame) {
    if (frames_.empty() && first_ns_ == 0) first_ns_ = frame.captured_ns;
    if (frames_.size() >= kMaxFrames || bytes_ + frame.bytes.size() > kMaxBytes) {
        ++dropped_;
        return false;
    }
    bytes_ += frame.bytes.size();
    frames_.push_back(std::move(frame));
    return true;
}

std::vector<BufferedFrame> WakeBuffer::take() {
    std::vector<BufferedFrame> out(std::make_move_iterator(frames_.begin()),
                                   std::make_move_iterator(frames_.end()));
    clear();
    return out;
}

void WakeBuffer::clear() {
    frames_.clear();
    bytes_ = 0;
    dropped_ = 0;
    first_ns_ = 0;
}

}  // namespace wisp::wispd
