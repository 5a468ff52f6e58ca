#include "wispd/notify.h"

#include <spdlog/spdlog.h>
#include <systemd/sd-daemon.h>

#include <cstdlib>
#include <cstring>

namespace wisp::wispd {

namespace {
void send(const std::string &message) {
    int rc = sd_notify(0, message.c_str());
    if (rc < 0) spdlog::warn("sd_notify({}): {}", message, std::strerror(-rc));
}
}  // namespace

SystemdNotifier::SystemdNotifier() {
    const char *socket = std::getenv("NOTIFY_SOCKET");
    enabled_ = socket && *socket;
    uint64_t usec = 0;
    if (sd_watchdog_enabled(0, &usec) > 0) watchdog_us_ = usec;
}

void SystemdNotifier::ready(const std::string &status) {
    if (enabled_) send("READY=1\nSTATUS=" + status);
}
void SystemdNotifier::watchdog() {
    if (enabled_) send("WATCHDOG=1");
}
void SystemdNotifier::reloading() {
    if (enabled_) send("RELOADING=1");
}
void SystemdNotifier::stopping() {
    if (enabled_) send("STOPPING=1");
}
void SystemdNotifier::status(const std::string &status) {
    if (enabled_) send("STATUS=" + status);
}

}  // namespace wisp::wispd
