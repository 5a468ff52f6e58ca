#include "wispd/taps.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <ifaddrs.h>
#include <linux/if_packet.h>
#include <linux/if_tun.h>
#include <net/ethernet.h>
#include <net/if.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstring>

namespace wisp::wispd {

Result<Tap> TunTapFactory::create() {
    Tap tap;
    tap.fd.reset(open(tun_path_.c_str(), O_RDWR | O_CLOEXEC));
    if (!tap.fd) return errno_error("open " + tun_path_);
    ifreq ifr{};
    ifr.ifr_flags = IFF_TAP | IFF_NO_PI;
    std::strncpy(ifr.ifr_name, template_.c_str(), IFNAMSIZ - 1);
    if (ioctl(tap.fd.get(), TUNSETIFF, &ifr) != 0) return errno_error("TUNSETIFF " + template_);
    tap.name = ifr.ifr_name;

    UniqueFd sock(socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
    if (!sock) return errno_error("socket");
    ifreq up{};
    std::strncpy(up.ifr_name, tap.name.c_str(), IFNAMSIZ - 1);
    if (ioctl(sock.get(), SIOCGIFFLAGS, &up) != 0) return errno_error("SIOCGIFFLAGS " + tap.name);
    up.ifr_flags |= IFF_UP;
    if (ioctl(sock.get(), SIOCSIFFLAGS, &up) != 0) return errno_error("bringing up " + tap.name);
    tap.ifindex = static_cast<int>(if_nametoindex(tap.name.c_str()));
    if (tap.ifindex == 0) return errno_error("if_nametoindex " + tap.name);
    return tap;
}

Result<std::unique_ptr<PacketSocketInjector>> PacketSocketInjector::open() {
    // Protocol 0: this socket only sends, it never receives a copy of traffic.
    UniqueFd fd(socket(AF_PACKET, SOCK_RAW | SOCK_CLOEXEC, 0));
    if (!fd) return errno_error("AF_PACKET socket for frame replay");
    return std::unique_ptr<PacketSocketInjector>(new PacketSocketInjector(std::move(fd)));
}

Status PacketSocketInjector::inject(int tap_ifindex,
                                    const std::vector<std::vector<uint8_t>> &frames) {
    for (auto &frame : frames) {
        if (frame.size() < sizeof(ether_header))
            return Error{EINVAL, "frame of " + std::to_string(frame.size()) +
                                     " bytes is shorter than an Ethernet header"};
        sockaddr_ll to{};
        to.sll_family = AF_PACKET;
        to.sll_ifindex = tap_ifindex;
        to.sll_halen = ETH_ALEN;
        std::memcpy(to.sll_addr, frame.data(), ETH_ALEN);
        ssize_t n = sendto(fd_.get(), frame.data(), frame.size(), 0,
                           reinterpret_cast<sockaddr *>(&to), sizeof to);
        if (n != static_cast<ssize_t>(frame.size()))
            return errno_error("replaying a frame into ifindex " + std::to_string(tap_ifindex));
    }
    return {};
}

Result<std::string> primary_ipv4_address(const std::string &interface) {
    ifaddrs *list = nullptr;
    if (getifaddrs(&list) != 0) return errno_error("getifaddrs");
    std::unique_ptr<ifaddrs, void (*)(ifaddrs *)> guard(list, freeifaddrs);
    for (auto *a = list; a; a = a->ifa_next) {
        if (!a->ifa_addr || a->ifa_addr->sa_family != AF_INET || interface != a->ifa_name)
            continue;
        char buf[INET_ADDRSTRLEN];
        auto *in = reinterpret_cast<sockaddr_in *>(a->ifa_addr);
        if (!inet_ntop(AF_INET, &in->sin_addr, buf, sizeof buf)) continue;
        return std::string(buf);
    }
    return Error{EADDRNOTAVAIL, "uplink " + interface + " has no IPv4 address"};
}

}  // namespace wisp::wispd
