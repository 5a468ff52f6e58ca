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

Result<GoldenResult> golden_snapshot_to(ControlClient &client, const GoldenSpec &spec) {
    wisp_ctl_boot boot = spec.boot;
    boot.flags |= WISP_BOOT_HOLD_AT_READY | (spec.log_fd >= 0 ? WISP_BOOT_LOG_FD : 0u);
    WISP_RETURN_IF_ERROR(client.boot(boot, spec.tap_fd, spec.image_fd, spec.log_fd));
    GoldenResult out;
    auto started = client.wait_for(WISP_CTL_EV_STARTED, 10000);
    if (!started) return std::move(started).error();
    out.started = started->as<wisp_ctl_started>();
    auto ready = client.wait_for(WISP_CTL_EV_READY, spec.ready_timeout_ms);
    if (!ready) {
        Error e = std::move(ready).error();
        if (e.code == ETIMEDOUT)
            e.message = "the guest did not call ready within " + std::to_string(spec.ready_timeout_ms) + " ms";
        return e;
    }
    out.ready = ready->as<wisp_ctl_ready>();
    auto snap = snapshot_to(client, spec.dir, 0, 60000);
    if (!snap) return std::move(snap).error();
    out.snapshot = *snap;
    return out;
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
