// The control protocol of vmm/abi/wisp_control.h in C++: packet encoding and the
// exact-length checks (pure, unit tested and fuzzed), SOCK_SEQPACKET I/O with
// SCM_RIGHTS, and ControlClient, the controller side used by wispd, tests and
// benchmarks.
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <optional>
#include <span>
#include <string>
#include <type_traits>
#include <vector>

#include "wisp/result.h"
#include "wisp/unique_fd.h"
#include "wisp/vmm/vmm.h"
#include "wisp_control.h"

namespace wisp::vmm::control {

// Payload size a message type must carry, or nullopt for an unknown type.
std::optional<size_t> payload_size(uint32_t type);
bool is_command(uint32_t type);
const char *type_name(uint32_t type);

std::vector<uint8_t> encode(uint32_t type, std::span<const uint8_t> payload = {});
template <class T>
    requires std::is_trivially_copyable_v<T>
std::vector<uint8_t> encode(uint32_t type, const T &payload) {
    return encode(type, std::span<const uint8_t>(reinterpret_cast<const uint8_t *>(&payload),
                                                 sizeof payload));
}

struct Message {
    uint32_t type = 0;
    std::span<const uint8_t> payload;
};

// Checks a received packet: header present, `length` equal to the bytes that
// follow, type known, payload of exactly the size the type prescribes.
Result<Message> decode(std::span<const uint8_t> packet);

// Copies a payload out as its struct (sizes were checked by decode()).
template <class T>
T payload_as(const Message &m) {
    T v{};
    std::memcpy(&v, m.payload.data(), std::min(sizeof v, m.payload.size()));
    return v;
}

// A validated boot command.
struct BootRequest {
    BootConfig config;
    uint32_t flags = 0;
    uint64_t console_limit = 0;
};
// Checks every field of a boot payload and the number of fds that came with it.
Result<BootRequest> decode_boot(const wisp_ctl_boot &boot, size_t fd_count);
wisp_ctl_boot make_boot(const BootConfig &config, uint32_t flags, uint64_t console_limit = 0);

// A validated snapshot command.
struct SnapshotRequest {
    uint32_t flags = 0;
};
// Checks flags, padding and that exactly the two files came with it.
Result<SnapshotRequest> decode_snapshot(const wisp_ctl_snapshot &snapshot, size_t fd_count);

// A validated restore command.
struct RestoreRequest {
    uint32_t flags = 0;
    uint64_t console_limit = 0;
    std::optional<GuestIdentity> identity;  // with WISP_RESTORE_IDENTITY
};
// Checks flags, the identity (if given) and the number of fds the flags call for.
Result<RestoreRequest> decode_restore(const wisp_ctl_restore &restore, size_t fd_count);
// `identity` (may be null) sets WISP_RESTORE_IDENTITY.
wisp_ctl_restore make_restore(uint32_t flags, const GuestIdentity *identity, uint64_t console_limit = 0);

// ---- socket I/O -------------------------------------------------------------

struct Packet {
    std::vector<uint8_t> bytes;
    std::vector<UniqueFd> fds;
    bool truncated = false;  // the packet (or its fds) did not fit: reject it
};

// Sends one packet (MSG_NOSIGNAL), optionally with fds.
Status send_packet(int fd, std::span<const uint8_t> bytes, std::span<const int> fds = {});
// Receives one packet without blocking. Error EAGAIN: nothing pending;
// ECONNRESET: the peer closed the connection.
Result<Packet> receive_packet(int fd);

// ---- controller side ----------------------------------------------------------

struct Event {
    uint32_t type = 0;
    std::vector<uint8_t> payload;
    template <class T>
    T as() const {
        T v{};
        std::memcpy(&v, payload.data(), std::min(sizeof v, payload.size()));
        return v;
    }
};

class ControlClient {
public:
    explicit ControlClient(UniqueFd fd) : fd_(std::move(fd)) {}
    static Result<ControlClient> connect(const std::string &socket_path);

    int fd() const { return fd_.get(); }
    Status send(uint32_t type, std::span<const uint8_t> payload = {}, std::span<const int> fds = {});
    Status boot(const wisp_ctl_boot &boot, int tap_fd, int image_fd, int log_fd = -1);
    Status snapshot(uint32_t flags, int vmstate_fd, int memory_fd);
    // The fds a restore command carries; those its flags do not call for are ignored.
    struct RestoreFds {
        int tap = -1, vmstate = -1, memory = -1;
        int base_vmstate = -1, base_memory = -1;  // WISP_RESTORE_DIFF
        int log = -1;                             // WISP_RESTORE_LOG_FD
    };
    Status restore(const wisp_ctl_restore &restore, const RestoreFds &fds);
    // Next event within `timeout_ms`; ETIMEDOUT if none, ECONNRESET if the
    // monitor closed the connection.
    Result<Event> receive(int timeout_ms);
    // Skips other events until one of `type` arrives; an EV_ERROR reply or an
    // EV_EXITED (when not asked for) becomes an error carrying its message.
    Result<Event> wait_for(uint32_t type, int timeout_ms);

private:
    UniqueFd fd_;
};

}  // namespace wisp::vmm::control
