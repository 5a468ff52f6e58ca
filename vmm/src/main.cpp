// wisp-vmm: one KVM monitor process per microVM.
#include <CLI/CLI.hpp>

#include "wisp/log.h"
#include "wisp/version.h"
#include "wisp_hypercall.h"

int main(int argc, char **argv) {
    CLI::App app{"wisp-vmm - KVM monitor for ring-3 wisp unikernels"};
    app.set_version_flag("--version", std::string("wisp-vmm ") + WISP_VERSION + " (" +
                                          WISP_GIT_REVISION + ", guest ABI " +
                                          std::to_string(WISP_ABI_VERSION) + ")");
    CLI11_PARSE(app, argc, argv);
    wisp::log::init("wisp-vmm", "info");
    spdlog::error("wisp-vmm cannot run guests yet");
    return 1;
}
