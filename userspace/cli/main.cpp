// wisp: the operator CLI. Speaks wispd's HTTP/JSON API on its unix socket.
#include <CLI/CLI.hpp>

#include "wisp/log.h"
#include "wisp/version.h"

int main(int argc, char **argv) {
    CLI::App app{"wisp - manage services on a wisp host"};
    app.set_version_flag("--version", std::string("wisp ") + WISP_VERSION + " (" +
                                          WISP_GIT_REVISION + ")");
    app.require_subcommand(0);
    CLI11_PARSE(app, argc, argv);
    wisp::log::init("wisp", "warn");
    std::cout << app.help();
    return 0;
}
