#include "wispd/event_loop.h"

#include <spdlog/spdlog.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>

namespace wisp::wispd {

namespace {
uint64_t clock_ns(clockid_t clock) {
    timespec ts{};
    clock_gettime(clock, &ts);
    return static_cast<uint64_t>(ts.tv_sec) * 1'000'000'000 + static_cast<uint64_t>(ts.tv_nsec);
}
}  // namespace

Result<std::unique_ptr<EventLoop>> EventLoop::create(const std::vector<int> &signals) {
    std::unique_ptr<EventLoop> loop(new EventLoop());
    loop->epoll_.reset(epoll_create1(EPOLL_CLOEXEC));
    if (!loop->epoll_) return errno_error("epoll_create1");
    loop->timer_.reset(timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC));
    if (!loop->timer_) return errno_error("timerfd_create");
    loop->wake_.reset(eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC));
    if (!loop->wake_) return errno_error("eventfd");
    sigset_t mask;
    sigemptyset(&mask);
    for (int s : signals) sigaddset(&mask, s);
    if (pthread_sigmask(SIG_BLOCK, &mask, nullptr) != 0) return errno_error("blocking signals");
    loop->signals_.reset(signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC));
    if (!loop->signals_) return errno_error("signalfd");

    EventLoop *self = loop.get();
    WISP_RETURN_IF_ERROR(loop->watch(loop->timer_.get(), EPOLLIN, [self](uint32_t) {
        uint64_t expirations;
        (void)!read(self->timer_.get(), &expirations, sizeof expirations);
        self->fire_timers();
    }));
    WISP_RETURN_IF_ERROR(loop->watch(loop->wake_.get(), EPOLLIN, [self](uint32_t) {
        uint64_t n;
        (void)!read(self->wake_.get(), &n, sizeof n);
        self->drain_posted();
    }));
    WISP_RETURN_IF_ERROR(
        loop->watch(loop->signals_.get(), EPOLLIN, [self](uint32_t) { self->read_signals(); }));
    return loop;
}

EventLoop::~EventLoop() = default;

Status EventLoop::watch(int fd, uint32_t events, FdHandler handler) {
    epoll_event ev{};
    ev.events = events;
    ev.data.fd = fd;
    if (epoll_ctl(epoll_.get(), EPOLL_CTL_ADD, fd, &ev) != 0)
        return errno_error("epoll_ctl add fd " + std::to_string(fd));
    handlers_[fd] = std::make_shared<FdHandler>(std::move(handler));
    return {};
}

void EventLoop::unwatch(int fd) {
    epoll_ctl(epoll_.get(), EPOLL_CTL_DEL, fd, nullptr);
    handlers_.erase(fd);
}

void EventLoop::post(std::function<void()> fn) {
    {
        std::lock_guard lock(posted_mutex_);
        posted_.push_back(std::move(fn));
    }
    uint64_t one = 1;
    (void)!write(wake_.get(), &one, sizeof one);
}

void EventLoop::drain_posted() {
    std::vector<std::function<void()>> work;
    {
        std::lock_guard lock(posted_mutex_);
        work.swap(posted_);
    }
    for (auto &fn : work) fn();
}

uint64_t EventLoop::now_ns() const { return clock_ns(CLOCK_MONOTONIC); }
int64_t EventLoop::wall_ms() const {
    return static_cast<int64_t>(clock_ns(CLOCK_REALTIME) / 1'000'000);
}

Scheduler::TimerId EventLoop::schedule_at(uint64_t deadline_ns, std::function<void()> fn) {
    TimerId id = ++next_timer_;
    timers_[id] = {deadline_ns, std::move(fn)};
    deadlines_.emplace(deadline_ns, id);
    if (armed_for_ == 0 || deadline_ns < armed_for_) rearm_timer();
    return id;
}

void EventLoop::cancel(TimerId id) {
    auto it = timers_.find(id);
    if (it == timers_.end()) return;
    auto [lo, hi] = deadlines_.equal_range(it->second.first);
    for (auto d = lo; d != hi; ++d)
        if (d->second == id) {
            deadlines_.erase(d);
            break;
        }
    timers_.erase(it);
    // A stale early arming is harmless: fire_timers() finds nothing due and re-arms.
}

void EventLoop::rearm_timer() {
    itimerspec spec{};
    if (!deadlines_.empty()) {
        uint64_t at = std::max<uint64_t>(deadlines_.begin()->first, 1);
        spec.it_value.tv_sec = static_cast<time_t>(at / 1'000'000'000);
        spec.it_value.tv_nsec = static_cast<long>(at % 1'000'000'000);
        armed_for_ = at;
    } else {
        armed_for_ = 0;
    }
    if (timerfd_settime(timer_.get(), TFD_TIMER_ABSTIME, &spec, nullptr) != 0)
        spdlog::error("timerfd_settime: {}", strerror(errno));
}

void EventLoop::fire_timers() {
    uint64_t now = now_ns();
    while (!deadlines_.empty() && deadlines_.begin()->first <= now) {
        TimerId id = deadlines_.begin()->second;
        deadlines_.erase(deadlines_.begin());
        auto it = timers_.find(id);
        if (it == timers_.end()) continue;
        auto fn = std::move(it->second.second);
        timers_.erase(it);
        fn();
    }
    rearm_timer();
}

void EventLoop::read_signals() {
    signalfd_siginfo info{};
    while (read(signals_.get(), &info, sizeof info) == sizeof info)
        if (signal_handler_) signal_handler_(info);
}

Status EventLoop::run() {
    running_ = true;
    epoll_event events[32];
    while (running_) {
        int n = epoll_wait(epoll_.get(), events, 32, -1);
        if (n < 0) {
            if (errno == EINTR) continue;
            return errno_error("epoll_wait");
        }
        for (int i = 0; i < n && running_; ++i) {
            auto it = handlers_.find(events[i].data.fd);
            if (it == handlers_.end()) continue;
            auto handler = it->second;  // keeps it alive if the handler unwatches itself
            (*handler)(events[i].events);
        }
    }
    return {};
}

}  // namespace wisp::wispd
