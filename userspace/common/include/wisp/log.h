// Logging set-up shared by wispd, wisp and wisp-vmm (spdlog underneath).
#pragma once

#include <spdlog/spdlog.h>

#include <string>

namespace wisp::log {

// Installs the default logger for a program: stderr, "<program>" in every line, and
// the given level ("trace", "debug", "info", "warn", "error", "off"). Returns false
// for an unknown level name (the level stays at info).
bool init(const std::string &program, const std::string &level = "info");

}  // namespace wisp::log
