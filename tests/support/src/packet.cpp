#include "wisp/test/packet.h"

#include <arpa/inet.h>

#include <stdexcept>

namespace wisp::test {

namespace {

void put16(std::vector<uint8_t> &out, uint16_t v) {
    out.push_back(static_cast<uint8_t>(v >> 8));
    out.push_back(static_cast<uint8_t>(v));
}

void put32(std::vector<uint8_t> &out, uint32_t v) {
    put16(out, static_cast<uint16_t>(v >> 16));
    put16(out, static_cast<uint16_t>(v));
}

void set16(std::vector<uint8_t> &out, size_t at, uint16_t v) {
    out[at] = static_cast<uint8_t>(v >> 8);
    out[at + 1] = static_cast<uint8_t>(v);
}

uint32_t sum16(const uint8_t *p, size_t n, uint32_t sum = 0) {
    for (size_t i = 0; i + 1 < n; i += 2) sum += static_cast<uint32_t>(p[i] << 8 | p[i + 1]);
    if (n & 1) sum += static_cast<uint32_t>(p[n - 1] << 8);
    return sum;
}

uint16_t fold(uint32_t sum) {
    while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
    return static_cast<uint16_t>(~sum);
}

std::vector<uint8_t> parse_ip(const std::string &text, bool *v6) {
    std::vector<uint8_t> out(16);
    if (inet_pton(AF_INET, text.c_str(), out.data()) == 1) {
        out.resize(4);
        *v6 = false;
        return out;
    }
    if (inet_pton(AF_INET6, text.c_str(), out.data()) == 1) {
        *v6 = true;
        return out;
    }
    throw std::invalid_argument("not an IP address: " + text);
}

}  // namespace

FrameBuilder &FrameBuilder::macs(const MacBytes &dst, const MacBytes &src) {
    dst_ = dst;
    src_ = src;
    return *this;
}
FrameBuilder &FrameBuilder::vlan(uint16_t tci) {
    vlan_ = tci;
    return *this;
}
FrameBuilder &FrameBuilder::ethertype(uint16_t type) {
    ethertype_ = type;
    return *this;
}
FrameBuilder &FrameBuilder::ip(const std::string &src, const std::string &dst) {
    src_ip_ = src;
    dst_ip_ = dst;
    return *this;
}
FrameBuilder &FrameBuilder::ip_options(size_t bytes) {
    if (bytes % 4 || bytes > 40) throw std::invalid_argument("IPv4 options: multiple of 4, <= 40");
    ip_options_ = bytes;
    return *this;
}
FrameBuilder &FrameBuilder::fragment(uint16_t offset_bytes, bool more) {
    if (offset_bytes % 8) throw std::invalid_argument("fragment offset: multiple of 8");
    frag_offset_ = offset_bytes;
    frag_more_ = more;
    fragmented_ = true;
    return *this;
}
FrameBuilder &FrameBuilder::ipv6_extension(uint8_t type) {
    v6_ext_.push_back(type);
    return *this;
}
FrameBuilder &FrameBuilder::tcp(uint16_t sport, uint16_t dport, uint8_t flags,
                                size_t option_bytes) {
    if (option_bytes % 4 || option_bytes > 40)
        throw std::invalid_argument("TCP options: multiple of 4");
    l4_ = IPPROTO_TCP;
    sport_ = sport;
    dport_ = dport;
    tcp_flags_ = flags;
    tcp_options_ = option_bytes;
    return *this;
}
FrameBuilder &FrameBuilder::udp(uint16_t sport, uint16_t dport) {
    l4_ = IPPROTO_UDP;
    sport_ = sport;
    dport_ = dport;
    return *this;
}
FrameBuilder &FrameBuilder::icmp(uint8_t type) {
    l4_ = IPPROTO_ICMP;  // becomes ICMPv6 for IPv6 addresses
    icmp_type_ = type;
    return *this;
}
FrameBuilder &FrameBuilder::protocol(uint8_t proto) {
    l4_ = proto;
    return *this;
}
FrameBuilder &FrameBuilder::payload(size_t bytes, uint8_t fill) {
    payload_ = bytes;
    fill_ = fill;
    return *this;
}

std::vector<uint8_t> FrameBuilder::build() const {
    std::vector<uint8_t> f(dst_.begin(), dst_.end());
    f.insert(f.end(), src_.begin(), src_.end());
    if (vlan_) {
        put16(f, 0x8100);
        put16(f, *vlan_);
    }
    if (ethertype_) {
        put16(f, *ethertype_);
        f.insert(f.end(), payload_, fill_);
        return f;
    }

    bool v6 = false;
    std::vector<uint8_t> saddr = parse_ip(src_ip_, &v6), daddr = parse_ip(dst_ip_, &v6);
    uint8_t l4 = (l4_ == IPPROTO_ICMP && v6) ? IPPROTO_ICMPV6 : l4_;

    // Upper-layer header and payload first: the IP header needs their length.
    std::vector<uint8_t> upper;
    if (l4 == IPPROTO_TCP) {
        put16(upper, sport_);
        put16(upper, dport_);
        put32(upper, 0x11223344);  // seq
        put32(upper, (tcp_flags_ & kTcpAck) ? 0x55667788 : 0);
        upper.push_back(static_cast<uint8_t>((20 + tcp_options_) / 4 << 4));
        upper.push_back(tcp_flags_);
        put16(upper, 65535);                            // window
        put16(upper, 0);                                // checksum
        put16(upper, 0);                                // urgent
        upper.insert(upper.end(), tcp_options_, 0x01);  // NOP options
    } else if (l4 == IPPROTO_UDP) {
        put16(upper, sport_);
        put16(upper, dport_);
        put16(upper, static_cast<uint16_t>(8 + payload_));
        put16(upper, 0);
    } else if (l4 == IPPROTO_ICMP || l4 == IPPROTO_ICMPV6) {
        upper.push_back(icmp_type_);
        upper.push_back(0);
        put16(upper, 0);
        put32(upper, 0);
    }
    upper.insert(upper.end(), payload_, fill_);

    // Transport checksum over the pseudo header (not for later fragments).
    size_t csum_at = l4 == IPPROTO_TCP ? 16
                                       : (l4 == IPPROTO_UDP                              ? 6
                                          : (l4 == IPPROTO_ICMPV6 || l4 == IPPROTO_ICMP) ? 2
                                                                                         : 0);
    if (csum_at && frag_offset_ == 0) {
        uint32_t sum = sum16(upper.data(), upper.size());
        if (l4 != IPPROTO_ICMP) {
            sum = sum16(saddr.data(), saddr.size(), sum);
            sum = sum16(daddr.data(), daddr.size(), sum);
            sum += l4;
            sum += static_cast<uint32_t>(upper.size());
        }
        uint16_t c = fold(sum);
        if (l4 == IPPROTO_UDP && c == 0) c = 0xffff;
        set16(upper, csum_at, c);
    }

    if (!v6) {
        put16(f, 0x0800);
        size_t ip_at = f.size();
        size_t hdr = 20 + ip_options_;
        f.push_back(static_cast<uint8_t>(0x40 | hdr / 4));
        f.push_back(0);
        put16(f, static_cast<uint16_t>(hdr + upper.size()));
        put16(f, 0x1234);  // id
        uint16_t frag = static_cast<uint16_t>(frag_offset_ / 8);
        if (frag_more_) frag |= 0x2000;
        if (!fragmented_) frag = 0x4000;  // DF
        put16(f, frag);
        f.push_back(64);
        f.push_back(l4);
        put16(f, 0);
        f.insert(f.end(), saddr.begin(), saddr.end());
        f.insert(f.end(), daddr.begin(), daddr.end());
        f.insert(f.end(), ip_options_, 0x01);  // NOP
        set16(f, ip_at + 10, fold(sum16(f.data() + ip_at, hdr)));
    } else {
        put16(f, 0x86dd);
        std::vector<uint8_t> chain = v6_ext_;
        if (fragmented_) chain.push_back(IPPROTO_FRAGMENT);
        size_t ext_len = 8 * chain.size();
        put32(f, 0x60000000);
        put16(f, static_cast<uint16_t>(ext_len + upper.size()));
        f.push_back(chain.empty() ? l4 : chain[0]);
        f.push_back(64);
        f.insert(f.end(), saddr.begin(), saddr.end());
        f.insert(f.end(), daddr.begin(), daddr.end());
        for (size_t i = 0; i < chain.size(); i++) {
            uint8_t next = i + 1 < chain.size() ? chain[i + 1] : l4;
            f.push_back(next);
            if (chain[i] == IPPROTO_FRAGMENT) {
                f.push_back(0);
                put16(f, static_cast<uint16_t>(frag_offset_ | (frag_more_ ? 1 : 0)));
                put32(f, 0xabcd);
            } else {
                f.push_back(0);  // length: (0 + 1) * 8 bytes
                for (uint8_t b : {0x01, 0x04, 0x00, 0x00, 0x00, 0x00}) f.push_back(b);  // PadN
            }
        }
    }
    f.insert(f.end(), upper.begin(), upper.end());
    return f;
}

}  // namespace wisp::test
