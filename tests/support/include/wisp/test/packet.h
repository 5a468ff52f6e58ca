// Building Ethernet frames for packet-level tests and benchmarks: Ethernet with an
// optional VLAN tag, IPv4 (with options, fragment fields) or IPv6 (with extension
// headers), then TCP, UDP or ICMP, with correct lengths and checksums. Tests that
// need lying or truncated headers build a correct frame and then damage it.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace wisp::test {

using MacBytes = std::array<uint8_t, 6>;

// TCP flag bits (byte 13 of the header).
inline constexpr uint8_t kTcpFin = 0x01, kTcpSyn = 0x02, kTcpRst = 0x04, kTcpPsh = 0x08,
                         kTcpAck = 0x10;

class FrameBuilder {
  public:
    FrameBuilder &macs(const MacBytes &dst, const MacBytes &src);
    FrameBuilder &vlan(uint16_t tci);
    FrameBuilder &ethertype(uint16_t type);  // a non-IP frame (payload only)
    // Addresses as text; IPv4 ("198.18.0.1") or IPv6 ("2001:db8::1").
    FrameBuilder &ip(const std::string &src, const std::string &dst);
    FrameBuilder &ip_options(size_t bytes);                    // IPv4: NOP options, a multiple of 4
    FrameBuilder &fragment(uint16_t offset_bytes, bool more);  // IPv4 fields / IPv6 header
    FrameBuilder &ipv6_extension(
        uint8_t type);  // hop-by-hop (0), routing (43), dest opts (60): 8 bytes
    FrameBuilder &tcp(uint16_t sport, uint16_t dport, uint8_t flags, size_t option_bytes = 0);
    FrameBuilder &udp(uint16_t sport, uint16_t dport);
    FrameBuilder &icmp(uint8_t type);       // ICMP for IPv4, ICMPv6 for IPv6
    FrameBuilder &protocol(uint8_t proto);  // any other IP protocol (payload only)
    FrameBuilder &payload(size_t bytes, uint8_t fill = 0xab);

    std::vector<uint8_t> build() const;

  private:
    MacBytes dst_{0x02, 0, 0, 0, 0, 0x01}, src_{0x02, 0, 0, 0, 0, 0x02};
    std::optional<uint16_t> vlan_;
    std::optional<uint16_t> ethertype_;
    std::string src_ip_, dst_ip_;
    size_t ip_options_ = 0;
    uint16_t frag_offset_ = 0;
    bool frag_more_ = false, fragmented_ = false;
    std::vector<uint8_t> v6_ext_;
    uint8_t l4_ = 0;
    uint16_t sport_ = 0, dport_ = 0;
    uint8_t tcp_flags_ = 0, icmp_type_ = 0;
    size_t tcp_options_ = 0;
    size_t payload_ = 0;
    uint8_t fill_ = 0xab;
};

// Offsets of the layers of a frame built without VLAN tag, IP options or extensions.
inline constexpr size_t kEthLen = 14, kIpv4Len = 20, kIpv6Len = 40;

}  // namespace wisp::test
