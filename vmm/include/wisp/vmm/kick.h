// Getting the single vCPU thread out of KVM_RUN when something needs the monitor:
// a control message (SIGIO from the control sockets, see control_server.h) or a
// termination signal. The handler sets kvm_run->immediate_exit, which KVM checks
// on entry, so a signal that lands just before KVM_RUN is never lost; a signal
// during KVM_RUN makes it return -EINTR. The caller clears the flag *before*
// draining its sockets (Vmm::run does), so a message arriving during the drain
// kicks again.
#pragma once

#include <linux/kvm.h>

namespace wisp::vmm {

// Installs the handler for SIGIO, SIGTERM, SIGINT and SIGHUP (no SA_RESTART).
void install_kick_handlers();
// The vCPU whose run state the handler flags (one vCPU per process).
void set_kick_target(kvm_run *run);
// Forgets `run` if it is still the target (a newer vCPU may have replaced it).
void clear_kick_target(kvm_run *run);
// True once SIGTERM/SIGINT/SIGHUP arrived.
bool termination_requested();

}  // namespace wisp::vmm
