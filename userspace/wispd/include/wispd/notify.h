// systemd's notify protocol (Type=notify, WatchdogSec=) through libsystemd. All
// calls are no-ops when wispd is not started by systemd (no NOTIFY_SOCKET).
#pragma once

#include <cstdint>
#include <string>

namespace wisp::wispd {

class SystemdNotifier {
public:
    // Reads NOTIFY_SOCKET / WATCHDOG_USEC / WATCHDOG_PID from the environment.
    SystemdNotifier();

    bool enabled() const { return enabled_; }
    // The interval at which WATCHDOG=1 must be sent (half of WatchdogSec), 0 if
    // the watchdog is off.
    uint64_t watchdog_ping_interval_us() const { return watchdog_us_ / 2; }

    void ready(const std::string &status);
    void watchdog();
    void reloading();
    void stopping();
    void status(const std::string &status);

private:
    bool enabled_ = false;
    uint64_t watchdog_us_ = 0;
};

}  // namespace wisp::wispd
