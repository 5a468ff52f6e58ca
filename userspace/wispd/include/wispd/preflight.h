// Start-up checks that turn a confusing failure deep in the init sequence into one
// clear message up front: what is missing, and how to fix it.
//
// Each check is a function of its own so that the data-plane and monitor start-up
// code can call the ones they depend on; run_preflight() runs them all and reports
// every problem at once.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "wisp/result.h"
#include "wispd/options.h"

namespace wisp::wispd {

Status check_root();
// `device` can be opened read-write and speaks the KVM API version 12.
Status check_kvm(const std::string &device = "/dev/kvm");
// The pin root is on a bpffs mount: the directory itself if it exists, else the
// nearest existing parent (wispd creates the rest).
Status check_bpffs(const std::string &pin_root);
// Kernel BTF is readable (CO-RE relocations of the data plane need it).
Status check_btf(const std::string &path = "/sys/kernel/btf/vmlinux");
// /dev/net/tun can be opened (taps for replicas).
Status check_tun(const std::string &path = "/dev/net/tun");
// The uplink exists and is up.
Status check_uplink(const std::string &name);
// The monitor executable (wisp-vmm) exists and may be run.
Status check_monitor_binary(const std::string &path);
// `path` exists as a directory (or can be created) and is writable by us.
Status check_directory(const std::string &path, const std::string &what);

// Raises the soft RLIMIT_NOFILE to the hard limit: wispd keeps two snapshot files
// open per service and a control socket, pidfd and tap per monitor, so thousands of
// services need far more than the usual soft limit of 1024. Returns the new limit.
// (Children inherit it; wisp-vmm needs few descriptors and its sandbox is unaffected.)
Result<uint64_t> raise_fd_limit();

// Every check wispd needs for `options`; the error lists all failures, one per line.
Status run_preflight(const Options &options);

}  // namespace wisp::wispd
