#include "wisp/vmm/control.h"

#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>

#include <algorithm>
#include <cstring>

namespace wisp::vmm::control {

namespace {
constexpr size_t kHeader = sizeof(wisp_ctl_header);
constexpr size_t kMaxFds = 8;
}  // namespace

std::optional<size_t> payload_size(uint32_t type) {
    switch (type) {
        case WISP_CTL_BOOT: return sizeof(wisp_ctl_boot);
        case WISP_CTL_PAUSE:
        case WISP_CTL_RESUME:
        case WISP_CTL_STOP:
        case WISP_CTL_STATS:
        case WISP_CTL_STATUS: return 0;
        case WISP_CTL_SNAPSHOT: return sizeof(wisp_ctl_snapshot);
        case WISP_CTL_RESTORE: return sizeof(wisp_ctl_restore);
        case WISP_CTL_EV_HELLO: return sizeof(wisp_ctl_hello);
        case WISP_CTL_EV_STARTED: return sizeof(wisp_ctl_started);
        case WISP_CTL_EV_READY: return sizeof(wisp_ctl_ready);
        case WISP_CTL_EV_EXITED: return sizeof(wisp_ctl_exited);
        case WISP_CTL_EV_STATS: return sizeof(wisp_ctl_stats);
        case WISP_CTL_EV_STATE: return sizeof(wisp_ctl_state);
        case WISP_CTL_EV_ERROR: return sizeof(wisp_ctl_error);
        case WISP_CTL_EV_SNAPSHOT: return sizeof(wisp_ctl_snapshotted);
        case WISP_CTL_EV_RESTORED: return sizeof(wisp_ctl_restored);
        case WISP_CTL_EV_RUNNING: return sizeof(wisp_ctl_running);
        default: return std::nullopt;
    }
}

bool is_command(uint32_t type) { return type >= WISP_CTL_BOOT && type <= WISP_CTL_STATUS; }

const char *type_name(uint32_t type) {
    switch (type) {
        case WISP_CTL_BOOT: return "boot";
        case WISP_CTL_PAUSE: return "pause";
        case WISP_CTL_RESUME: return "resume";
        case WISP_CTL_STOP: return "stop";
        case WISP_CTL_STATS: return "stats";
        case WISP_CTL_SNAPSHOT: return "snapshot";
        case WISP_CTL_RESTORE: return "restore";
        case WISP_CTL_STATUS: return "status";
        case WISP_CTL_EV_HELLO: return "hello";
        case WISP_CTL_EV_STARTED: return "started";
        case WISP_CTL_EV_READY: return "ready";
        case WISP_CTL_EV_EXITED: return "exited";
        case WISP_CTL_EV_STATS: return "stats-reply";
        case WISP_CTL_EV_STATE: return "state";
        case WISP_CTL_EV_ERROR: return "error";
        case WISP_CTL_EV_SNAPSHOT: return "snapshot-done";
        case WISP_CTL_EV_RESTORED: return "restored";
        case WISP_CTL_EV_RUNNING: return "running";
        default: return "unknown";
    }
}

std::vector<uint8_t> encode(uint32_t type, std::span<const uint8_t> payload) {
    wisp_ctl_header h{type, static_cast<uint32_t>(payload.size())};
    std::vector<uint8_t> out(kHeader + payload.size());
    std::memcpy(out.data(), &h, kHeader);
    if (!payload.empty()) std::memcpy(out.data() + kHeader, payload.data(), payload.size());
    return out;
}

Result<Message> decode(std::span<const uint8_t> packet) {
    if (packet.size() < kHeader)
        return invalid("truncated message: " + std::to_string(packet.size()) + " bytes", EBADMSG);
    if (packet.size() > WISP_CTL_MSG_MAX)
        return invalid("oversized message: " + std::to_string(packet.size()) + " bytes", EMSGSIZE);
    wisp_ctl_header h;
    std::memcpy(&h, packet.data(), kHeader);
    if (h.length != packet.size() - kHeader)
        return invalid("message length field " + std::to_string(h.length) + " does not match the " +
                           std::to_string(packet.size() - kHeader) + " payload bytes received",
                       EBADMSG);
    auto expected = payload_size(h.type);
    if (!expected) return invalid("unknown message type " + std::to_string(h.type), EBADMSG);
    if (*expected != h.length)
        return invalid(std::string(type_name(h.type)) + " message carries " +
                           std::to_string(h.length) + " payload bytes, expected " +
                           std::to_string(*expected),
                       EBADMSG);
    return Message{h.type, packet.subspan(kHeader)};
}

Result<BootRequest> decode_boot(const wisp_ctl_boot &b, size_t fd_count) {
    BootRequest r;
    if (b.flags & ~uint32_t{WISP_BOOT_FLAGS_ALL})
        return invalid("boot: unknown flags " + std::to_string(b.flags));
    size_t want_fds = (b.flags & WISP_BOOT_LOG_FD) ? 3 : 2;
    if (fd_count != want_fds)
        return invalid("boot: expected " + std::to_string(want_fds) +
                       " file descriptors (tap, image[, log]), got " + std::to_string(fd_count));
    WISP_RETURN_IF_ERROR(GuestMemory::check_size(b.mem_size));
    if (b.cmdline_len >= WISP_CTL_CMDLINE_MAX) return invalid("boot: command line too long");
    if (std::memchr(b.cmdline, 0, b.cmdline_len) != nullptr)
        return invalid("boot: command line contains a NUL byte");
    r.flags = b.flags;
    r.console_limit = b.console_limit;
    r.config.mem_size = b.mem_size;
    r.config.cmdline.assign(b.cmdline, b.cmdline_len);
    r.config.identity = identity_from(b);
    WISP_RETURN_IF_ERROR(check_identity(r.config.identity));
    return r;
}

Result<SnapshotRequest> decode_snapshot(const wisp_ctl_snapshot &s, size_t fd_count) {
    if (s.flags & ~uint32_t{WISP_SNAPSHOT_FLAGS_ALL})
        return invalid("snapshot: unknown flags " + std::to_string(s.flags));
    if (s.pad0 != 0) return invalid("snapshot: padding is not zero");
    if (fd_count != 2)
        return invalid("snapshot: expected 2 file descriptors (vmstate, memory), got " +
                       std::to_string(fd_count));
    return SnapshotRequest{s.flags};
}

Result<RestoreRequest> decode_restore(const wisp_ctl_restore &r, size_t fd_count) {
    if (r.flags & ~uint32_t{WISP_RESTORE_FLAGS_ALL})
        return invalid("restore: unknown flags " + std::to_string(r.flags));
    size_t want = 3 + ((r.flags & WISP_RESTORE_DIFF) ? 2 : 0) + ((r.flags & WISP_RESTORE_LOG_FD) ? 1 : 0);
    if (fd_count != want)
        return invalid("restore: expected " + std::to_string(want) +
                       " file descriptors (tap, vmstate, memory[, parent vmstate, parent memory][, log]), got " +
                       std::to_string(fd_count));
    RestoreRequest req;
    req.flags = r.flags;
    req.console_limit = r.console_limit;
    if (r.flags & WISP_RESTORE_IDENTITY) {
        GuestIdentity id = identity_from(r);
        WISP_RETURN_IF_ERROR(check_identity(id));
        req.identity = id;
    }
    return req;
}

wisp_ctl_restore make_restore(uint32_t flags, const GuestIdentity *identity, uint64_t console_limit) {
    wisp_ctl_restore r{};
    r.console_limit = console_limit;
    r.flags = flags & ~uint32_t{WISP_RESTORE_IDENTITY};
    if (identity) {
        r.flags |= WISP_RESTORE_IDENTITY;
        identity_to(*identity, r);
    }
    return r;
}

wisp_ctl_boot make_boot(const BootConfig &c, uint32_t flags, uint64_t console_limit) {
    wisp_ctl_boot b{};
    b.mem_size = c.mem_size;
    b.console_limit = console_limit;
    b.flags = flags;
    size_t n = std::min(c.cmdline.size(), size_t{WISP_CTL_CMDLINE_MAX - 1});
    std::memcpy(b.cmdline, c.cmdline.data(), n);
    b.cmdline_len = static_cast<uint32_t>(n);
    identity_to(c.identity, b);
    return b;
}

Status send_packet(int fd, std::span<const uint8_t> bytes, std::span<const int> fds) {
    iovec iov{const_cast<uint8_t *>(bytes.data()), bytes.size()};
    msghdr msg{};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int) * kMaxFds)];
    if (!fds.empty()) {
        if (fds.size() > kMaxFds) return invalid("too many file descriptors for one message");
        std::memset(control, 0, sizeof control);
        msg.msg_control = control;
        msg.msg_controllen = CMSG_SPACE(sizeof(int) * fds.size());
        cmsghdr *c = CMSG_FIRSTHDR(&msg);
        c->cmsg_level = SOL_SOCKET;
        c->cmsg_type = SCM_RIGHTS;
        c->cmsg_len = CMSG_LEN(sizeof(int) * fds.size());
        std::memcpy(CMSG_DATA(c), fds.data(), sizeof(int) * fds.size());
    }
    for (;;) {
        ssize_t n = sendmsg(fd, &msg, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) return errno_error("send control message");
        return {};
    }
}

Result<Packet> receive_packet(int fd) {
    Packet p;
    p.bytes.resize(WISP_CTL_MSG_MAX + 1);
    iovec iov{p.bytes.data(), p.bytes.size()};
    msghdr msg{};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int) * kMaxFds)];
    msg.msg_control = control;
    msg.msg_controllen = sizeof control;
    ssize_t n;
    do {
        n = recvmsg(fd, &msg, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
    } while (n < 0 && errno == EINTR);
    if (n < 0) return errno_error("receive control message");
    // Take ownership of every fd that arrived, whatever else is wrong.
    for (cmsghdr *c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(&msg, c)) {
        if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) continue;
        size_t count = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
        for (size_t i = 0; i < count; i++) {
            int received;
            std::memcpy(&received, CMSG_DATA(c) + i * sizeof(int), sizeof(int));
            p.fds.emplace_back(received);
        }
    }
    if (n == 0 && p.fds.empty()) return Error{ECONNRESET, "controller closed the connection"};
    p.truncated = (msg.msg_flags & (MSG_TRUNC | MSG_CTRUNC)) != 0;
    p.bytes.resize(static_cast<size_t>(n));
    return p;
}

Result<ControlClient> ControlClient::connect(const std::string &path) {
    UniqueFd fd(socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0));
    if (!fd) return errno_error("socket");
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    if (path.size() >= sizeof addr.sun_path) return invalid("socket path too long: " + path);
    std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
    if (::connect(fd.get(), reinterpret_cast<sockaddr *>(&addr), sizeof addr) != 0)
        return errno_error("connect " + path);
    return ControlClient(std::move(fd));
}

Status ControlClient::send(uint32_t type, std::span<const uint8_t> payload,
                           std::span<const int> fds) {
    return send_packet(fd(), encode(type, payload), fds);
}

Status ControlClient::boot(const wisp_ctl_boot &boot, int tap_fd, int image_fd, int log_fd) {
    int fds[3] = {tap_fd, image_fd, log_fd};
    size_t n = log_fd >= 0 ? 3 : 2;
    return send_packet(fd(), encode(WISP_CTL_BOOT, boot), std::span<const int>(fds, n));
}

Status ControlClient::snapshot(uint32_t flags, int vmstate_fd, int memory_fd) {
    int fds[2] = {vmstate_fd, memory_fd};
    return send_packet(fd(), encode(WISP_CTL_SNAPSHOT, wisp_ctl_snapshot{flags, 0}), fds);
}

Status ControlClient::restore(const wisp_ctl_restore &restore, const RestoreFds &f) {
    std::vector<int> fds = {f.tap, f.vmstate, f.memory};
    if (restore.flags & WISP_RESTORE_DIFF) {
        fds.push_back(f.base_vmstate);
        fds.push_back(f.base_memory);
    }
    if (restore.flags & WISP_RESTORE_LOG_FD) fds.push_back(f.log);
    for (int fd : fds)
        if (fd < 0) return invalid("restore: a file descriptor the flags call for is missing");
    return send_packet(fd(), encode(WISP_CTL_RESTORE, restore), fds);
}

Result<Event> ControlClient::receive(int timeout_ms) {
    pollfd p{fd(), POLLIN, 0};
    int r;
    do {
        r = poll(&p, 1, timeout_ms);
    } while (r < 0 && errno == EINTR);
    if (r < 0) return errno_error("poll control socket");
    if (r == 0) return Error{ETIMEDOUT, "no event from the monitor within " +
                                            std::to_string(timeout_ms) + " ms"};
    auto packet = receive_packet(fd());
    if (!packet) return std::move(packet).error();
    if (packet->truncated) return invalid("oversized event from the monitor", EMSGSIZE);
    auto m = decode(packet->bytes);
    if (!m) return std::move(m).error();
    return Event{m->type, std::vector<uint8_t>(m->payload.begin(), m->payload.end())};
}

Result<Event> ControlClient::wait_for(uint32_t type, int timeout_ms) {
    for (;;) {
        auto e = receive(timeout_ms);
        if (!e) return e;
        if (e->type == type) return e;
        if (e->type == WISP_CTL_EV_ERROR) {
            auto err = e->as<wisp_ctl_error>();
            err.message[WISP_CTL_ERROR_MAX - 1] = 0;
            return Error{err.error, std::string("monitor rejected ") + type_name(err.command) +
                                        ": " + err.message};
        }
        if (e->type == WISP_CTL_EV_EXITED) {
            auto ex = e->as<wisp_ctl_exited>();
            ex.detail[WISP_CTL_DETAIL_MAX - 1] = 0;
            return Error{ECHILD, std::string("VM exited (") + exit_reason_name(ex.reason) +
                                     "): " + ex.detail};
        }
    }
}

}  // namespace wisp::vmm::control
