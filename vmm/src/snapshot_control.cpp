#include "wisp/vmm/snapshot_control.h"

#include "wisp/snapshot/store.h"

namespace wisp::vmm::control {

Result<wisp_ctl_snapshotted> snapshot_to(ControlClient &client, const std::string &dir,
                                         uint32_t flags, int timeout_ms) {
    auto pending = snapshot::PendingSnapshot::create(dir);
    if (!pending) return std::move(pending).error();
    WISP_RETURN_IF_ERROR(client.snapshot(flags, pending->vmstate_fd(), pending->memory_fd()));
    auto done = client.wait_for(WISP_CTL_EV_SNAPSHOT, timeout_ms);
    if (!done) return std::move(done).error();
    WISP_RETURN_IF_ERROR(pending->commit());
    return done->as<wisp_ctl_snapshotted>();
}

Result<wisp_ctl_restored> restore_from(ControlClient &client, const RestoreSpec &spec, int timeout_ms) {
    auto files = snapshot::open_snapshot(spec.dir);
    if (!files) return std::move(files).error();
    snapshot::SnapshotFiles base;
    uint32_t flags = 0;
    if (!spec.base_dir.empty()) {
        auto b = snapshot::open_snapshot(spec.base_dir);
        if (!b) return std::move(b).error();
        base = std::move(*b);
        flags |= WISP_RESTORE_DIFF;
    }
    if (spec.log_fd >= 0) flags |= WISP_RESTORE_LOG_FD;
    ControlClient::RestoreFds fds;
    fds.tap = spec.tap_fd;
    fds.vmstate = files->vmstate.get();
    fds.memory = files->memory.get();
    fds.base_vmstate = base.vmstate.get();
    fds.base_memory = base.memory.get();
    fds.log = spec.log_fd;
    wisp_ctl_restore payload =
        make_restore(flags, spec.identity ? &*spec.identity : nullptr, spec.console_limit);
    WISP_RETURN_IF_ERROR(client.restore(payload, fds));
    auto restored = client.wait_for(WISP_CTL_EV_RESTORED, timeout_ms);
    if (!restored) return std::move(restored).error();
    return restored->as<wisp_ctl_restored>();
}

}  // namespace wisp::vmm::control
