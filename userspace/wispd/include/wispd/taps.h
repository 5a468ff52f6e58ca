// The real kernel-facing ports that are small enough to live in wispd itself:
// tap devices for replicas (made ahead of time, with their return path attached),
// and replay of buffered packets into a tap.
#pragma once

#include <deque>
#include <functional>
#include <memory>
#include <string>

#include "wisp/unique_fd.h"
#include "wispd/background.h"
#include "wispd/event_loop.h"
#include "wispd/ports.h"

namespace wisp::wispd {

// Taps from /dev/net/tun (IFF_TAP | IFF_NO_PI, blocking; the monitor sets its own
// flags), named by the kernel from `name_template` ("wsp%d" -> wsp0, wsp1, ...),
// with IPv6 off (the host would otherwise send router solicitations and MLD
// reports into every guest), brought up. Not persistent: a tap disappears with the
// last fd to it. Thread-safe (no state).
class TunTapFactory final : public TapFactory {
public:
    explicit TunTapFactory(std::string name_template = "wsp%d",
                           std::string tun_path = "/dev/net/tun")
        : template_(std::move(name_template)), tun_path_(std::move(tun_path)) {}
    Result<Tap> create() override;

private:
    std::string template_;
    std::string tun_path_;
};

// Keeps `target` taps made and prepared (their TC program attached by `prepare`)
// so that a wake takes one in O(1). Refills on the background worker shortly after
// a take (not at once: the wake that took it is still using both cores). When the
// pool is empty (a burst of wakes), create() makes a tap on the spot, unprepared.
class PreparedTapPool final : public TapFactory {
public:
    // Runs on the worker thread: must only touch the tap (and thread-safe state).
    using Prepare = std::function<Status(const Tap &)>;

    PreparedTapPool(size_t target, Prepare prepare, EventLoop &loop, BackgroundWorker &worker,
                    std::string name_template = "wsp%d");
    ~PreparedTapPool() override { loop_.cancel(refill_timer_); }
    Result<Tap> create() override;
    // Starts filling the pool (from the worker).
    void fill();
    size_t ready() const { return ready_.size(); }

private:
    void made(Result<Tap> tap);
    void schedule_refill();
    static constexpr uint64_t kRefillDelayMs = 20;

    size_t target_;
    Prepare prepare_;
    EventLoop &loop_;
    BackgroundWorker &worker_;
    TunTapFactory factory_;
    std::deque<Tap> ready_;
    size_t in_flight_ = 0;
    uint64_t retry_after_ns_ = 0;  // after a failure, no refill before this
    Scheduler::TimerId refill_timer_ = 0;
};

// Replays packets by transmitting frames on the tap with an AF_PACKET socket: the
// tap device hands what it transmits to its reader, the monitor, which gives them
// to the guest as received frames.
class PacketSocketInjector final : public FrameInjector {
public:
    static Result<std::unique_ptr<PacketSocketInjector>> open();
    Status inject(const ReplayTarget &to, const std::vector<std::vector<uint8_t>> &packets) override;

private:
    explicit PacketSocketInjector(UniqueFd fd) : fd_(std::move(fd)) {}
    UniqueFd fd_;
};

// The first IPv4 address of an interface (the default VIP of services).
Result<std::string> primary_ipv4_address(const std::string &interface);

}  // namespace wisp::wispd
