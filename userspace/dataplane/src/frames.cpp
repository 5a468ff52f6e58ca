#include "wisp/dataplane/frames.h"

#include <arpa/inet.h>
#include <linux/if_ether.h>
#include <linux/if_packet.h>
#include <net/if.h>
#include <sys/socket.h>

#include <cstring>
#include <string>

#include "wisp/unique_fd.h"

namespace wisp::dataplane {

namespace {

Status send_frame(int sock, uint32_t ifindex, std::span<const uint8_t> frame) {
    if (frame.size() < ETH_HLEN) return invalid("frame shorter than an Ethernet header");
    sockaddr_ll addr{};
    addr.sll_family = AF_PACKET;
    addr.sll_ifindex = static_cast<int>(ifindex);
    addr.sll_halen = ETH_ALEN;
    std::memcpy(addr.sll_addr, frame.data(), ETH_ALEN);
    ssize_t sent = sendto(sock, frame.data(), frame.size(), 0,
                          reinterpret_cast<const sockaddr *>(&addr), sizeof addr);
    if (sent < 0) return errno_error("send frame on ifindex " + std::to_string(ifindex));
    if (static_cast<size_t>(sent) != frame.size())
        return Error{EIO, "short send on ifindex " + std::to_string(ifindex)};
    return {};
}

// Protocol 0: the socket only sends, it never receives a copy of traffic.
Result<UniqueFd> send_socket() {
    UniqueFd sock(socket(AF_PACKET, SOCK_RAW | SOCK_CLOEXEC, 0));
    if (!sock) return errno_error("AF_PACKET socket");
    return sock;
}

}  // namespace

Status inject_frame(uint32_t ifindex, std::span<const uint8_t> frame) {
    auto sock = send_socket();
    if (!sock) return std::move(sock).error();
    return send_frame(sock->get(), ifindex, frame);
}

Status inject_frames(uint32_t ifindex, std::span<const std::vector<uint8_t>> frames) {
    auto sock = send_socket();
    if (!sock) return std::move(sock).error();
    for (const auto &frame : frames) WISP_RETURN_IF_ERROR(send_frame(sock->get(), ifindex, frame));
    return {};
}

Result<std::vector<uint8_t>> replay_frame(std::span<const uint8_t> frame, uint16_t l3_offset,
                                          uint16_t l3_proto, const Mac &guest_mac,
                                          const Mac &host_mac) {
    if (l3_offset < ETH_HLEN || l3_offset >= frame.size())
        return invalid("captured frame has no IP packet at offset " + std::to_string(l3_offset));
    if (l3_proto != ETH_P_IP && l3_proto != ETH_P_IPV6)
        return invalid("captured frame is not IPv4 or IPv6");
    std::vector<uint8_t> out(ETH_HLEN + frame.size() - l3_offset);
    std::memcpy(out.data(), guest_mac.data(), ETH_ALEN);
    std::memcpy(out.data() + ETH_ALEN, host_mac.data(), ETH_ALEN);
    uint16_t proto = htons(l3_proto);
    std::memcpy(out.data() + 2 * ETH_ALEN, &proto, 2);
    std::memcpy(out.data() + ETH_HLEN, frame.data() + l3_offset, frame.size() - l3_offset);
    return out;
}

Result<std::vector<uint8_t>> replay_frame(const Event &event, const Mac &guest_mac,
                                          const Mac &host_mac) {
    if (event.truncated())
        return Error{EMSGSIZE, "captured frame was truncated (" +
                                   std::to_string(event.frame.size()) + " of " +
                                   std::to_string(event.orig_len) + " bytes)"};
    return replay_frame(event.frame, event.l3_offset, event.l3_proto, guest_mac, host_mac);
}

}  // namespace wisp::dataplane
