// Golden snapshots shared between services that boot to the same state.
//
// A golden snapshot is identity-free: the guest takes its MAC, addresses and VIP
// from the boot-info page at every restore. Two services whose image content,
// memory size and command line are equal therefore boot to the same golden
// snapshot, and the second one need not boot at all: its golden directory is made
// of hard links to the first one's files (same inodes, so one copy on disk and one
// copy of every page in the page cache, shared by the replicas of all of them).
// The file system counts the references: deleting a service removes its links,
// and the last link frees the data. docs/density.md has the design and figures.
//
// Only services whose golden snapshot was written or shared by this wispd donate:
// after a restart the image files may have changed, and the key of an old golden
// snapshot would be recomputed from the new content. (Recording the key in the
// store would lift this; the first service of each kind boots again instead.)
#pragma once

#include <sys/stat.h>

#include <map>
#include <optional>
#include <set>
#include <string>
#include <unordered_map>

#include "wisp/result.h"
#include "wispd/types.h"

namespace wisp::wispd {

class GoldenShare {
public:
    // The sharing key of a spec: SHA-256 of the image's content, memory size and
    // command line. Digests are cached per image file (inode, size, mtime), so a
    // create of the ten-thousandth service of one image reads no image.
    Result<std::string> key_of(const ServiceSpec &spec);

    // `id` has a golden snapshot made from `key`: later services may share it.
    void add_donor(const std::string &key, ServiceId id);
    // `id` is gone (deleted): it donates no more.
    void remove(ServiceId id);
    // A service with a golden snapshot for `key`, if any.
    std::optional<ServiceId> donor(const std::string &key) const;

private:
    struct CachedDigest {
        dev_t dev = 0;
        ino_t ino = 0;
        off_t size = 0;
        int64_t mtime_ns = 0;
        std::string sha256;
    };
    std::unordered_map<std::string, CachedDigest> digests_;  // by image path
    std::map<std::string, std::set<ServiceId>> donors_;       // by key
    std::unordered_map<ServiceId, std::string> key_of_donor_;
};

// Makes `to` a snapshot directory whose files are hard links to those of the
// snapshot directory `from` (same file system). Crash-safe like a snapshot write:
// linked into a temporary directory, made durable, renamed into place.
Status link_snapshot(const std::string &from, const std::string &to);

}  // namespace wisp::wispd
