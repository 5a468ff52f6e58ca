// The monitor's sandbox, applied once the VM, vCPU, tap and control sockets are
// open and before the guest runs: an empty root directory, no capabilities,
// no_new_privs, and a seccomp allow-list (vmm/src/seccomp_policy.cpp, one reason
// per syscall). After it the process can do little more than run its one VM.
#pragma once

#include "wisp/result.h"

namespace wisp::vmm {

struct SandboxOptions {
    bool chroot_empty = true;  // chroot into an empty, already-deleted directory
};

Status enter_sandbox(const SandboxOptions &options);

// Only the seccomp filter (for the test that shows a forbidden syscall kills).
Status install_seccomp_filter();

}  // namespace wisp::vmm
