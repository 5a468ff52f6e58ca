// Scoped network fixtures for tests: namespaces, veth pairs, taps, bpffs pin roots
// and temporary directories. Every object removes what it created in its
// destructor, so a failing assertion leaves nothing behind. Names embed the test
// process id, so tests can run in parallel (ctest -j2) and never collide with a
// leftover of a crashed run.
//
// Addresses used by tests come from 198.18.0.0/15 only (the benchmarking range).
#pragma once

#include <string>
#include <vector>

#include "wisp/unique_fd.h"

namespace wisp::test {

// An interface or namespace name: "w" + tag + pid + counter, at most 15 chars.
// `tag` must be 1..6 lowercase letters/digits.
std::string unique_name(const std::string &tag);

class ScopedNetns {
public:
    explicit ScopedNetns(const std::string &tag);
    ~ScopedNetns();
    ScopedNetns(const ScopedNetns &) = delete;
    ScopedNetns &operator=(const ScopedNetns &) = delete;
    const std::string &name() const { return name_; }
    // argv prefix to run a command inside: {"ip", "netns", "exec", name}
    std::vector<std::string> exec_prefix() const;

private:
    std::string name_;
};

// A veth pair; `peer` can be moved into a namespace with move_peer_to().
class ScopedVeth {
public:
    explicit ScopedVeth(const std::string &tag);
    ~ScopedVeth();
    ScopedVeth(const ScopedVeth &) = delete;
    ScopedVeth &operator=(const ScopedVeth &) = delete;
    const std::string &host() const { return host_; }
    const std::string &peer() const { return peer_; }
    void move_peer_to(const ScopedNetns &ns);

private:
    std::string host_, peer_;
};

// A tap device (IFF_TAP | IFF_NO_PI) whose fd the test owns; the device goes away
// when the fd closes (it is not persistent). It is brought up.
class ScopedTap {
public:
    explicit ScopedTap(const std::string &tag);
    const std::string &name() const { return name_; }
    int fd() const { return fd_.get(); }
    int ifindex() const;
    UniqueFd release_fd() { return std::move(fd_); }

private:
    std::string name_;
    UniqueFd fd_;
};

// A directory under /sys/fs/bpf, removed recursively (with its pins) at the end.
class ScopedBpffsDir {
public:
    explicit ScopedBpffsDir(const std::string &tag);
    ~ScopedBpffsDir();
    const std::string &path() const { return path_; }

private:
    std::string path_;
};

// A fresh directory under /tmp, removed recursively at the end.
class ScopedTempDir {
public:
    explicit ScopedTempDir(const std::string &tag);
    ~ScopedTempDir();
    const std::string &path() const { return path_; }

private:
    std::string path_;
};

}  // namespace wisp::test
