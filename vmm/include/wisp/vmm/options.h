// Parsing of human-facing values for wisp-vmm's command line (and wispd's
// config): sizes like "64M", MAC addresses, IP addresses. Pure functions.
#pragma once

#include <array>
#include <cstdint>
#include <string>

#include "wisp/result.h"

namespace wisp::vmm {

// "67108864", "64M", "64MiB", "1G", "512k": bytes.
Result<uint64_t> parse_size(const std::string &text);
// "02:00:00:00:00:01"
Result<std::array<uint8_t, 6>> parse_mac(const std::string &text);
struct ParsedIp {
    uint8_t family = 4;
    std::array<uint8_t, 16> bytes{};
};
// "198.18.0.2" or "2001:db8::2"
Result<ParsedIp> parse_ip(const std::string &text);

}  // namespace wisp::vmm
