// Snapshot directories on disk, the controller's side (wispd, the wisp-vmm CLI,
// tests). The monitor is sandboxed and opens nothing by path: the controller
// creates the files, hands their descriptors to the monitor, and puts the result
// into place.
//
// Crash safety (docs/snapshot-format.md): a snapshot is written into a temporary
// directory next to its final place; commit() makes both files and the directory
// durable, then atomically exchanges it with the previous snapshot (or renames it
// into place), makes the parent durable and only then deletes the previous one.
// At every instant the final path names either the complete old snapshot or the
// complete new one. Leftover temporary directories of a crashed writer are
// removed by remove_abandoned().
#pragma once

#include <string>

#include "wisp/result.h"
#include "wisp/unique_fd.h"

namespace wisp::snapshot {

inline constexpr const char *kVmstateFile = "vmstate";
inline constexpr const char *kMemoryFile = "memory";

// A snapshot being written. Destroying it without commit() removes everything it
// created; the previous snapshot at the final path is never touched until commit.
class PendingSnapshot {
public:
    // Creates "<parent of dir>/.<name of dir>.tmp-<pid>-<n>/" with empty `vmstate`
    // and `memory` files (read-write, mode 0600).
    static Result<PendingSnapshot> create(const std::string &dir);

    PendingSnapshot(PendingSnapshot &&other) noexcept;
    PendingSnapshot &operator=(PendingSnapshot &&other) = delete;
    PendingSnapshot(const PendingSnapshot &) = delete;
    ~PendingSnapshot();

    int vmstate_fd() const { return vmstate_.get(); }
    int memory_fd() const { return memory_.get(); }
    const std::string &temp_path() const { return temp_path_; }
    const std::string &final_path() const { return final_path_; }

    // fsync files and directory, move into place (replacing a previous snapshot
    // atomically), fsync the parent, remove the previous one.
    Status commit();

private:
    PendingSnapshot() = default;
    UniqueFd parent_;
    UniqueFd vmstate_, memory_;
    std::string name_, temp_name_, temp_path_, final_path_;
    bool done_ = false;
};

// A snapshot's files opened for reading (what a restore hands to a monitor).
struct SnapshotFiles {
    UniqueFd vmstate;
    UniqueFd memory;
};
Result<SnapshotFiles> open_snapshot(const std::string &dir);

// Removes leftovers of writers that died (".<name>.tmp-<pid>-<n>" directories
// whose process is gone) in `parent`. Returns how many it removed.
Result<int> remove_abandoned(const std::string &parent);

// Removes a snapshot directory (its files, then the directory).
Status remove_snapshot(const std::string &dir);

}  // namespace wisp::snapshot
