#include "wisp/log.h"

#include <spdlog/sinks/stdout_color_sinks.h>

namespace wisp::log {

bool init(const std::string &program, const std::string &level) {
    auto logger = spdlog::stderr_color_mt(program);
    logger->set_pattern("%Y-%m-%dT%H:%M:%S.%e %^%l%$ " + program + ": %v");
    spdlog::set_default_logger(logger);
    auto parsed = spdlog::level::from_str(level);
    bool known = parsed != spdlog::level::off || level == "off";
    spdlog::set_level(known ? parsed : spdlog::level::info);
    return known;
}

}  // namespace wisp::log
