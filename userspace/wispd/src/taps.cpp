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
#include <sys/uio.h>
#include <unistd.h>

#include <cstring>

#include <spdlog/spdlog.h>

namespace wisp::wispd {

namespace {

// Best effort: without IPv6 on the tap the host sends nothing into the guest by
// itself. (No such file when IPv6 is disabled host-wide: nothing to do then.)
void disable_ipv6(const std::string &ifname) {
    std::string path = "/proc/sys/net/ipv6/conf/" + ifname + "/disable_ipv6";
    UniqueFd fd(open(path.c_str(), O_WRONLY | O_CLOEXEC));
    if (fd) (void)!write(fd.get(), "1", 1);
}

}  // namespace

Result<Tap> TunTapFactory::create() {
    Tap tap;
    tap.fd.reset(open(tun_path_.c_str(), O_RDWR | O_CLOEXEC));
    if (!tap.fd) return errno_error("open " + tun_path_);
    ifreq ifr{};
    ifr.ifr_flags = IFF_TAP | IFF_NO_PI;
    std::strncpy(ifr.ifr_name, template_.c_str(), IFNAMSIZ - 1);
    if (ioctl(tap.fd.get(), TUNSETIFF, &ifr) != 0) return errno_error("TUNSETIFF " + template_);
    tap.name = ifr.ifr_name;
    disable_ipv6(tap.name);

    UniqueFd sock(socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
    if (!sock) return errno_error("socket");
    ifreq hw{};
    std::strncpy(hw.ifr_name, tap.name.c_str(), IFNAMSIZ - 1);
    if (ioctl(sock.get(), SIOCGIFHWADDR, &hw) != 0) return errno_error("SIOCGIFHWADDR " + tap.name);
    std::memcpy(tap.mac.bytes.data(), hw.ifr_hwaddr.sa_data, 6);
    ifreq up{};
    std::strncpy(up.ifr_name, tap.name.c_str(), IFNAMSIZ - 1);
    if (ioctl(sock.get(), SIOCGIFFLAGS, &up) != 0) return errno_error("SIOCGIFFLAGS " + tap.name);
    up.ifr_flags |= IFF_UP;
    if (ioctl(sock.get(), SIOCSIFFLAGS, &up) != 0) return errno_error("bringing up " + tap.name);
    tap.ifindex = static_cast<int>(if_nametoindex(tap.name.c_str()));
    if (tap.ifindex == 0) return errno_error("if_nametoindex " + tap.name);
    return tap;
}

PreparedTapPool::PreparedTapPool(size_t target, Prepare prepare, EventLoop &loop,
                                 BackgroundWorker &worker, std::string name_template)
    : target_(target),
      prepare_(std::move(prepare)),
      loop_(loop),
      worker_(worker),
      factory_(std::move(name_template)) {}

Result<Tap> PreparedTapPool::create() {
    if (!ready_.empty()) {
        Tap tap = std::move(ready_.front());
        ready_.pop_front();
        schedule_refill();
        return tap;
    }
    // A burst emptied the pool: this wake pays for its tap (the caller attaches
    // the return path).
    spdlog::debug("tap pool empty: creating a tap on the wake path");
    auto tap = factory_.create();
    schedule_refill();
    return tap;
}

void PreparedTapPool::schedule_refill() {
    if (refill_timer_) return;
    refill_timer_ = loop_.schedule_after_ms(kRefillDelayMs, [this] {
        refill_timer_ = 0;
        fill();
    });
}

void PreparedTapPool::fill() {
    if (loop_.now_ns() < retry_after_ns_) return;
    while (ready_.size() + in_flight_ < target_) {
        ++in_flight_;
        worker_.submit([this] {
            auto tap = factory_.create();
            if (tap && prepare_) {
                if (auto st = prepare_(*tap); !st) tap = std::move(st).error();
                else tap->prepared = true;
            }
            // The loop may be gone (shutdown): then the tap is closed with the
            // queued work, and disappears.
            auto shared = std::make_shared<Result<Tap>>(std::move(tap));
            loop_.post([this, shared] { made(std::move(*shared)); });
        });
    }
}

void PreparedTapPool::made(Result<Tap> tap) {
    --in_flight_;
    if (!tap) {
        spdlog::warn("tap pool: {}; retrying in 1 s", tap.error().describe());
        retry_after_ns_ = loop_.now_ns() + 1'000'000'000;
        loop_.schedule_at(retry_after_ns_, [this] { fill(); });
        return;
    }
    ready_.push_back(std::move(*tap));
}

Result<std::unique_ptr<PacketSocketInjector>> PacketSocketInjector::open() {
    // Protocol 0: this socket only sends, it never receives a copy of traffic.
    UniqueFd fd(socket(AF_PACKET, SOCK_RAW | SOCK_CLOEXEC, 0));
    if (!fd) return errno_error("AF_PACKET socket for frame replay");
    return std::unique_ptr<PacketSocketInjector>(new PacketSocketInjector(std::move(fd)));
}

Status PacketSocketInjector::inject(const ReplayTarget &to,
                                    const std::vector<std::vector<uint8_t>> &packets) {
    // The header the data plane would have written: tap MAC -> guest MAC, no VLAN.
    ether_header eth{};
    std::memcpy(eth.ether_dhost, to.guest_mac.bytes.data(), ETH_ALEN);
    std::memcpy(eth.ether_shost, to.tap_mac.bytes.data(), ETH_ALEN);
    sockaddr_ll dest{};
    dest.sll_family = AF_PACKET;
    dest.sll_ifindex = to.tap_ifindex;
    dest.sll_halen = ETH_ALEN;
    std::memcpy(dest.sll_addr, to.guest_mac.bytes.data(), ETH_ALEN);
    for (auto &packet : packets) {
        if (packet.empty()) return Error{EINVAL, "empty packet"};
        uint8_t version = packet[0] >> 4;
        if (version != 4 && version != 6)
            return Error{EINVAL, "not an IP packet (version " + std::to_string(version) + ")"};
        eth.ether_type = htons(version == 4 ? ETHERTYPE_IP : ETHERTYPE_IPV6);
        iovec iov[2] = {{&eth, sizeof eth},
                        {const_cast<uint8_t *>(packet.data()), packet.size()}};
        msghdr msg{};
        msg.msg_name = &dest;
        msg.msg_namelen = sizeof dest;
        msg.msg_iov = iov;
        msg.msg_iovlen = 2;
        ssize_t n = sendmsg(fd_.get(), &msg, 0);
        if (n != static_cast<ssize_t>(sizeof eth + packet.size()))
            return errno_error("replaying a packet into ifindex " + std::to_string(to.tap_ifindex));
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
