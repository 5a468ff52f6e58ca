// wispd's one epoll loop. Everything that touches daemon state runs on the thread
// that calls run():
//   * fds registered with watch() (the ring buffer, monitor control sockets),
//   * signals, through a signalfd (the signals are blocked process-wide by
//     create(), which main() calls before any thread exists),
//   * timers, through one CLOCK_MONOTONIC timerfd armed at the earliest deadline,
//   * work posted from other threads (the HTTP server's workers) through post(),
//     which queues it and wakes the loop with an eventfd.
#pragma once

#include <signal.h>
#include <sys/signalfd.h>

#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <unordered_map>
#include <vector>

#include "wisp/result.h"
#include "wisp/unique_fd.h"
#include "wispd/ports.h"

namespace wisp::wispd {

class EventLoop final : public Scheduler {
public:
    using FdHandler = std::function<void(uint32_t events)>;
    using SignalHandler = std::function<void(const signalfd_siginfo &)>;

    // Blocks `signals` in the calling thread (threads created later inherit the
    // mask) and routes them to the loop.
    static Result<std::unique_ptr<EventLoop>> create(const std::vector<int> &signals);
    ~EventLoop() override;

    // Calls `handler` on the loop thread whenever `fd` has `events` (EPOLLIN, ...).
    Status watch(int fd, uint32_t events, FdHandler handler);
    void unwatch(int fd);
    void on_signal(SignalHandler handler) { signal_handler_ = std::move(handler); }

    // Thread-safe: runs `fn` on the loop thread soon. After stop() the work is
    // dropped (callers waiting on a result must not wait forever: see ApiServer).
    void post(std::function<void()> fn);

    // Scheduler.
    uint64_t now_ns() const override;
    int64_t wall_ms() const override;
    TimerId schedule_at(uint64_t deadline_ns, std::function<void()> fn) override;
    void cancel(TimerId id) override;

    // Runs until stop(); returns an error only if epoll itself fails.
    Status run();
    void stop() { running_ = false; }

private:
    EventLoop() = default;
    void rearm_timer();
    void fire_timers();
    void drain_posted();
    void read_signals();

    UniqueFd epoll_, timer_, wake_, signals_;
    std::unordered_map<int, std::shared_ptr<FdHandler>> handlers_;
    SignalHandler signal_handler_;
    std::multimap<uint64_t, TimerId> deadlines_;
    std::unordered_map<TimerId, std::pair<uint64_t, std::function<void()>>> timers_;
    TimerId next_timer_ = 0;
    uint64_t armed_for_ = 0;
    std::mutex posted_mutex_;
    std::vector<std::function<void()>> posted_;
    bool running_ = false;
};

}  // namespace wisp::wispd
