// The real kernel-facing ports that are small enough to live in wispd itself:
// tap devices for replicas, and replay of buffered frames into a tap.
#pragma once

#include <memory>
#include <string>

#include "wisp/unique_fd.h"
#include "wispd/ports.h"

namespace wisp::wispd {

// Taps from /dev/net/tun (IFF_TAP | IFF_NO_PI, blocking; the monitor sets its own
// flags), named by the kernel from `name_template` ("wsp%d" -> wsp0, wsp1, ...),
// brought up. Not persistent: a tap disappears with the last fd to it.
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

// Replays frames by transmitting them on the tap with an AF_PACKET socket: the tap
// device hands what it transmits to its reader, the monitor, which gives them to
// the guest as received frames.
class PacketSocketInjector final : public FrameInjector {
public:
    static Result<std::unique_ptr<PacketSocketInjector>> open();
    Status inject(int tap_ifindex, const std::vector<std::vector<uint8_t>> &frames) override;

private:
    explicit PacketSocketInjector(UniqueFd fd) : fd_(std::move(fd)) {}
    UniqueFd fd_;
};

// The first IPv4 address of an interface (the default VIP of services).
Result<std::string> primary_ipv4_address(const std::string &interface);

}  // namespace wisp::wispd
