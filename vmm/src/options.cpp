#include "wisp/vmm/options.h"

#include <arpa/inet.h>

#include <cctype>
#include <cstdio>
#include <cstring>

namespace wisp::vmm {

Result<uint64_t> parse_size(const std::string &text) {
    size_t i = 0;
    uint64_t value = 0;
    while (i < text.size() && std::isdigit(static_cast<unsigned char>(text[i]))) {
        if (__builtin_mul_overflow(value, 10, &value) ||
            __builtin_add_overflow(value, static_cast<uint64_t>(text[i] - '0'), &value))
            return invalid("size too large: " + text);
        i++;
    }
    if (i == 0) return invalid("not a size: '" + text + "'");
    std::string unit = text.substr(i);
    for (char &c : unit) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    unsigned shift;
    if (unit.empty() || unit == "B") shift = 0;
    else if (unit == "K" || unit == "KIB" || unit == "KB") shift = 10;
    else if (unit == "M" || unit == "MIB" || unit == "MB") shift = 20;
    else if (unit == "G" || unit == "GIB" || unit == "GB") shift = 30;
    else return invalid("unknown size unit in '" + text + "' (use K, M or G)");
    if (shift && value > (UINT64_MAX >> shift)) return invalid("size too large: " + text);
    return value << shift;
}

Result<std::array<uint8_t, 6>> parse_mac(const std::string &text) {
    std::array<uint8_t, 6> mac{};
    unsigned v[6];
    char tail;
    if (std::sscanf(text.c_str(), "%2x:%2x:%2x:%2x:%2x:%2x%c", &v[0], &v[1], &v[2], &v[3], &v[4],
                    &v[5], &tail) != 6 ||
        text.size() != 17)
        return invalid("not a MAC address: '" + text + "'");
    for (int i = 0; i < 6; i++) mac[i] = static_cast<uint8_t>(v[i]);
    return mac;
}

Result<ParsedIp> parse_ip(const std::string &text) {
    ParsedIp ip;
    if (inet_pton(AF_INET, text.c_str(), ip.bytes.data()) == 1) {
        ip.family = 4;
        return ip;
    }
    if (inet_pton(AF_INET6, text.c_str(), ip.bytes.data()) == 1) {
        ip.family = 6;
        return ip;
    }
    return invalid("not an IP address: '" + text + "'");
}

}  // namespace wisp::vmm
