#include "wisp/vmm/monitor.h"

#include <fcntl.h>
#include <poll.h>
#include <spdlog/spdlog.h>
#include <sys/socket.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstring>

#include "wisp/vmm/elf_loader.h"
#include "wisp/vmm/kick.h"

namespace wisp::vmm {

namespace {

// Delivers SIGIO to this thread when `fd` becomes readable.
Status enable_sigio(int fd) {
    f_owner_ex owner{F_OWNER_TID, gettid()};
    if (fcntl(fd, F_SETOWN_EX, &owner) != 0) return errno_error("F_SETOWN_EX");
    int flags = fcntl(fd, F_GETFL);
    if (flags < 0 || fcntl(fd, F_SETFL, flags | O_ASYNC | O_NONBLOCK) != 0)
        return errno_error("O_ASYNC");
    return {};
}

}  // namespace

ListenSocket::~ListenSocket() {
    if (dir_ && !name_.empty()) unlinkat(dir_.get(), name_.c_str(), 0);
}

Result<ListenSocket> ListenSocket::bind(const std::string &path) {
    ListenSocket s;
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    if (path.empty() || path.size() >= sizeof addr.sun_path)
        return invalid("control socket path too long or empty: " + path);
    auto slash = path.rfind('/');
    std::string dir = slash == std::string::npos ? "." : path.substr(0, slash == 0 ? 1 : slash);
    s.name_ = slash == std::string::npos ? path : path.substr(slash + 1);
    s.dir_.reset(open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (!s.dir_) return errno_error("open " + dir);
    s.fd_.reset(socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
    if (!s.fd_) return errno_error("socket");
    std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
    unlinkat(s.dir_.get(), s.name_.c_str(), 0);  // a stale socket of a dead monitor
    // Root-only: the socket controls a VM.
    mode_t old = umask(0077);
    int r = ::bind(s.fd_.get(), reinterpret_cast<sockaddr *>(&addr), sizeof addr);
    umask(old);
    if (r != 0) return errno_error("bind " + path);
    if (listen(s.fd_.get(), 4) != 0) return errno_error("listen " + path);
    WISP_RETURN_IF_ERROR(enable_sigio(s.fd_.get()));
    return s;
}

Monitor::Monitor(std::unique_ptr<Vmm> vmm, UniqueFd connection, ListenSocket listen,
                 wisp_vm_state initial_state)
    : vmm_(std::move(vmm)), listen_(std::move(listen)), state_(initial_state) {
    // After a restore the controller learns that the guest runs from its first
    // hypercall (wispd replays buffered SYNs once it knows).
    vmm_->set_first_hypercall_hook([this] {
        if (!restored_) return;
        send_event(WISP_CTL_EV_RUNNING, wisp_ctl_running{vmm_->first_hypercall_ns()});
    });
    if (connection) {
        auto st = adopt_connection(std::move(connection));
        if (!st) spdlog::error("control connection: {}", st.error().describe());
    }
}

Status Monitor::adopt_connection(UniqueFd fd) {
    int type = 0;
    socklen_t len = sizeof type;
    if (getsockopt(fd.get(), SOL_SOCKET, SO_TYPE, &type, &len) != 0 || type != SOCK_SEQPACKET)
        return invalid("the control connection is not a SOCK_SEQPACKET socket");
    WISP_RETURN_IF_ERROR(enable_sigio(fd.get()));
    if (conn_) spdlog::info("a new controller took over");
    conn_ = std::move(fd);
    update_wake_fds();
    if (serving_) send_hello();
    return {};
}

void Monitor::send_hello() {
    wisp_ctl_hello hello{WISP_CONTROL_VERSION, WISP_ABI_VERSION, static_cast<uint32_t>(getpid()),
                         state_};
    send_event(WISP_CTL_EV_HELLO, hello);
}

void Monitor::update_wake_fds() {
    std::vector<int> fds;
    if (conn_) fds.push_back(conn_.get());
    if (listen_.valid()) fds.push_back(listen_.fd());
    vmm_->set_wake_fds(std::move(fds));
}

void Monitor::send_event(uint32_t type, std::span<const uint8_t> payload) {
    if (!conn_) return;
    auto st = control::send_packet(conn_.get(), control::encode(type, payload));
    if (!st) spdlog::warn("control event {}: {}", control::type_name(type), st.error().describe());
}

void Monitor::send_state() { send_event(WISP_CTL_EV_STATE, wisp_ctl_state{state_, 0}); }

void Monitor::reply_error(uint32_t command, const Error &error) {
    spdlog::warn("control: rejected {}: {}", control::type_name(command), error.message);
    wisp_ctl_error e{};
    e.command = command;
    e.error = error.code;
    size_t n = std::min(error.message.size(), size_t{WISP_CTL_ERROR_MAX - 1});
    std::memcpy(e.message, error.message.data(), n);
    e.message_len = static_cast<uint32_t>(n);
    send_event(WISP_CTL_EV_ERROR, e);
}

void Monitor::controller_gone() {
    conn_.reset();
    update_wake_fds();
    if (listen_.valid()) {
        spdlog::warn("controller disconnected; waiting for a new one on the control socket");
        return;
    }
    spdlog::warn("controller disconnected and no control socket to reconnect: stopping");
    stop_requested_ = true;
    if (state_ != WISP_VM_EMPTY) vmm_->stop(WISP_EXIT_STOPPED, "the controller went away");
}

void Monitor::drain(bool block) {
    if (block) {
        pollfd fds[2];
        nfds_t n = 0;
        if (conn_) fds[n++] = pollfd{conn_.get(), POLLIN, 0};
        if (listen_.valid()) fds[n++] = pollfd{listen_.fd(), POLLIN, 0};
        if (n == 0) {
            stop_requested_ = true;  // no controller can ever reach us
            if (state_ != WISP_VM_EMPTY) vmm_->stop(WISP_EXIT_STOPPED, "no controller left");
            return;
        }
        // A signal ends the wait early (EINTR); the timeout bounds the window in
        // which a termination signal lands just before poll() blocks.
        poll(fds, n, 500);
    }
    if (listen_.valid()) {
        for (;;) {
            UniqueFd fd(accept4(listen_.fd(), nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK));
            if (!fd) break;
            auto st = adopt_connection(std::move(fd));
            if (!st) spdlog::warn("control connection refused: {}", st.error().describe());
        }
    }
    while (conn_) {
        auto packet = control::receive_packet(conn_.get());
        if (!packet) {
            if (packet.error().code != EAGAIN) controller_gone();
            return;
        }
        handle_packet(*packet);
    }
}

void Monitor::handle_packet(control::Packet &packet) {
    if (packet.truncated) {
        reply_error(0, invalid("oversized message or too many file descriptors", EMSGSIZE));
        return;
    }
    auto m = control::decode(packet.bytes);
    if (!m) {
        reply_error(0, m.error());
        return;
    }
    if (!control::is_command(m->type)) {
        reply_error(m->type, invalid(std::string(control::type_name(m->type)) +
                                         " is not a command", EBADMSG));
        return;
    }
    bool takes_fds = m->type == WISP_CTL_BOOT || m->type == WISP_CTL_SNAPSHOT || m->type == WISP_CTL_RESTORE;
    if (!takes_fds && !packet.fds.empty()) {
        reply_error(m->type, invalid("unexpected file descriptors with this command", EBADMSG));
        return;
    }
    switch (m->type) {
        case WISP_CTL_BOOT: handle_boot(*m, packet); return;
        case WISP_CTL_PAUSE:
            if (state_ == WISP_VM_EMPTY) return reply_error(m->type, invalid("nothing runs yet"));
            state_ = WISP_VM_PAUSED;
            send_state();
            return;
        case WISP_CTL_RESUME:
            if (state_ == WISP_VM_EMPTY) return reply_error(m->type, invalid("nothing runs yet"));
            state_ = WISP_VM_RUNNING;
            send_state();
            return;
        case WISP_CTL_STOP:
            stop_requested_ = true;
            if (state_ != WISP_VM_EMPTY) vmm_->stop(WISP_EXIT_STOPPED, "stop command");
            return;  // the exited event is the reply
        case WISP_CTL_STATS: {
            wisp_ctl_stats s = vmm_->stats();
            rusage ru{};
            getrusage(RUSAGE_SELF, &ru);
            s.max_rss_kib = static_cast<uint64_t>(ru.ru_maxrss);
            s.state = state_;
            send_event(WISP_CTL_EV_STATS, s);
            return;
        }
        case WISP_CTL_STATUS: send_state(); return;
        case WISP_CTL_SNAPSHOT: handle_snapshot(*m, packet); return;
        case WISP_CTL_RESTORE: handle_restore(*m, packet); return;
        default: reply_error(m->type, invalid("unhandled command", EBADMSG)); return;
    }
}

void Monitor::handle_boot(const control::Message &m, control::Packet &packet) {
    const uint64_t command_ns = host_monotonic_ns();
    if (state_ != WISP_VM_EMPTY)
        return reply_error(m.type, invalid("a guest was already booted", EALREADY));
    if (boot_poisoned_)
        return reply_error(m.type, invalid("an earlier boot failed half-way; use a new monitor"));
    auto request = control::decode_boot(control::payload_as<wisp_ctl_boot>(m), packet.fds.size());
    if (!request) return reply_error(m.type, request.error());
    auto image = read_image_file(packet.fds[1].get());
    if (!image) return reply_error(m.type, image.error());
    ConsoleLog console;
    uint64_t limit = request->console_limit ? request->console_limit : ConsoleLog::kDefaultLimit;
    if (request->flags & WISP_BOOT_LOG_FD)
        console = ConsoleLog(std::move(packet.fds[2]), limit);
    else
        console = ConsoleLog(UniqueFd(dup(STDERR_FILENO)), limit);
    auto st = vmm_->boot(request->config, *image, Tap(std::move(packet.fds[0])), std::move(console));
    if (!st) {
        // Validation failures leave the VM untouched; anything after the memory
        // was handed to KVM does not.
        if (vmm_->memory().valid()) boot_poisoned_ = true;
        return reply_error(m.type, st.error());
    }
    hold_at_ready_ = (request->flags & WISP_BOOT_HOLD_AT_READY) != 0;
    state_ = WISP_VM_RUNNING;
    spdlog::info("booted: {} MiB, entry 0x{:x}", request->config.mem_size >> 20, vmm_->entry_rip());
    send_event(WISP_CTL_EV_STARTED, wisp_ctl_started{command_ns, vmm_->entry_ns(),
                                                      request->config.mem_size,
                                                      vmm_->entry_rip()});
}

void Monitor::handle_snapshot(const control::Message &m, control::Packet &packet) {
    const uint64_t command_ns = host_monotonic_ns();
    if (state_ != WISP_VM_RUNNING && state_ != WISP_VM_PAUSED)
        return reply_error(m.type, invalid("no guest to snapshot"));
    auto request = control::decode_snapshot(control::payload_as<wisp_ctl_snapshot>(m), packet.fds.size());
    if (!request) return reply_error(m.type, request.error());
    SnapshotOptions options;
    options.diff = (request->flags & WISP_SNAPSHOT_DIFF) != 0;
    auto out = vmm_->save_snapshot(packet.fds[0].get(), packet.fds[1].get(), options);
    // A failed snapshot (full disk, no parent for a diff, ...) leaves the VM as it was.
    if (!out) return reply_error(m.type, out.error());
    wisp_ctl_snapshotted ev{};
    ev.command_ns = command_ns;
    ev.done_ns = host_monotonic_ns();
    ev.mem_size = out->memory.mem_size;
    ev.data_bytes = out->memory.data_bytes;
    ev.run_pages = out->memory.run_pages;
    ev.vmstate_bytes = static_cast<uint32_t>(out->vmstate_bytes);
    ev.kind = out->info.kind;
    std::memcpy(ev.id, out->info.id, sizeof ev.id);
    std::memcpy(ev.parent_id, out->info.parent_id, sizeof ev.parent_id);
    spdlog::info("snapshot written: {} KiB of {} MiB memory in {} us", ev.data_bytes >> 10,
                 ev.mem_size >> 20, (ev.done_ns - command_ns) / 1000);
    send_event(WISP_CTL_EV_SNAPSHOT, ev);
}

void Monitor::handle_restore(const control::Message &m, control::Packet &packet) {
    const uint64_t command_ns = host_monotonic_ns();
    if (state_ != WISP_VM_EMPTY)
        return reply_error(m.type, invalid("a guest already runs in this monitor", EALREADY));
    if (boot_poisoned_)
        return reply_error(m.type, invalid("an earlier boot or restore failed half-way; use a new monitor"));
    auto request = control::decode_restore(control::payload_as<wisp_ctl_restore>(m), packet.fds.size());
    if (!request) return reply_error(m.type, request.error());
    RestoreFiles files;
    size_t next = 1;
    files.vmstate = std::move(packet.fds[next++]);
    files.memory = std::move(packet.fds[next++]);
    if (request->flags & WISP_RESTORE_DIFF) {
        files.base_vmstate = std::move(packet.fds[next++]);
        files.base_memory = std::move(packet.fds[next++]);
    }
    uint64_t limit = request->console_limit ? request->console_limit : ConsoleLog::kDefaultLimit;
    ConsoleLog console((request->flags & WISP_RESTORE_LOG_FD) ? std::move(packet.fds[next])
                                                               : UniqueFd(dup(STDERR_FILENO)),
                       limit);
    auto st = vmm_->restore_snapshot(std::move(files), Tap(std::move(packet.fds[0])), std::move(console),
                                     request->identity);
    if (!st) {
        if (vmm_->memory().valid()) boot_poisoned_ = true;
        return reply_error(m.type, st.error());
    }
    restored_ = true;
    state_ = WISP_VM_RUNNING;
    wisp_ctl_restored ev{};
    ev.command_ns = command_ns;
    ev.mem_size = vmm_->memory().size();
    ev.rip = vmm_->entry_rip();
    ev.restore_count = vmm_->restore_count();
    ev.kind = vmm_->restored_from().kind;
    std::memcpy(ev.id, vmm_->restored_from().id, sizeof ev.id);
    ev.entry_ns = host_monotonic_ns();
    send_event(WISP_CTL_EV_RESTORED, ev);
}

int Monitor::serve() {
    // The first hello goes out only now, once main() has applied the sandbox: a
    // controller that sees it may rely on a fully set-up monitor.
    if (!conn_ && !listen_.valid()) {
        spdlog::error("no usable control connection and no control socket: nothing to serve");
        return 1;
    }
    serving_ = true;
    send_hello();
    for (;;) {
        if (termination_requested() && !stop_requested_) {
            stop_requested_ = true;
            if (state_ != WISP_VM_EMPTY) vmm_->stop(WISP_EXIT_STOPPED, "terminated by signal");
        }
        if (vmm_->exited()) {
            state_ = WISP_VM_EXITED;
            send_event(WISP_CTL_EV_EXITED, vmm_->exit_info());
            return 0;
        }
        if (stop_requested_ && state_ == WISP_VM_EMPTY) return 0;
        if (state_ != WISP_VM_RUNNING) {
            drain(/*block=*/true);
            continue;
        }
        switch (vmm_->run()) {
            case RunStop::kExited: continue;
            case RunStop::kReady: {
                wisp_ctl_ready r{vmm_->first_hypercall_ns(), vmm_->ready_ns(),
                                 hold_at_ready_ ? 1u : 0u, 0};
                if (hold_at_ready_) state_ = WISP_VM_PAUSED;
                hold_at_ready_ = false;  // only the first ready is a golden point
                send_event(WISP_CTL_EV_READY, r);
                drain(false);
                continue;
            }
            case RunStop::kInterrupted: drain(false); continue;
        }
    }
}

}  // namespace wisp::vmm
