#include "wisp/vmm/clock.h"

#include <time.h>

namespace wisp::vmm {

namespace {
uint64_t now(clockid_t id) {
    timespec ts;
    clock_gettime(id, &ts);
    return static_cast<uint64_t>(ts.tv_sec) * 1000000000ull + static_cast<uint64_t>(ts.tv_nsec);
}
constexpr uint32_t kShift = 32;
}  // namespace

uint64_t host_monotonic_ns() { return now(CLOCK_MONOTONIC); }
uint64_t host_realtime_ns() { return now(CLOCK_REALTIME); }

wisp_clock_info make_clock_info(uint32_t tsc_khz, uint64_t guest_tsc, uint64_t mono_ns,
                                int64_t wall_offset_ns, uint32_t seq) {
    wisp_clock_info info{};
    info.seq = seq & ~1u;
    info.tsc_shift = kShift;
    info.tsc_hz = uint64_t{tsc_khz} * 1000;
    // ns per tick in 32.32 fixed point
    info.tsc_mult = static_cast<uint64_t>(((unsigned __int128)1000000000u << kShift) / info.tsc_hz);
    info.tsc_base = guest_tsc;
    info.mono_base_ns = mono_ns;
    info.wall_offset_ns = wall_offset_ns;
    return info;
}

uint64_t clock_info_ns(const wisp_clock_info &info, uint64_t tsc_delta) {
    return static_cast<uint64_t>(((unsigned __int128)tsc_delta * info.tsc_mult) >> info.tsc_shift);
}

snapshot::ClockState GuestClock::save(const wisp_clock_info &live, uint64_t guest_tsc,
                                      uint32_t tsc_khz) const {
    snapshot::ClockState s{};
    uint64_t mono = monotonic_ns();
    if (live.tsc_mult != 0 && guest_tsc > live.tsc_base) {
        uint64_t seen = live.mono_base_ns + clock_info_ns(live, guest_tsc - live.tsc_base);
        if (seen > mono) mono = seen;
    }
    s.guest_mono_ns = mono;
    s.guest_tsc = guest_tsc;
    s.host_wall_ns = host_realtime_ns();
    s.tsc_khz = tsc_khz;
    return s;
}

Result<GuestClock> GuestClock::restore(const snapshot::ClockState &state, uint64_t guest_tsc,
                                       uint32_t tsc_khz, wisp_clock_info &calibration) {
    if (tsc_khz == 0) return invalid("clock: TSC rate is zero");
    const uint64_t host_mono = host_monotonic_ns();
    const uint64_t host_wall = host_realtime_ns();
    GuestClock c;
    c.mono_offset_ns = static_cast<int64_t>(state.guest_mono_ns - host_mono);
    calibration = make_clock_info(tsc_khz, guest_tsc, state.guest_mono_ns,
                                  static_cast<int64_t>(host_wall - state.guest_mono_ns), 0);
    return c;
}

}  // namespace wisp::vmm
