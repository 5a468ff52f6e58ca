#include "wispd/spec.h"

#include <arpa/inet.h>
#include <sys/stat.h>
#include <unistd.h>

#include <nlohmann/json.hpp>

#include <fstream>
#include <set>

namespace wisp::wispd {

using nlohmann::json;

Error field_error(const std::string &field, const std::string &reason) {
    return Error{EINVAL, field + ": " + reason};
}

std::string error_field(const Error &error) {
    auto colon = error.message.find(": ");
    if (colon == std::string::npos || colon == 0) return "";
    std::string field = error.message.substr(0, colon);
    for (char c : field)
        if (!((c >= 'a' && c <= 'z') || c == '_' || (c >= '0' && c <= '9'))) return "";
    return field;
}

namespace {

Result<uint64_t> get_uint(const json &body, const char *field, uint64_t lo, uint64_t hi) {
    const json &v = body.at(field);
    if (!v.is_number_integer())
        return field_error(field, "must be an integer between " + std::to_string(lo) + " and " +
                                      std::to_string(hi));
    if (v.is_number_unsigned()) {
        uint64_t u = v.get<uint64_t>();
        if (u >= lo && u <= hi) return u;
    } else {
        int64_t i = v.get<int64_t>();
        if (i >= 0 && static_cast<uint64_t>(i) >= lo && static_cast<uint64_t>(i) <= hi)
            return static_cast<uint64_t>(i);
    }
    return field_error(field, "must be between " + std::to_string(lo) + " and " +
                                  std::to_string(hi) + ", got " + v.dump());
}

Result<std::string> get_string(const json &body, const char *field) {
    const json &v = body.at(field);
    if (!v.is_string()) return field_error(field, "must be a string");
    return v.get<std::string>();
}

Status check_fields(const json &body, const std::set<std::string> &allowed) {
    if (!body.is_object()) return field_error("body", "must be a JSON object");
    for (auto &[key, value] : body.items())
        if (!allowed.count(key)) return field_error(key, "unknown field");
    return {};
}

Status validate_image(const std::string &path) {
    if (path.empty() || path[0] != '/')
        return field_error("image", "must be an absolute path, got '" + path + "'");
    struct stat st {};
    if (stat(path.c_str(), &st) != 0)
        return field_error("image", "'" + path + "' does not exist");
    if (!S_ISREG(st.st_mode)) return field_error("image", "'" + path + "' is not a regular file");
    std::ifstream in(path, std::ios::binary);
    if (!in) return field_error("image", "'" + path + "' cannot be read");
    char magic[4] = {};
    in.read(magic, 4);
    if (in.gcount() < 4 || magic[0] != 0x7f || magic[1] != 'E' || magic[2] != 'L' || magic[3] != 'F')
        return field_error("image", "'" + path + "' is not an ELF file");
    return {};
}

Status validate_vip(const std::string &vip) {
    in_addr v4{};
    in6_addr v6{};
    if (inet_pton(AF_INET, vip.c_str(), &v4) == 1) {
        uint32_t a = ntohl(v4.s_addr);
        if (a == 0 || a == 0xffffffff)
            return field_error("vip", "'" + vip + "' is not a unicast address");
        if ((a >> 28) == 0xe) return field_error("vip", "'" + vip + "' is a multicast address");
        if ((a >> 24) == 127)
            return field_error("vip", "'" + vip + "' is a loopback address (not seen by XDP)");
        return {};
    }
    if (inet_pton(AF_INET6, vip.c_str(), &v6) == 1) {
        if (IN6_IS_ADDR_UNSPECIFIED(&v6) || IN6_IS_ADDR_LOOPBACK(&v6))
            return field_error("vip", "'" + vip + "' is not a usable unicast address");
        if (IN6_IS_ADDR_MULTICAST(&v6))
            return field_error("vip", "'" + vip + "' is a multicast address");
        return {};
    }
    return field_error("vip", "'" + vip + "' is not an IPv4 or IPv6 address");
}

Status validate_cmdline(const std::string &cmdline) {
    if (cmdline.size() > kMaxCmdlineLength)
        return field_error("cmdline", "longer than " + std::to_string(kMaxCmdlineLength) + " bytes");
    for (unsigned char c : cmdline)
        if (c < 0x20 || c == 0x7f)
            return field_error("cmdline", "must not contain control characters");
    return {};
}

Status validate_settings(const ServiceSettings &s) {
    if (s.min_replicas > s.max_replicas)
        return field_error("min_replicas", "must not exceed max_replicas (" +
                                               std::to_string(s.min_replicas) + " > " +
                                               std::to_string(s.max_replicas) + ")");
    return {};
}

// Reads the settings fields present in `body` into `s`.
Status read_settings(const json &body, ServiceSettings &s) {
    if (body.contains("idle_timeout_ms")) {
        auto v = get_uint(body, "idle_timeout_ms", kMinIdleTimeoutMs, kMaxIdleTimeoutMs);
        if (!v) return std::move(v).error();
        s.idle_timeout_ms = static_cast<uint32_t>(*v);
    }
    if (body.contains("min_replicas")) {
        auto v = get_uint(body, "min_replicas", 0, kMaxReplicasLimit);
        if (!v) return std::move(v).error();
        s.min_replicas = static_cast<uint32_t>(*v);
    }
    if (body.contains("max_replicas")) {
        auto v = get_uint(body, "max_replicas", 1, kMaxReplicasLimit);
        if (!v) return std::move(v).error();
        s.max_replicas = static_cast<uint32_t>(*v);
    }
    if (body.contains("target_per_replica")) {
        auto v = get_uint(body, "target_per_replica", 0, kMaxTargetPerReplica);
        if (!v) return std::move(v).error();
        s.target_per_replica = static_cast<uint32_t>(*v);
    }
    return validate_settings(s);
}

}  // namespace

Status validate_service_name(const std::string &name) {
    if (name.empty() || name.size() > kMaxNameLength)
        return field_error("name", "must be 1 to " + std::to_string(kMaxNameLength) +
                                       " characters");
    if (!(name[0] >= 'a' && name[0] <= 'z'))
        return field_error("name", "must start with a lowercase letter, got '" + name + "'");
    for (char c : name)
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-'))
            return field_error("name", "may contain only a-z, 0-9 and '-', got '" + name + "'");
    if (name.back() == '-') return field_error("name", "must not end with '-'");
    return {};
}

Result<ServiceSpec> parse_service_spec(const json &body,
                                       const std::function<Result<std::string>()> &default_vip) {
    WISP_RETURN_IF_ERROR(check_fields(
        body, {"name", "image", "memory_mib", "port", "protocol", "vip", "cmdline",
               "idle_timeout_ms", "stateful", "min_replicas", "max_replicas",
               "target_per_replica"}));
    ServiceSpec spec;
    for (const char *required : {"name", "image", "port"})
        if (!body.contains(required)) return field_error(required, "is required");

    auto name = get_string(body, "name");
    if (!name) return std::move(name).error();
    WISP_RETURN_IF_ERROR(validate_service_name(*name));
    spec.name = *name;

    auto image = get_string(body, "image");
    if (!image) return std::move(image).error();
    WISP_RETURN_IF_ERROR(validate_image(*image));
    spec.image = *image;

    auto port = get_uint(body, "port", 1, 65535);
    if (!port) return std::move(port).error();
    spec.port = static_cast<uint16_t>(*port);

    if (body.contains("memory_mib")) {
        auto v = get_uint(body, "memory_mib", kMinMemoryMib, kMaxMemoryMib);
        if (!v) return std::move(v).error();
        spec.memory_mib = static_cast<uint32_t>(*v);
    }
    if (body.contains("protocol")) {
        auto v = get_string(body, "protocol");
        if (!v) return std::move(v).error();
        auto p = parse_protocol(*v);
        if (!p) return field_error("protocol", "must be \"tcp\" or \"udp\", got '" + *v + "'");
        spec.protocol = *p;
    }
    if (body.contains("vip")) {
        auto v = get_string(body, "vip");
        if (!v) return std::move(v).error();
        spec.vip = *v;
    } else {
        auto v = default_vip();
        if (!v) return field_error("vip", "not given, and no default: " + v.error().message);
        spec.vip = *v;
    }
    WISP_RETURN_IF_ERROR(validate_vip(spec.vip));
    if (body.contains("cmdline")) {
        auto v = get_string(body, "cmdline");
        if (!v) return std::move(v).error();
        WISP_RETURN_IF_ERROR(validate_cmdline(*v));
        spec.cmdline = *v;
    }
    if (body.contains("stateful")) {
        if (!body["stateful"].is_boolean()) return field_error("stateful", "must be true or false");
        spec.stateful = body["stateful"].get<bool>();
    }
    ServiceSettings settings{spec.idle_timeout_ms, spec.min_replicas, spec.max_replicas,
                             spec.target_per_replica};
    WISP_RETURN_IF_ERROR(read_settings(body, settings));
    spec.idle_timeout_ms = settings.idle_timeout_ms;
    spec.min_replicas = settings.min_replicas;
    spec.max_replicas = settings.max_replicas;
    spec.target_per_replica = settings.target_per_replica;
    // Each replica of a stateful service would write its own state snapshot and the
    // next wake could restore only one of them.
    if (spec.stateful && spec.max_replicas > 1)
        return field_error("max_replicas", "a stateful service runs at most one replica");
    return spec;
}

Result<ServiceSettings> parse_settings_patch(const json &body, const ServiceSettings &current) {
    if (!body.is_object()) return field_error("body", "must be a JSON object");
    static const std::set<std::string> fixed = {"name",     "image", "memory_mib", "port",
                                                "protocol", "vip",   "cmdline",    "stateful"};
    for (auto &[key, value] : body.items())
        if (fixed.count(key))
            return field_error(key, "cannot be changed after creation (delete and recreate)");
    WISP_RETURN_IF_ERROR(check_fields(
        body, {"idle_timeout_ms", "min_replicas", "max_replicas", "target_per_replica"}));
    if (body.empty()) return field_error("body", "names no setting to change");
    ServiceSettings s = current;
    WISP_RETURN_IF_ERROR(read_settings(body, s));
    return s;
}

Result<ServiceSettings> parse_scale(const json &body, const ServiceSettings &current) {
    WISP_RETURN_IF_ERROR(check_fields(body, {"replicas"}));
    if (!body.contains("replicas")) return field_error("replicas", "is required");
    auto n = get_uint(body, "replicas", 0, kMaxReplicasLimit);
    if (!n) return std::move(n).error();
    ServiceSettings s = current;
    s.min_replicas = static_cast<uint32_t>(*n);
    s.max_replicas = std::max<uint32_t>(1, static_cast<uint32_t>(*n));
    return s;
}

}  // namespace wisp::wispd
