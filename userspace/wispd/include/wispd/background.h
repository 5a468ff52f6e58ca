// One helper thread for slow work that must not run on the event loop: forking
// and exec'ing monitors, creating taps and attaching their TC program. The pools
// use it to refill in the background, so a wake never waits for that work.
//
// A job runs on the helper thread and must not touch daemon state; it hands its
// result back with EventLoop::post(), which runs it on the loop thread. Jobs run
// one at a time, in submission order.
#pragma once

#include <condition_variable>
#include <deque>
#include <functional>
#include <mutex>
#include <thread>

namespace wisp::wispd {

class BackgroundWorker {
public:
    BackgroundWorker();
    // Waits for the job that is running, drops the queued ones.
    ~BackgroundWorker();
    BackgroundWorker(const BackgroundWorker &) = delete;
    BackgroundWorker &operator=(const BackgroundWorker &) = delete;

    void submit(std::function<void()> job);
    // Jobs queued or running (for tests and status).
    size_t pending() const;

private:
    void run();

    mutable std::mutex mutex_;
    std::condition_variable wake_;
    std::deque<std::function<void()>> jobs_;
    size_t running_ = 0;
    bool stopping_ = false;
    std::thread thread_;
};

}  // namespace wisp::wispd
