// Small helpers the wisp benchmarks share: the monotonic clock and percentiles.
#pragma once

#include <time.h>

#include <algorithm>
#include <cstdint>
#include <vector>

namespace wisp::bench {

inline uint64_t now_ns() {
    timespec ts{};
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return static_cast<uint64_t>(ts.tv_sec) * 1'000'000'000u + static_cast<uint64_t>(ts.tv_nsec);
}

// The p-quantile (0..1) of `v`, nearest rank; 0 for no samples.
inline double pct(std::vector<double> v, double p) {
    if (v.empty()) return 0;
    std::sort(v.begin(), v.end());
    size_t i = static_cast<size_t>(p * static_cast<double>(v.size() - 1) + 0.5);
    return v[std::min(i, v.size() - 1)];
}

}  // namespace wisp::bench
