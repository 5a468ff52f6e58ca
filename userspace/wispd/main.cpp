// wispd: the wisp orchestrator daemon.
//
// Init order (kept here, in one place, on purpose):
//   1. parse options            2. logging
//   (later issues add: preflight checks, state store, data plane, monitor pool,
//    API socket, sd_notify READY=1, the epoll loop)
#include <CLI/CLI.hpp>

#include "wisp/log.h"
#include "wisp/version.h"

int main(int argc, char **argv) {
    CLI::App app{"wispd - the wisp orchestrator: wakes services on their first SYN"};
    app.set_version_flag("--version", std::string("wispd ") + WISP_VERSION + " (" +
                                          WISP_GIT_REVISION + ")");
    std::string log_level = "info";
    app.add_option("--log-level", log_level, "trace, debug, info, warn, error or off");
    CLI11_PARSE(app, argc, argv);

    if (!wisp::log::init("wispd", log_level)) {
        spdlog::error("unknown log level '{}'", log_level);
        return 2;
    }
    spdlog::error("wispd has no control plane yet; nothing to run");
    return 1;
}
