// Running commands from tests (real tools: ip, curl, wrk, bpftool).
#pragma once

#include <string>
#include <vector>

namespace wisp::test {

struct CommandResult {
    int exit_code = -1;  // -1 if it could not run or was killed by a signal
    std::string output;  // stdout and stderr, interleaved
};

// Runs `argv` (no shell), waits up to `timeout_s`, captures its output.
CommandResult run(const std::vector<std::string> &argv, int timeout_s = 60);

// Runs a shell command line (for pipes); prefer run() for everything else.
CommandResult run_shell(const std::string &command, int timeout_s = 60);

// Like run(), but throws std::runtime_error (with the command and its output)
// unless it exits 0.
void run_or_throw(const std::vector<std::string> &argv, int timeout_s = 30);

// Starts argv in the background in its own process group, stdout and stderr
// written to `log_path`. Returns its pid (the caller waits for it); throws
// std::runtime_error if it cannot fork.
int spawn_logged(const std::vector<std::string> &argv, const std::string &log_path);

// CLOCK_MONOTONIC in seconds.
double monotonic_seconds();

}  // namespace wisp::test
