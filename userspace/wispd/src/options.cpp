#include "wispd/options.h"

#include <CLI/CLI.hpp>
#include <spdlog/spdlog.h>
#include <toml++/toml.h>

#include <filesystem>
#include <optional>
#include <set>
#include <sstream>

#include "wisp/version.h"

namespace wisp::wispd {

namespace {

// The option table: one row per option, shared by the command line and the file.
struct OptionRow {
    const char *key;   // TOML key; the flag is --key with '_' -> '-'
    const char *help;
    enum Kind { kText, kCount } kind;
    std::string Options::*text = nullptr;
    uint32_t Options::*count = nullptr;
};

const std::vector<OptionRow> &option_rows() {
    static const std::vector<OptionRow> rows = {
        {"uplink", "network interface the XDP program attaches to (required)", OptionRow::kText,
         &Options::uplink},
        {"state_dir", "durable state: database, snapshots, console logs (default /var/lib/wisp)",
         OptionRow::kText, &Options::state_dir},
        {"runtime_dir", "sockets (default /run/wisp)", OptionRow::kText, &Options::runtime_dir},
        {"bpffs_root", "where BPF maps and programs are pinned (default /sys/fs/bpf/wisp)",
         OptionRow::kText, &Options::bpffs_root},
        {"api_socket", "API unix socket (default <runtime_dir>/wispd.sock)", OptionRow::kText,
         &Options::api_socket},
        {"monitor_pool_size", "pre-forked wisp-vmm monitors kept ready (default 4)",
         OptionRow::kCount, nullptr, &Options::monitor_pool_size},
        {"max_services",
         "services the data plane's map holds (default 16384; entries are allocated on use)",
         OptionRow::kCount, nullptr, &Options::max_services},
        {"monitor_binary", "path of wisp-vmm (default: next to wispd)", OptionRow::kText,
         &Options::monitor_binary},
        {"log_level", "trace, debug, info, warn, error or off (default info)", OptionRow::kText,
         &Options::log_level},
    };
    return rows;
}

std::string flag_of(const char *key) {
    std::string flag = std::string("--") + key;
    for (auto &c : flag)
        if (c == '_') c = '-';
    return flag;
}

bool absolute(const std::string &p) { return !p.empty() && p[0] == '/'; }

}  // namespace

std::string monitor_binary_path(const Options &o) {
    if (!o.monitor_binary.empty()) return o.monitor_binary;
    std::error_code ec;
    auto self = std::filesystem::read_symlink("/proc/self/exe", ec);
    if (ec) return "wisp-vmm";
    return (self.parent_path() / "wisp-vmm").string();
}

Status validate_options(const Options &o) {
    if (!o.uplink.empty() && o.uplink.size() > 15)
        return invalid("uplink: interface names have at most 15 characters: '" + o.uplink + "'");
    for (auto [name, value] : {std::pair{"state_dir", &o.state_dir},
                               std::pair{"runtime_dir", &o.runtime_dir},
                               std::pair{"bpffs_root", &o.bpffs_root}})
        if (!absolute(*value))
            return invalid(std::string(name) + ": must be an absolute path, got '" + *value + "'");
    if (!o.api_socket.empty() && !absolute(o.api_socket))
        return invalid("api_socket: must be an absolute path, got '" + o.api_socket + "'");
    // sun_path holds 108 bytes including the NUL.
    if (o.api_socket_path().size() > 107)
        return invalid("api_socket: path longer than 107 bytes: '" + o.api_socket_path() + "'");
    if (!o.monitor_binary.empty() && !absolute(o.monitor_binary))
        return invalid("monitor_binary: must be an absolute path, got '" + o.monitor_binary + "'");
    if (o.monitor_pool_size > kMaxMonitorPoolSize)
        return invalid("monitor_pool_size: at most " + std::to_string(kMaxMonitorPoolSize) +
                       ", got " + std::to_string(o.monitor_pool_size));
    if (o.max_services < 1 || o.max_services > kMaxMaxServices)
        return invalid("max_services: 1 to " + std::to_string(kMaxMaxServices) + ", got " +
                       std::to_string(o.max_services));
    auto level = spdlog::level::from_str(o.log_level);
    if (level == spdlog::level::off && o.log_level != "off")
        return invalid("log_level: one of trace, debug, info, warn, error, off; got '" +
                       o.log_level + "'");
    return {};
}

Result<Options> apply_config_file(const std::string &path, Options base) {
    toml::table table;
    try {
        table = toml::parse_file(path);
    } catch (const toml::parse_error &e) {
        const auto &where = e.source().begin;
        int code = std::string(e.description()).find("File could not be opened") != std::string::npos
                       ? ENOENT
                       : EINVAL;
        return Error{code, "config " + path + ":" + std::to_string(where.line) + ":" +
                               std::to_string(where.column) + ": " + std::string(e.description())};
    }
    std::set<std::string> known;
    for (auto &row : option_rows()) known.insert(row.key);
    for (auto &[key, node] : table) {
        std::string k(key.str());
        if (!known.count(k))
            return invalid("config " + path + ": unknown key '" + k + "'");
    }
    for (auto &row : option_rows()) {
        auto node = table[row.key];
        if (!node) continue;
        if (row.kind == OptionRow::kText) {
            auto v = node.value<std::string>();
            if (!v || !node.is_string())
                return invalid("config " + path + ": '" + row.key + "' must be a string");
            base.*row.text = *v;
        } else {
            auto v = node.value<int64_t>();
            if (!v || !node.is_integer() || *v < 0 || *v > UINT32_MAX)
                return invalid("config " + path + ": '" + row.key +
                               "' must be a non-negative integer");
            base.*row.count = static_cast<uint32_t>(*v);
        }
    }
    base.config_file = path;
    return base;
}

CommandLine parse_command_line(int argc, const char *const *argv) {
    CommandLine result;
    CLI::App app{"wispd - the wisp orchestrator: wakes services on their first SYN"};
    app.set_version_flag("--version", std::string("wispd ") + WISP_VERSION + " (" +
                                          WISP_GIT_REVISION + ")");
    std::string config;
    app.add_option("-c,--config", config, "TOML config file; command-line options override it");

    // Each option goes to a staging value; only the ones given override the file.
    Options given;
    std::vector<std::pair<const OptionRow *, CLI::Option *>> added;
    for (auto &row : option_rows()) {
        CLI::Option *opt = row.kind == OptionRow::kText
                               ? app.add_option(flag_of(row.key), given.*row.text, row.help)
                               : app.add_option(flag_of(row.key), given.*row.count, row.help);
        added.emplace_back(&row, opt);
    }
    std::ostringstream out, err;
    try {
        app.parse(argc, argv);
    } catch (const CLI::ParseError &e) {
        result.exit_code = app.exit(e, out, err);
        result.output = result.exit_code == 0 ? out.str() : err.str();
        if (result.exit_code != 0) result.exit_code = 2;
        return result;
    }

    Options options;
    if (!config.empty()) {
        auto loaded = apply_config_file(config, options);
        if (!loaded) {
            result.exit_code = 2;
            result.output = "wispd: " + loaded.error().message + "\n";
            return result;
        }
        options = std::move(loaded).value();
    }
    for (auto &[row, opt] : added) {
        if (opt->count() == 0) continue;
        if (row->kind == OptionRow::kText) options.*row->text = given.*row->text;
        else options.*row->count = given.*row->count;
    }
    if (auto st = validate_options(options); !st) {
        result.exit_code = 2;
        result.output = "wispd: " + st.error().message + "\n";
        return result;
    }
    result.run = true;
    result.options = std::move(options);
    return result;
}

}  // namespace wisp::wispd
