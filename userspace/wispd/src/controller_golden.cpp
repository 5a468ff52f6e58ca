// Density: a new service shares the golden snapshot of an identical one instead of
// booting its image (golden_share.h has the reasoning; docs/density.md the figures).
#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <filesystem>

#include "wispd/controller.h"

namespace wisp::wispd {

bool Controller::adopt_shared_golden(ServiceRuntime &s) {
    auto key = goldens_.key_of(s.record.spec);
    if (!key) {
        // The boot reports an unreadable image with its own failure.
        spdlog::debug("service {}: no golden sharing: {}", s.record.spec.name,
                      key.error().describe());
        return false;
    }
    s.golden_key = *key;
    auto donor_id = goldens_.donor(*key);
    if (!donor_id) return false;
    auto *donor = find(*donor_id);
    auto from = donor ? golden(*donor) : std::nullopt;
    if (!from) {
        goldens_.remove(*donor_id);
        return false;
    }
    std::string dir = config_.layout.snapshot_dir(s.record.spec.name, SnapshotKind::kGolden,
                                                  ports_.scheduler.wall_ms(), 0);
    if (auto st = link_snapshot(from->path, dir); !st) {
        spdlog::warn("service {}: sharing the golden snapshot of {}: {}; booting instead",
                     s.record.spec.name, donor->record.spec.name, st.error().describe());
        return false;
    }
    auto snap = store_.add_snapshot(s.record.id, SnapshotKind::kGolden, dir, std::nullopt,
                                    ports_.scheduler.wall_ms());
    if (!snap) {
        std::error_code ec;
        std::filesystem::remove_all(dir, ec);
        spdlog::warn("service {}: recording the shared golden snapshot: {}; booting instead",
                     s.record.spec.name, snap.error().describe());
        return false;
    }
    s.snapshots.push_back(*snap);
    ports_.monitors.keep_snapshot(snap->path);
    goldens_.add_donor(*key, s.record.id);
    set_state(s, ServiceState::kStandby);
    sync_dataplane(s);
    journal(s, {}, "standby",
            fmt::format("golden snapshot shared with {} (same image, memory and command line): {}",
                        donor->record.spec.name, dir));
    if (s.record.spec.min_replicas > 0) start_restore(s);
    return true;
}

}  // namespace wisp::wispd
