#include "wisp/vmm/vmm.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <spdlog/spdlog.h>

#include <cstring>

#include "wisp/vmm/elf_loader.h"
#include "wisp/vmm/fault.h"
#include "wisp/vmm/kick.h"

namespace wisp::vmm {

namespace {
constexpr uint64_t kXcr0X87 = 1, kXcr0Sse = 2, kXcr0Avx = 4;
}

const char *exit_reason_name(uint32_t reason) {
    switch (reason) {
        case WISP_EXIT_HALT: return "halt";
        case WISP_EXIT_ABORT: return "abort";
        case WISP_EXIT_STOPPED: return "stopped";
        case WISP_EXIT_BAD_POINTER: return "pointer out of range";
        case WISP_EXIT_LENGTH_OVERFLOW: return "length overflow";
        case WISP_EXIT_BAD_ARGUMENT: return "bad hypercall argument";
        case WISP_EXIT_UNKNOWN_HYPERCALL: return "unknown hypercall";
        case WISP_EXIT_BAD_PORT_ACCESS: return "bad port access";
        case WISP_EXIT_PRIVILEGED_INSTRUCTION: return "privileged instruction";
        case WISP_EXIT_READ_ONLY_WRITE: return "write to read-only page";
        case WISP_EXIT_STACK_OVERFLOW: return "stack overflow";
        case WISP_EXIT_UNMAPPED_ACCESS: return "unmapped access";
        case WISP_EXIT_EXECUTE_VIOLATION: return "execute violation";
        case WISP_EXIT_INVALID_OPCODE: return "invalid opcode";
        case WISP_EXIT_TRIPLE_FAULT: return "triple fault";
        case WISP_EXIT_UNEXPECTED_EXIT: return "unexpected exit";
        case WISP_EXIT_MONITOR_ERROR: return "monitor error";
        default: return "unknown";
    }
}

const char *hypercall_name(uint32_t nr) {
    switch (nr) {
        case WISP_HC_CONSOLE: return "console";
        case WISP_HC_CLOCK: return "clock";
        case WISP_HC_POLL: return "poll";
        case WISP_HC_NET_READ: return "net_read";
        case WISP_HC_NET_WRITE: return "net_write";
        case WISP_HC_READY: return "ready";
        case WISP_HC_HALT: return "halt";
        case WISP_HC_ABORT: return "abort";
        case 0: return "none";
        default: return "unknown";
    }
}

Vmm::Vmm(Kvm kvm, Vm vm, Vcpu vcpu)
    : kvm_(std::move(kvm)), vm_(std::move(vm)), vcpu_(std::move(vcpu)) {}

Vmm::~Vmm() { clear_kick_target(vcpu_.run_state()); }

Result<std::unique_ptr<Vmm>> Vmm::create() {
    auto kvm = Kvm::open();
    if (!kvm) return std::move(kvm).error();
    auto vm = Vm::create(*kvm);
    if (!vm) return std::move(vm).error();
    auto vcpu = Vcpu::create(*kvm, *vm);
    if (!vcpu) return std::move(vcpu).error();
    // The guest sees the CPUID KVM supports: XSAVE/AVX must be visible for
    // CR4.OSXSAVE and XCR0 to be accepted.
    WISP_RETURN_IF_ERROR(vcpu->set_cpuid(kvm->supported_cpuid()));
    std::unique_ptr<Vmm> vmm(new Vmm(std::move(*kvm), std::move(*vm), std::move(*vcpu)));
    // The machine model's special registers and XCR0 now, and what the vCPU then
    // holds: a restore leaves out what is already equal (wake path), and the TSC
    // rate is fixed for the VM's life.
    WISP_RETURN_IF_ERROR(vmm->set_machine_registers());
    auto baseline = vmm->vcpu_.save();
    if (!baseline) return std::move(baseline).error();
    vmm->vcpu_baseline_ = *baseline;
    auto khz = vmm->vcpu_.tsc_khz();
    if (!khz) return std::move(khz).error();
    vmm->tsc_khz_ = *khz;
    // Snapshots find the pages to write here; unreachable once sandboxed, so it is
    // opened now (a monitor without /proc still boots, it just cannot snapshot).
    vmm->pagemap_.reset(open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC));
    set_kick_target(vmm->vcpu_.run_state());
    return vmm;
}

Status Vmm::boot(const BootConfig &config, std::span<const uint8_t> image, Tap tap,
                 ConsoleLog console) {
    if (memory_.valid()) return invalid("this VM was already booted", EALREADY);
    WISP_RETURN_IF_ERROR(tap.prepare());
    WISP_RETURN_IF_ERROR(check_identity(config.identity));
    if (config.cmdline.size() >= WISP_CMDLINE_MAX) return invalid("command line too long");
    WISP_RETURN_IF_ERROR(GuestMemory::check_size(config.mem_size));
    auto parsed = parse_elf(image, image_load_limit(config.mem_size));
    if (!parsed) return std::move(parsed).error();
    auto memory = map_memory(config.mem_size, -1);
    if (!memory) return std::move(memory).error();
    WISP_RETURN_IF_ERROR(load_elf(*parsed, image, *memory));
    GuestLayout layout = make_layout(config.mem_size, *parsed);
    WISP_RETURN_IF_ERROR(build_system_tables(layout, *memory));
    WISP_RETURN_IF_ERROR(attach_memory(*memory));
    // From here on KVM refers to this memory: keep it whatever happens next (a
    // later failure leaves this VM unusable, and memory_.valid() says so).
    memory_ = std::move(*memory);
    layout_ = std::move(layout);

    WISP_RETURN_IF_ERROR(set_machine_registers());
    WISP_RETURN_IF_ERROR(vcpu_.set_regs(initial_registers(parsed->entry, layout_.stack_top)));

    auto tsc = vcpu_.get_msr(kMsrTsc);
    if (!tsc) return std::move(tsc).error();
    uint64_t mono = clock_.monotonic_ns();
    int64_t wall_offset = static_cast<int64_t>(clock_.wall_ns() - mono);
    wisp_clock_info clock = make_clock_info(tsc_khz_, *tsc, mono, wall_offset, 0);
    if (!memory_.write(WISP_BOOT_INFO_GPA,
                       make_boot_info(layout_, config.identity, config.cmdline, clock)))
        return invalid("boot info outside guest memory");

    tap_ = std::move(tap);
    console_ = std::move(console);
    identity_ = config.identity;
    entry_rip_ = parsed->entry;
    entry_ns_ = host_monotonic_ns();
    return {};
}

Status Vmm::set_machine_registers() {
    kvm_sregs sregs;
    WISP_RETURN_IF_ERROR(vcpu_.get_sregs(sregs));
    init_special_registers(sregs, kvm_.has_xsave());
    WISP_RETURN_IF_ERROR(vcpu_.set_sregs(sregs));
    if (kvm_.has_xsave())
        WISP_RETURN_IF_ERROR(vcpu_.set_xcr0(kXcr0X87 | kXcr0Sse | (kvm_.has_avx() ? kXcr0Avx : 0)));
    return {};
}

Status Vmm::prepare_memory(uint64_t size) {
    WISP_RETURN_IF_ERROR(GuestMemory::check_size(size));
    if (memory_.valid()) return invalid("guest memory is already in use", EALREADY);
    // A range far below where mmap and the heap place anything (they grow down
    // from the top of the address space and up from the binary), so it stays
    // free until the guest's memory is mapped into it.
    constexpr uint64_t kFirst = 0x100000000000ull, kStep = 0x10000000000ull;  // 16 TiB, then 1 TiB steps
    for (uint64_t candidate = kFirst; candidate < kFirst + 16 * kStep; candidate += kStep) {
        void *probe = mmap(reinterpret_cast<void *>(candidate), size, PROT_NONE,
                           MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_FIXED_NOREPLACE, -1, 0);
        if (probe == MAP_FAILED) continue;
        munmap(probe, size);  // before KVM knows it: freeing costs nothing
        if (probe != reinterpret_cast<void *>(candidate)) continue;
        auto *base = static_cast<uint8_t *>(probe);
        WISP_RETURN_IF_ERROR(vm_.set_memory_region(base, size));
        prepared_base_ = base;
        prepared_size_ = size;
        return {};
    }
    return invalid("no free address range for guest memory", ENOMEM);
}

Result<GuestMemory> Vmm::map_memory(uint64_t size, int fd) {
    if (prepared_size_ == size) {
        auto m = fd >= 0 ? GuestMemory::map_file(fd, size, prepared_base_)
                         : GuestMemory::anonymous(size, prepared_base_);
        if (m || m.error().code != EEXIST) return m;
        spdlog::warn("the prepared guest memory range is taken; setting memory up the slow way");
    }
    return fd >= 0 ? GuestMemory::map_file(fd, size) : GuestMemory::anonymous(size);
}

Status Vmm::attach_memory(const GuestMemory &memory) {
    if (prepared_size_ && memory.host_base() == prepared_base_ && memory.size() == prepared_size_) return {};
    prepared_size_ = 0;
    prepared_base_ = nullptr;
    return vm_.set_memory(memory);
}

RunStop Vmm::run() {
    kvm_run *run = vcpu_.run_state();
    at_ready_ = false;  // the guest leaves its ready hypercall now
    for (;;) {
        if (exited_) return RunStop::kExited;
        int r = vcpu_.run();
        stats_.exits++;
        if (r == -EINTR || r == -EAGAIN) {
            // Clear before the caller drains its sockets: a message that arrives
            // during the drain kicks again (see kick.h).
            run->immediate_exit = 0;
            return RunStop::kInterrupted;
        }
        if (r < 0) {
            die(WISP_EXIT_MONITOR_ERROR, std::string("KVM_RUN failed: ") + std::strerror(-r));
            return RunStop::kExited;
        }
        switch (run->exit_reason) {
            case KVM_EXIT_IO: {
                const uint16_t port = run->io.port;
                if (run->io.direction != KVM_EXIT_IO_OUT || run->io.size != 4 ||
                    run->io.count != 1 || port < WISP_HYPERCALL_PORT_BASE) {
                    die(WISP_EXIT_BAD_PORT_ACCESS,
                        std::string(run->io.direction == KVM_EXIT_IO_OUT ? "out" : "in") +
                            " of " + std::to_string(run->io.size) + " byte(s) x" +
                            std::to_string(run->io.count) + " on port " + std::to_string(port) +
                            " (hypercalls are one 32-bit out)");
                    return RunStop::kExited;
                }
                uint32_t arg;
                std::memcpy(&arg, reinterpret_cast<uint8_t *>(run) + run->io.data_offset, 4);
                switch (dispatch(port - WISP_HYPERCALL_PORT_BASE, arg)) {
                    case Action::kContinue: current_hypercall_ = 0; continue;
                    case Action::kReady: current_hypercall_ = 0; return RunStop::kReady;
                    case Action::kInterrupted:
                        current_hypercall_ = 0;
                        run->immediate_exit = 0;
                        return RunStop::kInterrupted;
                    case Action::kExit: return RunStop::kExited;
                }
                continue;
            }
            case KVM_EXIT_SHUTDOWN:
                handle_shutdown();
                return RunStop::kExited;
            case KVM_EXIT_INTR:
                run->immediate_exit = 0;
                return RunStop::kInterrupted;
            default:
                die(WISP_EXIT_UNEXPECTED_EXIT,
                    "KVM exit reason " + std::to_string(run->exit_reason));
                return RunStop::kExited;
        }
    }
}

void Vmm::handle_shutdown() {
    ShutdownState s;
    kvm_regs regs{};
    kvm_sregs sregs{};
    kvm_vcpu_events events{};
    if (vcpu_.get_regs(regs).ok()) {
        s.rip = regs.rip;
        s.rsp = regs.rsp;
    }
    if (vcpu_.get_sregs(sregs).ok()) s.cr2 = sregs.cr2;
    // KVM keeps the vector of the exception that started the escalation (seen on
    // the software KVM of the dev machines; docs/vmm.md). Without it the
    // classifier falls back to CR2 and the instruction bytes.
    if (vcpu_.get_events(events).ok() &&
        (events.exception.nr != 0 || events.exception.has_error_code)) {
        s.vector = events.exception.nr;
        if (events.exception.has_error_code) s.error_code = events.exception.error_code;
    }
    if (layout_.access_at(s.rip) == PageAccess::kUserReadExec) {
        uint64_t avail = memory_.size() - s.rip;
        s.insn_len = avail < sizeof s.insn ? avail : sizeof s.insn;
        Translation t = memory_.translate(s.rip, s.insn_len);
        if (t.ok) std::memcpy(s.insn, t.bytes.data(), s.insn_len);
        else s.insn_len = 0;
    }
    FaultReport report = classify_shutdown(s, layout_);
    die(report.reason, report.detail);
}

void Vmm::die(wisp_exit_reason reason, const std::string &detail, int64_t status) {
    if (exited_) return;
    exited_ = true;
    exit_ = wisp_ctl_exited{};
    exit_.reason = reason;
    exit_.status = status;
    exit_.hypercall = current_hypercall_;
    kvm_regs regs{};
    if (vcpu_.get_regs(regs).ok()) exit_.rip = regs.rip;
    size_t n = std::min(detail.size(), size_t{WISP_CTL_DETAIL_MAX - 1});
    std::memcpy(exit_.detail, detail.data(), n);
    exit_.detail_len = static_cast<uint32_t>(n);
    if (reason == WISP_EXIT_HALT || reason == WISP_EXIT_STOPPED)
        spdlog::info("VM ended: {}", exit_summary());
    else
        spdlog::error("VM ended: {}", exit_summary());
}

void Vmm::stop(wisp_exit_reason reason, const std::string &detail) {
    current_hypercall_ = 0;
    die(reason, detail);
}

std::string Vmm::exit_summary() const {
    if (!exited_) return "running";
    std::string s = exit_reason_name(exit_.reason);
    if (exit_.reason == WISP_EXIT_HALT) return s + " status " + std::to_string(exit_.status);
    if (exit_.detail_len) s += ": " + std::string(exit_.detail, exit_.detail_len);
    char where[96];
    std::snprintf(where, sizeof where, " (hypercall %s, rip 0x%llx)",
                  hypercall_name(exit_.hypercall), static_cast<unsigned long long>(exit_.rip));
    return s + where;
}

wisp_ctl_stats Vmm::stats() const {
    wisp_ctl_stats s = stats_;
    s.console_bytes = console_.written();
    s.console_dropped = console_.dropped();
    return s;
}

}  // namespace wisp::vmm
