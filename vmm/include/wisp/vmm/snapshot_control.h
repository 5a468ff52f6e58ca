// The controller's side of snapshots, as wispd, the wisp-vmm CLI, tests and
// benchmarks use it: files created and committed with snapshot/store.h, the
// monitor driven through ControlClient.
#pragma once

#include <optional>
#include <string>

#include "wisp/result.h"
#include "wisp/vmm/control.h"

namespace wisp::vmm::control {

// Snapshots the VM of the monitor behind `client` into directory `dir`: a
// temporary directory next to it gets the two files, the monitor writes them
// (waiting up to `timeout_ms`), then commit() syncs and moves them into place. On
// any error the previous snapshot at `dir`, if any, is untouched and the
// temporary directory is gone.
Result<wisp_ctl_snapshotted> snapshot_to(ControlClient &client, const std::string &dir,
                                         uint32_t flags, int timeout_ms);

struct GoldenSpec {
    wisp_ctl_boot boot{};  // HOLD_AT_READY (and LOG_FD with a log fd) are added
    int tap_fd = -1;
    int image_fd = -1;
    int log_fd = -1;
    std::string dir;              // where the golden snapshot goes
    int ready_timeout_ms = 60000;  // bound on the app's initialisation
};

struct GoldenResult {
    wisp_ctl_started started{};
    wisp_ctl_ready ready{};
    wisp_ctl_snapshotted snapshot{};
};

// A service's golden snapshot: boots the image in the empty monitor behind
// `client` held at `ready`, waits for ready (at most ready_timeout_ms), writes the
// snapshot into spec.dir with snapshot_to(). The guest stays held (PAUSED): the
// caller resumes it to serve, or stops it.
Result<GoldenResult> golden_snapshot_to(ControlClient &client, const GoldenSpec &spec);

struct RestoreSpec {
    std::string dir;       // the snapshot to restore
    std::string base_dir;  // for a diff: its parent full snapshot; else empty
    int tap_fd = -1;
    int log_fd = -1;       // console log (else the monitor's stderr)
    std::optional<GuestIdentity> identity;  // replaces the snapshot's
    uint64_t console_limit = 0;
};

// Opens the snapshot's files and restores them into the empty monitor behind
// `client`; waits up to `timeout_ms` for the restored event.
Result<wisp_ctl_restored> restore_from(ControlClient &client, const RestoreSpec &spec, int timeout_ms);

}  // namespace wisp::vmm::control
