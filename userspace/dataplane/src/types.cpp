#include "wisp/dataplane/types.h"

#include <arpa/inet.h>
#include <time.h>

#include <cstdio>
#include <cstring>

namespace wisp::dataplane {

namespace {

constexpr std::array<uint8_t, 12> kV4MappedPrefix = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};

int hex_digit(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

}  // namespace

Result<Mac> parse_mac(std::string_view text) {
    Mac mac{};
    if (text.size() != 17)
        return invalid("MAC address must look like 02:00:00:00:00:01: " + std::string(text));
    for (size_t i = 0; i < mac.size(); i++) {
        int hi = hex_digit(text[3 * i]), lo = hex_digit(text[3 * i + 1]);
        if (hi < 0 || lo < 0 || (i < 5 && text[3 * i + 2] != ':'))
            return invalid("malformed MAC address: " + std::string(text));
        mac[i] = static_cast<uint8_t>(hi << 4 | lo);
    }
    return mac;
}

std::string format_mac(const Mac &mac) {
    char buf[18];
    std::snprintf(buf, sizeof buf, "%02x:%02x:%02x:%02x:%02x:%02x", mac[0], mac[1], mac[2], mac[3],
                  mac[4], mac[5]);
    return buf;
}

Result<IpAddress> IpAddress::parse(std::string_view text) {
    std::string s(text);
    in_addr v4{};
    if (inet_pton(AF_INET, s.c_str(), &v4) == 1) return from_ipv4(v4.s_addr);
    std::array<uint8_t, 16> bytes{};
    if (inet_pton(AF_INET6, s.c_str(), bytes.data()) == 1) return IpAddress(bytes);
    return invalid("not an IPv4 or IPv6 address: " + s);
}

IpAddress IpAddress::from_ipv4(uint32_t addr) {
    std::array<uint8_t, 16> bytes{};
    std::memcpy(bytes.data(), kV4MappedPrefix.data(), kV4MappedPrefix.size());
    std::memcpy(bytes.data() + 12, &addr, 4);
    return IpAddress(bytes);
}

bool IpAddress::is_ipv4() const {
    return std::memcmp(bytes_.data(), kV4MappedPrefix.data(), kV4MappedPrefix.size()) == 0;
}

uint32_t IpAddress::ipv4() const {
    uint32_t addr;
    std::memcpy(&addr, bytes_.data() + 12, 4);
    return addr;
}

std::string IpAddress::to_string() const {
    char buf[INET6_ADDRSTRLEN];
    if (is_ipv4()) {
        in_addr v4{ipv4()};
        return inet_ntop(AF_INET, &v4, buf, sizeof buf);
    }
    return inet_ntop(AF_INET6, bytes_.data(), buf, sizeof buf);
}

const char *to_string(ServiceState state) {
    switch (state) {
        case ServiceState::zero:
            return "zero";
        case ServiceState::waking:
            return "waking";
        case ServiceState::ready:
            return "ready";
        case ServiceState::draining:
            return "draining";
    }
    return "unknown";
}

const char *to_string(ReplicaState state) {
    switch (state) {
        case ReplicaState::free:
            return "free";
        case ReplicaState::starting:
            return "starting";
        case ReplicaState::ready:
            return "ready";
        case ReplicaState::draining:
            return "draining";
    }
    return "unknown";
}

const char *to_string(EventType type) {
    switch (type) {
        case EventType::wake:
            return "wake";
        case EventType::buffered:
            return "buffered";
    }
    return "unknown";
}

const char *stat_name(wisp_stat stat) {
    switch (stat) {
        case WISP_STAT_PASSED:
            return "passed";
        case WISP_STAT_FORWARDED:
            return "forwarded";
        case WISP_STAT_NEW_FLOWS:
            return "new_flows";
        case WISP_STAT_REPICKED:
            return "repicked";
        case WISP_STAT_WAKES:
            return "wakes";
        case WISP_STAT_BUFFERED:
            return "buffered";
        case WISP_STAT_COLD_DROPPED:
            return "cold_dropped";
        case WISP_STAT_RINGBUF_FULL:
            return "ringbuf_full";
        case WISP_STAT_MALFORMED:
            return "malformed";
        case WISP_STAT_FRAGMENTS:
            return "fragments";
        case WISP_STAT_DRAINING_PASSED:
            return "draining_passed";
        case WISP_STAT_TAP_FORWARDED:
            return "tap_forwarded";
        case WISP_STAT_SPOOFED:
            return "spoofed";
        case WISP_STAT_TAP_DROPPED:
            return "tap_dropped";
        case WISP_STAT_TAP_UNKNOWN:
            return "tap_unknown";
        case WISP_STAT_MAX:
            break;
    }
    return "unknown";
}

uint64_t monotonic_now_ns() {
    timespec ts{};
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return static_cast<uint64_t>(ts.tv_sec) * 1000000000ull + static_cast<uint64_t>(ts.tv_nsec);
}

}  // namespace wisp::dataplane
