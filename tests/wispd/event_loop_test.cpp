// The epoll loop: timers, cross-thread posts, signals through signalfd.
#include "wispd/event_loop.h"

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/epoll.h>
#include <unistd.h>

#include <thread>

namespace {

using namespace wisp::wispd;

std::unique_ptr<EventLoop> make_loop() {
    auto loop = EventLoop::create({SIGUSR1});
    EXPECT_TRUE(loop.ok()) << loop.error().describe();
    return std::move(loop).value();
}

TEST(EventLoop, TimersFireInDeadlineOrderAndNotBefore) {
    auto loop = make_loop();
    std::vector<int> order;
    uint64_t start = loop->now_ns();
    uint64_t fired_at = 0;
    loop->schedule_after_ms(30, [&] {
        order.push_back(3);
        fired_at = loop->now_ns();
        loop->stop();
    });
    loop->schedule_after_ms(10, [&] { order.push_back(1); });
    loop->schedule_after_ms(20, [&] { order.push_back(2); });
    ASSERT_TRUE(loop->run().ok());
    EXPECT_EQ(order, (std::vector<int>{1, 2, 3}));
    EXPECT_GE(fired_at - start, 30'000'000u);
}

TEST(EventLoop, CancelledTimerNeverFires) {
    auto loop = make_loop();
    bool fired = false;
    auto id = loop->schedule_after_ms(5, [&] { fired = true; });
    loop->schedule_after_ms(20, [&] { loop->stop(); });
    loop->cancel(id);
    ASSERT_TRUE(loop->run().ok());
    EXPECT_FALSE(fired);
}

TEST(EventLoop, TimerArmedFromATimerFires) {
    auto loop = make_loop();
    int n = 0;
    std::function<void()> again = [&] {
        if (++n == 5) return loop->stop();
        loop->schedule_after_ms(1, again);
    };
    loop->schedule_after_ms(1, again);
    ASSERT_TRUE(loop->run().ok());
    EXPECT_EQ(n, 5);
}

TEST(EventLoop, WorkPostedFromOtherThreadsRunsOnTheLoopThread) {
    auto loop = make_loop();
    std::thread::id loop_thread = std::this_thread::get_id();
    int ran = 0;
    bool all_on_loop = true;
    std::vector<std::thread> threads;
    for (int t = 0; t < 4; ++t)
        threads.emplace_back([&] {
            for (int i = 0; i < 100; ++i)
                loop->post([&] {
                    all_on_loop &= std::this_thread::get_id() == loop_thread;
                    if (++ran == 400) loop->stop();
                });
        });
    loop->schedule_after_ms(10'000, [&] { loop->stop(); });  // bound, should not be hit
    ASSERT_TRUE(loop->run().ok());
    for (auto &t : threads) t.join();
    EXPECT_EQ(ran, 400);
    EXPECT_TRUE(all_on_loop);
}

TEST(EventLoop, BlockedSignalsArriveThroughTheLoop) {
    auto loop = make_loop();
    int got = 0;
    loop->on_signal([&](const signalfd_siginfo &info) {
        got = static_cast<int>(info.ssi_signo);
        loop->stop();
    });
    loop->schedule_after_ms(1, [] { kill(getpid(), SIGUSR1); });
    loop->schedule_after_ms(10'000, [&] { loop->stop(); });
    ASSERT_TRUE(loop->run().ok());
    EXPECT_EQ(got, SIGUSR1);
}

TEST(EventLoop, WatchedFdCallsItsHandler) {
    auto loop = make_loop();
    int fds[2];
    ASSERT_EQ(pipe(fds), 0);
    char seen = 0;
    ASSERT_TRUE(loop->watch(fds[0], EPOLLIN, [&](uint32_t) {
                        (void)!read(fds[0], &seen, 1);
                        loop->unwatch(fds[0]);
                        loop->stop();
                    }).ok());
    loop->schedule_after_ms(1, [&] { (void)!write(fds[1], "x", 1); });
    ASSERT_TRUE(loop->run().ok());
    EXPECT_EQ(seen, 'x');
    close(fds[0]);
    close(fds[1]);
}

}  // namespace
