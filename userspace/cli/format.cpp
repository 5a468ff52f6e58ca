#include "format.h"

#include <algorithm>
#include <cctype>
#include <cstdio>

namespace wisp::cli {

namespace {

// Splits "64MiB" into 64 and "MiB"; fails on anything but digits then letters.
bool split_number(const std::string &text, uint64_t &value, std::string &unit) {
    size_t i = 0;
    while (i < text.size() && std::isdigit(static_cast<unsigned char>(text[i]))) ++i;
    if (i == 0 || i > 12) return false;
    value = std::stoull(text.substr(0, i));
    unit = text.substr(i);
    return std::all_of(unit.begin(), unit.end(), [](char c) { return std::isalpha(static_cast<unsigned char>(c)); });
}

}  // namespace

Result<uint64_t> parse_size_mib(const std::string &text) {
    uint64_t v = 0;
    std::string unit;
    if (!split_number(text, v, unit))
        return invalid("'" + text + "' is not a size (examples: 64M, 512MiB, 1G)");
    if (unit.empty() || unit == "M" || unit == "MiB" || unit == "m") return v;
    if (unit == "G" || unit == "GiB" || unit == "g") return v * 1024;
    return invalid("'" + text + "': unknown size unit '" + unit + "' (use M or G)");
}

Result<uint64_t> parse_duration_ms(const std::string &text) {
    uint64_t v = 0;
    std::string unit;
    if (!split_number(text, v, unit))
        return invalid("'" + text + "' is not a duration (examples: 500ms, 2s, 5m)");
    if (unit.empty() || unit == "ms") return v;
    if (unit == "s") return v * 1000;
    if (unit == "m") return v * 60'000;
    if (unit == "h") return v * 3'600'000;
    return invalid("'" + text + "': unknown duration unit '" + unit + "' (use ms, s, m or h)");
}

std::string format_duration_ms(uint64_t ms) {
    char buf[32];
    if (ms < 1000) std::snprintf(buf, sizeof buf, "%llums", static_cast<unsigned long long>(ms));
    else if (ms < 60'000 && ms % 1000) std::snprintf(buf, sizeof buf, "%.1fs", ms / 1000.0);
    else if (ms < 60'000) std::snprintf(buf, sizeof buf, "%llus", static_cast<unsigned long long>(ms / 1000));
    else if (ms < 3'600'000 && ms % 60'000 == 0)
        std::snprintf(buf, sizeof buf, "%llum", static_cast<unsigned long long>(ms / 60'000));
    else if (ms < 3'600'000) std::snprintf(buf, sizeof buf, "%.1fm", ms / 60'000.0);
    else std::snprintf(buf, sizeof buf, "%.1fh", ms / 3'600'000.0);
    return buf;
}

std::string format_age(int64_t then_ms, int64_t now_ms) {
    if (then_ms <= 0) return "-";
    int64_t s = std::max<int64_t>(0, (now_ms - then_ms) / 1000);
    char buf[32];
    if (s < 60) std::snprintf(buf, sizeof buf, "%llds ago", static_cast<long long>(s));
    else if (s < 3600) std::snprintf(buf, sizeof buf, "%lldm ago", static_cast<long long>(s / 60));
    else if (s < 86400) std::snprintf(buf, sizeof buf, "%lldh ago", static_cast<long long>(s / 3600));
    else std::snprintf(buf, sizeof buf, "%lldd ago", static_cast<long long>(s / 86400));
    return buf;
}

std::string render_table(const std::vector<std::vector<std::string>> &rows) {
    std::vector<size_t> widths;
    for (auto &row : rows)
        for (size_t i = 0; i < row.size(); ++i) {
            if (widths.size() <= i) widths.push_back(0);
            widths[i] = std::max(widths[i], row[i].size());
        }
    std::string out;
    for (auto &row : rows) {
        std::string line;
        for (size_t i = 0; i < row.size(); ++i) {
            line += row[i];
            if (i + 1 < row.size()) line += std::string(widths[i] - row[i].size() + 2, ' ');
        }
        while (!line.empty() && line.back() == ' ') line.pop_back();
        out += line + "\n";
    }
    return out;
}

}  // namespace wisp::cli
