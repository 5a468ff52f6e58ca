// wispd's options: built-in defaults, then an optional TOML config file, then the
// command line (which wins). The same option set serves production and tests:
// tests point the directories, socket and pin root at their own temporary paths.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "wisp/result.h"

namespace wisp::wispd {

struct Options {
    std::string config_file;                    // "" = none
    std::string uplink;                         // required: the interface XDP attaches to
    std::string state_dir = "/var/lib/wisp";    // SQLite, snapshots, console logs
    std::string runtime_dir = "/run/wisp";      // sockets
    std::string bpffs_root = "/sys/fs/bpf/wisp";
    std::string api_socket;                     // "" = <runtime_dir>/wispd.sock
    uint32_t monitor_pool_size = 4;             // pre-forked wisp-vmm processes
    uint32_t max_services = 16384;              // capacity of the data plane's service map
    std::string monitor_binary;                 // "" = wisp-vmm next to wispd
    std::string log_level = "info";

    // The socket path with its default applied.
    std::string api_socket_path() const {
        return api_socket.empty() ? runtime_dir + "/wispd.sock" : api_socket;
    }
};

inline constexpr uint32_t kMaxMonitorPoolSize = 1024;
inline constexpr uint32_t kMaxMaxServices = 1u << 20;

// What main() does after parsing: run with `options`, or exit with `exit_code`
// after printing `output` (help, version, or a usage error naming the option).
struct CommandLine {
    bool run = false;
    int exit_code = 0;
    std::string output;  // for stdout when exit_code == 0, else stderr
    Options options;
};

// Parses argv, reads --config if given, validates. Usage errors exit with 2.
CommandLine parse_command_line(int argc, const char *const *argv);

// Reads a TOML config file on top of `base`. Unknown keys, wrong types and bad
// values are errors naming the file, the key and what is expected.
Result<Options> apply_config_file(const std::string &path, Options base);

// The monitor executable: `monitor_binary`, or wisp-vmm in the directory of the
// running wispd (/proc/self/exe), which is where the build and `cmake --install`
// put it.
std::string monitor_binary_path(const Options &options);

// Checks values that do not depend on the machine (absolute paths, bounds, level
// names); the first problem names the option.
Status validate_options(const Options &options);

}  // namespace wisp::wispd
