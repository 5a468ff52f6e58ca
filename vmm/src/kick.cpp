#include "wisp/vmm/kick.h"

#include <signal.h>

#include <atomic>
#include <cstring>

namespace wisp::vmm {

namespace {
std::atomic<kvm_run *> g_target{nullptr};
volatile sig_atomic_t g_terminate = 0;

void on_signal(int signo) {
    if (signo != SIGIO) g_terminate = 1;
    if (kvm_run *run = g_target.load(std::memory_order_relaxed)) run->immediate_exit = 1;
}
}  // namespace

void install_kick_handlers() {
    struct sigaction sa;
    std::memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = 0;  // no SA_RESTART: a blocking wait must see EINTR
    for (int signo : {SIGIO, SIGTERM, SIGINT, SIGHUP}) sigaction(signo, &sa, nullptr);
}

void set_kick_target(kvm_run *run) { g_target.store(run, std::memory_order_relaxed); }

void clear_kick_target(kvm_run *run) {
    g_target.compare_exchange_strong(run, nullptr, std::memory_order_relaxed);
}

bool termination_requested() { return g_terminate != 0; }

}  // namespace wisp::vmm
