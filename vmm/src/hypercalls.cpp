// The hypercall handlers: one per call, each validating its argument struct and
// every guest range through GuestMemory::translate before touching it. A bad
// argument ends this VM with a named reason; nothing a guest passes can crash
// the monitor. No allocation on these paths.
#include <poll.h>
#include <spdlog/spdlog.h>

#include <cerrno>
#include <cstddef>
#include <cstring>

#include "wisp/vmm/kick.h"
#include "wisp/vmm/vmm.h"

namespace wisp::vmm {

namespace {
constexpr uint32_t kMaxTxFrame = 65535;

std::string hex(uint64_t v) {
    char buf[24];
    std::snprintf(buf, sizeof buf, "0x%llx", static_cast<unsigned long long>(v));
    return buf;
}
}  // namespace

Vmm::Action Vmm::dispatch(uint32_t nr, uint64_t arg) {
    stats_.hypercalls++;
    if (first_hypercall_ns_ == 0) {
        first_hypercall_ns_ = host_monotonic_ns();
        if (first_hypercall_hook_) first_hypercall_hook_();
    }
    current_hypercall_ = nr;
    switch (nr) {
        case WISP_HC_CONSOLE: return hc_console(arg);
        case WISP_HC_CLOCK: return hc_clock(arg);
        case WISP_HC_POLL: return hc_poll(arg);
        case WISP_HC_NET_READ: return hc_net_batch(arg, /*write=*/false);
        case WISP_HC_NET_WRITE: return hc_net_batch(arg, /*write=*/true);
        case WISP_HC_READY: return hc_ready(arg);
        case WISP_HC_HALT: return hc_halt(arg);
        case WISP_HC_ABORT: return hc_abort(arg);
        default:
            die(WISP_EXIT_UNKNOWN_HYPERCALL, "unknown hypercall number " + std::to_string(nr) +
                                                 " (argument " + hex(arg) + ")");
            return Action::kExit;
    }
}

bool Vmm::translate_or_die(uint64_t gpa, uint64_t len, const char *what, std::span<uint8_t> &out) {
    Translation t = memory_.translate(gpa, len);
    if (t.ok) {
        out = t.bytes;
        return true;
    }
    if (t.error == RangeError::kOverflow)
        die(WISP_EXIT_LENGTH_OVERFLOW,
            std::string(what) + " range " + hex(gpa) + " + " + hex(len) + " overflows");
    else
        die(WISP_EXIT_BAD_POINTER, std::string(what) + " range [" + hex(gpa) + ", +" + hex(len) +
                                       ") is outside guest memory (" + hex(memory_.size()) + ")");
    return false;
}

template <class T>
bool Vmm::read_arg(uint64_t gpa, T &out) {
    std::span<uint8_t> bytes;
    if (!translate_or_die(gpa, sizeof(T), "argument struct", bytes)) return false;
    std::memcpy(&out, bytes.data(), sizeof(T));  // a copy: the guest cannot change it under us
    return true;
}

template <class T>
bool Vmm::write_out(uint64_t gpa, const T &value) {
    std::span<uint8_t> bytes;
    if (!translate_or_die(gpa, sizeof(T), "argument struct", bytes)) return false;
    std::memcpy(bytes.data(), &value, sizeof(T));
    return true;
}

Vmm::Action Vmm::hc_console(uint64_t arg) {
    wisp_hc_console c;
    if (!read_arg(arg, c)) return Action::kExit;
    if (c.len > WISP_CONSOLE_MAX) {
        die(WISP_EXIT_BAD_ARGUMENT, "console write of " + std::to_string(c.len) +
                                        " bytes exceeds WISP_CONSOLE_MAX");
        return Action::kExit;
    }
    std::span<uint8_t> bytes;
    if (!translate_or_die(c.data, c.len, "console data", bytes)) return Action::kExit;
    console_.write(bytes);
    return Action::kContinue;
}

Vmm::Action Vmm::hc_clock(uint64_t arg) {
    wisp_hc_clock c{clock_.monotonic_ns(), clock_.wall_ns()};
    return write_out(arg, c) ? Action::kContinue : Action::kExit;
}

bool Vmm::frame_table(uint64_t frames, uint32_t count, const char *what, std::span<uint8_t> &table) {
    if (count > WISP_NET_BATCH_MAX) {
        die(WISP_EXIT_BAD_ARGUMENT,
            std::string(what) + " of " + std::to_string(count) + " frames exceeds 64");
        return false;
    }
    return translate_or_die(frames, uint64_t{count} * sizeof(wisp_frame), what, table);
}

bool Vmm::transmit(uint64_t frames, uint32_t count, uint32_t &done) {
    done = 0;
    if (count == 0) return true;
    std::span<uint8_t> table;
    if (!frame_table(frames, count, "tx batch", table)) return false;
    for (uint32_t i = 0; i < count; i++) {
        wisp_frame f;
        std::memcpy(&f, table.data() + i * sizeof(wisp_frame), sizeof f);
        if (f.cap > kMaxTxFrame) {
            die(WISP_EXIT_BAD_ARGUMENT, "tx frame of " + std::to_string(f.cap) + " bytes");
            return false;
        }
        std::span<uint8_t> data;
        if (!translate_or_die(f.data, f.cap, "tx frame", data)) return false;
        if (tap_.write_frame(data)) {
            stats_.tx_frames++;
            stats_.tx_bytes += f.cap;
        } else {
            stats_.tx_dropped++;
        }
        done++;  // a dropped frame counts as sent: the wire may drop it too
    }
    return true;
}

bool Vmm::receive(uint64_t frames, uint32_t count, uint32_t &done) {
    done = 0;
    if (count == 0) return true;
    std::span<uint8_t> table;
    if (!frame_table(frames, count, "rx batch", table)) return false;
    while (done < count) {
        wisp_frame f;
        std::memcpy(&f, table.data() + done * sizeof(wisp_frame), sizeof f);
        std::span<uint8_t> data;
        if (!translate_or_die(f.data, f.cap, "rx buffer", data)) return false;
        uint32_t len = 0;
        Tap::ReadResult r = tap_.read_frame(data, len);
        if (r == Tap::ReadResult::kTooLarge) {
            stats_.rx_dropped++;
            continue;
        }
        if (r != Tap::ReadResult::kFrame) break;
        std::memcpy(table.data() + done * sizeof(wisp_frame) + offsetof(wisp_frame, len), &len,
                    sizeof len);
        stats_.rx_frames++;
        stats_.rx_bytes += len;
        done++;
    }
    return true;
}

bool Vmm::tap_readable() {
    pollfd p{tap_.fd(), POLLIN, 0};
    return poll(&p, 1, 0) == 1 && (p.revents & POLLIN);
}

bool Vmm::wait_for_frames(uint64_t deadline_host_ns) {
    constexpr size_t kMaxFds = 4;
    pollfd fds[kMaxFds];
    nfds_t n = 0;
    fds[n++] = pollfd{tap_.fd(), POLLIN, 0};
    for (int fd : wake_fds_)
        if (n < kMaxFds) fds[n++] = pollfd{fd, POLLIN, 0};
    for (;;) {
        if (vcpu_.run_state()->immediate_exit) return true;  // kicked before we blocked
        uint64_t now = host_monotonic_ns();
        if (now >= deadline_host_ns) return false;
        uint64_t left = deadline_host_ns - now;
        timespec ts{static_cast<time_t>(left / 1000000000u), static_cast<long>(left % 1000000000u)};
        int r = ppoll(fds, n, &ts, nullptr);
        if (r < 0 && errno == EINTR) return true;
        if (r < 0) return false;
        if (r == 0) continue;  // timeout: the loop re-checks the deadline
        for (nfds_t i = 1; i < n; i++)
            if (fds[i].revents) return true;
        return false;  // the tap is readable
    }
}

Vmm::Action Vmm::hc_poll(uint64_t arg) {
    wisp_hc_poll p;
    if (!read_arg(arg, p)) return Action::kExit;
    uint32_t tx_done = 0, rx_done = 0, events = 0;
    bool interrupted = false;
    if (!transmit(p.tx, p.tx_count, tx_done)) return Action::kExit;
    if (!receive(p.rx, p.rx_count, rx_done)) return Action::kExit;
    if (rx_done == 0 && p.deadline_ns != 0) {
        uint64_t now = clock_.monotonic_ns();
        if (p.deadline_ns > now && !tap_readable()) {
            interrupted = wait_for_frames(clock_.host_ns_for(p.deadline_ns));
            if (!receive(p.rx, p.rx_count, rx_done)) return Action::kExit;
        }
        if (rx_done == 0 && clock_.monotonic_ns() >= p.deadline_ns) events |= WISP_POLL_TIMEOUT;
    }
    if ((rx_done == p.rx_count) && tap_readable()) events |= WISP_POLL_NET;
    if (!write_out(arg + offsetof(wisp_hc_poll, tx_done), tx_done) ||
        !write_out(arg + offsetof(wisp_hc_poll, rx_done), rx_done) ||
        !write_out(arg + offsetof(wisp_hc_poll, events), events))
        return Action::kExit;
    return interrupted ? Action::kInterrupted : Action::kContinue;
}

Vmm::Action Vmm::hc_net_batch(uint64_t arg, bool write) {
    wisp_hc_net_batch b;
    if (!read_arg(arg, b)) return Action::kExit;
    uint32_t done = 0;
    bool ok = write ? transmit(b.frames, b.count, done) : receive(b.frames, b.count, done);
    if (!ok) return Action::kExit;
    return write_out(arg + offsetof(wisp_hc_net_batch, done), done) ? Action::kContinue
                                                                    : Action::kExit;
}

Vmm::Action Vmm::hc_ready(uint64_t arg) {
    wisp_hc_ready r;
    if (!read_arg(arg, r)) return Action::kExit;
    uint64_t restored = restore_count_ > 0 ? 1 : 0;
    if (!write_out(arg + offsetof(wisp_hc_ready, restored), restored)) return Action::kExit;
    if (ready_ns_ == 0) ready_ns_ = host_monotonic_ns();
    // Until the guest runs again it sits right after this call: a snapshot taken
    // now is a golden one, and its restore must say restored = 1 here.
    at_ready_ = true;
    ready_arg_gpa_ = arg;
    return Action::kReady;
}

Vmm::Action Vmm::hc_halt(uint64_t arg) {
    wisp_hc_halt h;
    if (!read_arg(arg, h)) return Action::kExit;
    die(WISP_EXIT_HALT, "", h.status);
    return Action::kExit;
}

Vmm::Action Vmm::hc_abort(uint64_t arg) {
    wisp_hc_abort a;
    if (!read_arg(arg, a)) return Action::kExit;
    if (a.len > WISP_CONSOLE_MAX) {
        die(WISP_EXIT_BAD_ARGUMENT, "abort message of " + std::to_string(a.len) + " bytes");
        return Action::kExit;
    }
    std::span<uint8_t> msg;
    if (!translate_or_die(a.msg, a.len, "abort message", msg)) return Action::kExit;
    // Printable ASCII only: the message lands in logs and the controller's events.
    std::string text;
    for (uint8_t c : msg.first(std::min<size_t>(msg.size(), WISP_CTL_DETAIL_MAX - 1)))
        text.push_back(c >= 0x20 && c < 0x7f ? static_cast<char>(c) : '?');
    die(WISP_EXIT_ABORT, "guest aborted: " + text);
    return Action::kExit;
}

}  // namespace wisp::vmm
