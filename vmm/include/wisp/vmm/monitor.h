// `wisp-vmm serve`: a monitor driven by a controller (wispd) over the control
// protocol. It starts empty — VM and vCPU created, sandbox applied — and waits
// for its first command, so a controller can keep a pool of pre-forked monitors.
//
// One thread does everything: while the guest runs, a control message raises
// SIGIO (O_ASYNC, owner = this thread), which kicks the vCPU out of KVM_RUN
// (kick.h); the loop then drains the socket and goes back into the guest.
//
// Controllers may come and go: with a listening socket (--listen PATH) a new
// controller can connect at any time and takes over (the previous connection is
// closed), which is how a restarted wispd re-adopts running monitors. Without a
// listening socket, losing the controller stops the VM.
#pragma once

#include <memory>
#include <string>

#include "wisp/result.h"
#include "wisp/unique_fd.h"
#include "wisp/vmm/control.h"
#include "wisp/vmm/vmm.h"

namespace wisp::vmm {

// A listening SOCK_SEQPACKET socket at a path, unlinked when destroyed (through
// a directory fd, so it works from inside the sandbox's empty root).
class ListenSocket {
public:
    ListenSocket() = default;
    ListenSocket(ListenSocket &&) = default;
    ListenSocket &operator=(ListenSocket &&) = default;
    ~ListenSocket();
    static Result<ListenSocket> bind(const std::string &path);
    int fd() const { return fd_.get(); }
    bool valid() const { return fd_.valid(); }

private:
    UniqueFd fd_;
    UniqueFd dir_;
    std::string name_;
};

class Monitor {
public:
    // `connection`: a connected controller (may be invalid if `listen` is valid).
    // `initial_state`: EMPTY for `serve`; RUNNING when the VM was booted or
    // restored already (`wisp-vmm run/restore --listen`).
    Monitor(std::unique_ptr<Vmm> vmm, UniqueFd connection, ListenSocket listen,
            wisp_vm_state initial_state = WISP_VM_EMPTY);

    // Sends hello, then serves until the VM ended (or the monitor was told to stop while empty).
    // Returns the process exit code: 0 for an orderly end (the VM's own exit
    // reason is reported over the control channel and logged), 1 when there is
    // no usable control channel at all.
    int serve();

    const Vmm &vmm() const { return *vmm_; }

private:
    Status adopt_connection(UniqueFd fd);
    void drain(bool block);
    void handle_packet(control::Packet &packet);
    void handle_boot(const control::Message &m, control::Packet &packet);
    void handle_snapshot(const control::Message &m, control::Packet &packet);
    void handle_restore(const control::Message &m, control::Packet &packet);
    void reply_error(uint32_t command, const Error &error);
    void send_event(uint32_t type, std::span<const uint8_t> payload);
    template <class T>
    void send_event(uint32_t type, const T &payload) {
        send_event(type, std::span<const uint8_t>(reinterpret_cast<const uint8_t *>(&payload),
                                                  sizeof payload));
    }
    void send_state();
    void send_hello();
    void controller_gone();
    void update_wake_fds();

    std::unique_ptr<Vmm> vmm_;
    UniqueFd conn_;
    ListenSocket listen_;
    wisp_vm_state state_ = WISP_VM_EMPTY;
    bool hold_at_ready_ = false;
    bool boot_poisoned_ = false;
    bool stop_requested_ = false;
    bool serving_ = false;
    bool restored_ = false;
};

}  // namespace wisp::vmm
