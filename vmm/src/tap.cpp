#include "wisp/vmm/tap.h"

#include <fcntl.h>
#include <linux/if_tun.h>
#include <net/if.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include <cstring>

namespace wisp::vmm {

namespace {
// Spill area for frames larger than the guest's buffer: a tap frame is bounded by
// the device MTU, 64 KiB covers any MTU a tap accepts.
uint8_t g_spill[65536];
}  // namespace

Result<Tap> Tap::open_by_name(const std::string &name) {
    if (name.empty() || name.size() >= IFNAMSIZ) return invalid("bad tap name '" + name + "'");
    UniqueFd fd(::open("/dev/net/tun", O_RDWR | O_CLOEXEC | O_NONBLOCK));
    if (!fd) return errno_error("open /dev/net/tun");
    ifreq ifr{};
    ifr.ifr_flags = IFF_TAP | IFF_NO_PI;
    std::strncpy(ifr.ifr_name, name.c_str(), IFNAMSIZ - 1);
    if (ioctl(fd.get(), TUNSETIFF, &ifr) != 0) return errno_error("attach to tap " + name);
    return Tap(std::move(fd));
}

Result<std::array<uint8_t, 6>> Tap::host_mac(const std::string &name) {
    UniqueFd sock(socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
    if (!sock) return errno_error("socket");
    ifreq ifr{};
    std::strncpy(ifr.ifr_name, name.c_str(), IFNAMSIZ - 1);
    if (ioctl(sock.get(), SIOCGIFHWADDR, &ifr) != 0) return errno_error("MAC of " + name);
    std::array<uint8_t, 6> mac;
    std::memcpy(mac.data(), ifr.ifr_hwaddr.sa_data, 6);
    return mac;
}

Status Tap::prepare() {
    ifreq ifr{};
    if (ioctl(fd(), TUNGETIFF, &ifr) != 0) return errno_error("TUNGETIFF (is the fd a tap?)");
    if ((ifr.ifr_flags & IFF_TAP) == 0) return invalid("the network fd is a tun, not a tap");
    if ((ifr.ifr_flags & IFF_NO_PI) == 0) return invalid("the tap carries packet info (IFF_NO_PI unset)");
    int flags = fcntl(fd(), F_GETFL);
    if (flags < 0 || fcntl(fd(), F_SETFL, flags | O_NONBLOCK) != 0)
        return errno_error("make the tap non-blocking");
    return {};
}

Tap::ReadResult Tap::read_frame(std::span<uint8_t> dst, uint32_t &len) {
    iovec iov[2] = {{dst.data(), dst.size()}, {g_spill, sizeof g_spill}};
    for (;;) {
        ssize_t n = readv(fd(), iov, 2);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) return errno == EAGAIN ? ReadResult::kEmpty : ReadResult::kError;
        if (static_cast<size_t>(n) > dst.size()) return ReadResult::kTooLarge;
        len = static_cast<uint32_t>(n);
        return ReadResult::kFrame;
    }
}

bool Tap::write_frame(std::span<const uint8_t> frame) {
    for (;;) {
        ssize_t n = ::write(fd(), frame.data(), frame.size());
        if (n < 0 && errno == EINTR) continue;
        return n == static_cast<ssize_t>(frame.size());
    }
}

}  // namespace wisp::vmm
