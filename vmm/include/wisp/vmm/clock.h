// The guest's clocks. Guest monotonic time is the host's CLOCK_MONOTONIC plus an
// offset (0 on a fresh boot; a restore sets it so the guest's clock continues
// where the snapshot left it). Wall time is the host's CLOCK_REALTIME. The guest
// reads both without an exit from its TSC and the calibration in the boot-info
// page (struct wisp_clock_info).
#pragma once

#include <cstdint>

#include "wisp/result.h"
#include "wisp/snapshot/state.h"
#include "wisp_hypercall.h"

namespace wisp::vmm {

uint64_t host_monotonic_ns();
uint64_t host_realtime_ns();

struct GuestClock {
    int64_t mono_offset_ns = 0;

    uint64_t monotonic_ns() const { return host_monotonic_ns() + mono_offset_ns; }
    uint64_t wall_ns() const { return host_realtime_ns(); }
    // Host CLOCK_MONOTONIC at guest monotonic time `guest_ns`.
    uint64_t host_ns_for(uint64_t guest_ns) const { return guest_ns - mono_offset_ns; }

    // Snapshot state now: the guest TSC reads `guest_tsc`, the guest computes its
    // time from calibration `live`. The saved monotonic time is never less than
    // what the guest can have seen, by either way of reading it.
    snapshot::ClockState save(const wisp_clock_info &live, uint64_t guest_tsc, uint32_t tsc_khz) const;

    // After a restore, with the new VM's guest TSC reading `guest_tsc` now at
    // `tsc_khz`: guest monotonic time continues from the snapshot's (time spent
    // stored does not count: never backwards, no jump of days for the guest's
    // timers), wall time is the host's. Fills the calibration to write into the
    // boot-info page. The raw TSC is not continuous across a restore (a software
    // KVM cannot offset ring-3 rdtsc); the calibration hides that from the guest.
    static Result<GuestClock> restore(const snapshot::ClockState &state, uint64_t guest_tsc,
                                      uint32_t tsc_khz, wisp_clock_info &calibration);
};

// Calibration for a guest TSC running at `tsc_khz` that read `guest_tsc` at guest
// monotonic time `mono_ns` (wall = mono + wall_offset). `seq` is left even.
// mult/shift are chosen so the guest's 64x64->128-bit product keeps nanosecond
// precision: mono = base + ((tsc - tsc_base) * mult) >> shift.
wisp_clock_info make_clock_info(uint32_t tsc_khz, uint64_t guest_tsc, uint64_t mono_ns,
                                int64_t wall_offset_ns, uint32_t seq);

// Nanoseconds for `tsc_delta` ticks with this calibration (what the guest computes).
uint64_t clock_info_ns(const wisp_clock_info &info, uint64_t tsc_delta);

}  // namespace wisp::vmm
