#include "wispd/ports.h"

#include <cstdio>

namespace wisp::wispd {

std::string MacAddress::to_string() const {
    char buf[18];
    std::snprintf(buf, sizeof buf, "%02x:%02x:%02x:%02x:%02x:%02x", bytes[0], bytes[1], bytes[2],
                  bytes[3], bytes[4], bytes[5]);
    return buf;
}

std::optional<MacAddress> MacAddress::parse(std::string_view text) {
    if (text.size() != 17) return std::nullopt;
    MacAddress mac;
    for (size_t i = 0; i < 6; ++i) {
        if (i < 5 && text[i * 3 + 2] != ':') return std::nullopt;
        unsigned v = 0;
        for (size_t j = 0; j < 2; ++j) {
            char c = text[i * 3 + j];
            v <<= 4;
            if (c >= '0' && c <= '9') v |= static_cast<unsigned>(c - '0');
            else if (c >= 'a' && c <= 'f') v |= static_cast<unsigned>(c - 'a' + 10);
            else if (c >= 'A' && c <= 'F') v |= static_cast<unsigned>(c - 'A' + 10);
            else return std::nullopt;
        }
        mac.bytes[i] = static_cast<uint8_t>(v);
    }
    return mac;
}

MacAddress MacAddress::for_replica(ReplicaId id) {
    return MacAddress{{0x02, 0x77, 0x73, static_cast<uint8_t>(id >> 16),
                       static_cast<uint8_t>(id >> 8), static_cast<uint8_t>(id)}};
}

}  // namespace wisp::wispd
