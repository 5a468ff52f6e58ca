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

}  // namespace wisp::test
