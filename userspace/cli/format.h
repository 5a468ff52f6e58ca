// Parsing and printing helpers of the `wisp` CLI: sizes, durations, tables.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "wisp/result.h"

namespace wisp::cli {

// "64M", "64MiB", "1G", "1GiB" or a bare number of MiB -> MiB.
Result<uint64_t> parse_size_mib(const std::string &text);
// "500ms", "2s", "1m", "1h" or a bare number of ms -> ms.
Result<uint64_t> parse_duration_ms(const std::string &text);
// 1500 -> "1.5s", 250 -> "250ms", 120000 -> "2m".
std::string format_duration_ms(uint64_t ms);
// 1795760523078 (epoch ms), now -> "3m ago" style age ("-" for 0).
std::string format_age(int64_t then_ms, int64_t now_ms);

// Left-aligned columns separated by two spaces; the header row is printed as is.
std::string render_table(const std::vector<std::vector<std::string>> &rows);

}  // namespace wisp::cli
