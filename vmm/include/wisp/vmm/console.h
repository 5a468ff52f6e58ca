// The guest's console: bytes from the console hypercall go to a file descriptor
// (stdout in `wisp-vmm run`, the instance log under wispd) up to a byte limit, so
// a noisy guest can fill neither the disk nor the monitor's memory. Past the
// limit one marker line is written and everything else is counted and dropped.
#pragma once

#include <cstdint>
#include <span>

#include "wisp/unique_fd.h"

namespace wisp::vmm {

class ConsoleLog {
public:
    static constexpr uint64_t kDefaultLimit = 1ull << 20;
    static constexpr uint64_t kUnlimited = UINT64_MAX;

    ConsoleLog() = default;  // discards everything (counted as dropped)
    ConsoleLog(UniqueFd fd, uint64_t limit) : fd_(std::move(fd)), limit_(limit) {}

    // Writes what fits under the limit; never blocks the guest for long (a full
    // pipe drops bytes).
    void write(std::span<const uint8_t> bytes);

    uint64_t written() const { return written_; }
    uint64_t dropped() const { return dropped_; }
    uint64_t limit() const { return limit_; }

private:
    UniqueFd fd_;
    uint64_t limit_ = 0;
    uint64_t written_ = 0;
    uint64_t dropped_ = 0;
    bool marked_ = false;
};

}  // namespace wisp::vmm
