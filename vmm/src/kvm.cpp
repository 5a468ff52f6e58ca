#include "wisp/vmm/kvm.h"

#include <fcntl.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <xxhash.h>

#include <algorithm>
#include <cstddef>
#include <cstring>
#include <utility>

namespace wisp::vmm {

namespace {

constexpr int kMaxCpuidEntries = 256;

// kvm_cpuid2 as the kernel lays it out: {u32 nent; u32 padding;} then the
// entries at byte 8. (In C++ the UAPI struct's flexible array sits elsewhere;
// see kvm_ioctl in kvm.h.)
class CpuidBuffer {
public:
    CpuidBuffer() : storage_(new uint64_t[kWords]()) {}
    void *get() { return storage_.get(); }
    uint32_t &nent() { return *reinterpret_cast<uint32_t *>(storage_.get()); }
    kvm_cpuid_entry2 *entries() { return reinterpret_cast<kvm_cpuid_entry2 *>(storage_.get() + 1); }

private:
    static constexpr size_t kWords = 1 + (kMaxCpuidEntries * sizeof(kvm_cpuid_entry2) + 7) / 8;
    std::unique_ptr<uint64_t[]> storage_;
};

const kvm_cpuid_entry2 *find_leaf(const std::vector<kvm_cpuid_entry2> &cpuid, uint32_t fn) {
    for (const auto &e : cpuid)
        if (e.function == fn && e.index == 0) return &e;
    return nullptr;
}

// A hash of the CPUID words that name features a guest may rely on: vendor, leaf
// 1 ecx/edx, leaf 7 ebx/ecx/edx, the XSAVE leaf 0xd, leaf 0x80000001 ecx/edx.
// Not the whole table: it also holds the APIC id of whichever host CPU answered
// (leaf 1 ebx[31:24], leaf 0xb edx), which differs from call to call.
uint64_t feature_fingerprint(const std::vector<kvm_cpuid_entry2> &cpuid) {
    struct Word {
        uint32_t function, index, eax, ebx, ecx, edx;
    };
    std::vector<Word> words;
    for (const auto &e : cpuid) {
        Word w{e.function, e.index, 0, 0, 0, 0};
        switch (e.function) {
            case 0: w.ebx = e.ebx; w.ecx = e.ecx; w.edx = e.edx; break;
            case 1: w.ecx = e.ecx; w.edx = e.edx; break;
            case 7: w.ebx = e.ebx; w.ecx = e.ecx; w.edx = e.edx; break;
            case 0xd: w.eax = e.eax; w.ebx = e.ebx; w.ecx = e.ecx; break;
            case 0x80000001: w.ecx = e.ecx; w.edx = e.edx; break;
            default: continue;
        }
        words.push_back(w);
    }
    return XXH3_64bits(words.data(), words.size() * sizeof(Word));
}

}  // namespace

Result<Kvm> Kvm::open() {
    Kvm kvm;
    kvm.fd_.reset(::open("/dev/kvm", O_RDWR | O_CLOEXEC));
    if (!kvm.fd_) return errno_error("open /dev/kvm");
    int version = ioctl(kvm.fd(), KVM_GET_API_VERSION, 0);
    if (version != KVM_API_VERSION)
        return invalid("/dev/kvm speaks API " + std::to_string(version) + ", expected 12");
    kvm.vcpu_mmap_size_ = ioctl(kvm.fd(), KVM_GET_VCPU_MMAP_SIZE, 0);
    if (kvm.vcpu_mmap_size_ < static_cast<int>(sizeof(kvm_run)))
        return errno_error("KVM_GET_VCPU_MMAP_SIZE");
    CpuidBuffer buf;
    buf.nent() = kMaxCpuidEntries;
    if (ioctl(kvm.fd(), kvm_ioctl::kGetSupportedCpuid, buf.get()) != 0)
        return errno_error("KVM_GET_SUPPORTED_CPUID");
    kvm.cpuid_.assign(buf.entries(), buf.entries() + std::min<uint32_t>(buf.nent(), kMaxCpuidEntries));
    kvm.cpuid_hash_ = feature_fingerprint(kvm.cpuid_);
    return kvm;
}

bool Kvm::has_xsave() const {
    const kvm_cpuid_entry2 *leaf1 = find_leaf(cpuid_, 1);
    return leaf1 && (leaf1->ecx & (1u << 26));
}

bool Kvm::has_avx() const {
    const kvm_cpuid_entry2 *leaf1 = find_leaf(cpuid_, 1);
    return has_xsave() && leaf1 && (leaf1->ecx & (1u << 28));
}

Result<Vm> Vm::create(const Kvm &kvm) {
    Vm vm;
    vm.fd_.reset(ioctl(kvm.fd(), KVM_CREATE_VM, 0));
    if (!vm.fd_) return errno_error("KVM_CREATE_VM");
    return vm;
}

Status Vm::set_memory(const GuestMemory &memory) {
    return set_memory_region(memory.host_base(), memory.size());
}

Status Vm::set_memory_region(uint8_t *base, uint64_t size) {
    kvm_userspace_memory_region region{};
    region.slot = 0;
    if (slot_size_ != 0) {  // KVM cannot resize or move a slot: delete it first
        region.memory_size = 0;
        if (ioctl(fd(), KVM_SET_USER_MEMORY_REGION, &region) != 0)
            return errno_error("KVM_SET_USER_MEMORY_REGION (delete)");
        slot_size_ = 0;
    }
    region.guest_phys_addr = 0;
    region.memory_size = size;
    region.userspace_addr = reinterpret_cast<uint64_t>(base);
    if (ioctl(fd(), KVM_SET_USER_MEMORY_REGION, &region) != 0)
        return errno_error("KVM_SET_USER_MEMORY_REGION");
    slot_size_ = size;
    return {};
}

Result<Vcpu> Vcpu::create(const Kvm &kvm, const Vm &vm) {
    UniqueFd fd(ioctl(vm.fd(), KVM_CREATE_VCPU, 0));
    if (!fd) return errno_error("KVM_CREATE_VCPU");
    size_t size = static_cast<size_t>(kvm.vcpu_mmap_size());
    void *run = mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd.get(), 0);
    if (run == MAP_FAILED) return errno_error("mmap kvm_run");
    return Vcpu(std::move(fd), static_cast<kvm_run *>(run), size);
}

Vcpu::~Vcpu() {
    if (run_) munmap(run_, run_size_);
}

Vcpu::Vcpu(Vcpu &&other) noexcept
    : fd_(std::move(other.fd_)),
      run_(std::exchange(other.run_, nullptr)),
      run_size_(std::exchange(other.run_size_, 0)) {}

Vcpu &Vcpu::operator=(Vcpu &&other) noexcept {
    if (this != &other) {
        if (run_) munmap(run_, run_size_);
        fd_ = std::move(other.fd_);
        run_ = std::exchange(other.run_, nullptr);
        run_size_ = std::exchange(other.run_size_, 0);
    }
    return *this;
}

int Vcpu::run() { return ioctl(fd(), KVM_RUN, 0) == 0 ? 0 : -errno; }

Status Vcpu::complete_pending_io() {
    run_->immediate_exit = 1;
    int r = ioctl(fd(), KVM_RUN, 0);
    int err = errno;
    run_->immediate_exit = 0;
    if (r != 0 && err != EINTR) return Error{err, "KVM_RUN (complete pending I/O)"};
    return {};
}

Status Vcpu::set_cpuid(const std::vector<kvm_cpuid_entry2> &entries) {
    CpuidBuffer buf;
    if (entries.size() > kMaxCpuidEntries) return invalid("too many CPUID entries");
    buf.nent() = static_cast<uint32_t>(entries.size());
    std::copy(entries.begin(), entries.end(), buf.entries());
    if (ioctl(fd(), kvm_ioctl::kSetCpuid2, buf.get()) != 0) return errno_error("KVM_SET_CPUID2");
    return {};
}

Status Vcpu::get_regs(kvm_regs &regs) const {
    if (ioctl(fd(), KVM_GET_REGS, &regs) != 0) return errno_error("KVM_GET_REGS");
    return {};
}
Status Vcpu::set_regs(const kvm_regs &regs) {
    if (ioctl(fd(), KVM_SET_REGS, &regs) != 0) return errno_error("KVM_SET_REGS");
    return {};
}
Status Vcpu::get_sregs(kvm_sregs &sregs) const {
    if (ioctl(fd(), KVM_GET_SREGS, &sregs) != 0) return errno_error("KVM_GET_SREGS");
    return {};
}
Status Vcpu::set_sregs(const kvm_sregs &sregs) {
    if (ioctl(fd(), KVM_SET_SREGS, &sregs) != 0) return errno_error("KVM_SET_SREGS");
    return {};
}

Status Vcpu::set_xcr0(uint64_t value) {
    kvm_xcrs xcrs{};
    xcrs.nr_xcrs = 1;
    xcrs.xcrs[0].xcr = 0;
    xcrs.xcrs[0].value = value;
    if (ioctl(fd(), KVM_SET_XCRS, &xcrs) != 0) return errno_error("KVM_SET_XCRS");
    return {};
}

Status Vcpu::get_events(kvm_vcpu_events &events) const {
    if (ioctl(fd(), KVM_GET_VCPU_EVENTS, &events) != 0) return errno_error("KVM_GET_VCPU_EVENTS");
    return {};
}

namespace {
// kvm_msrs with one entry, as the kernel lays it out: {u32 nmsrs; u32 pad;}
// then the entry at byte 8 (see CpuidBuffer).
struct OneMsr {
    uint32_t nmsrs = 1;
    uint32_t pad = 0;
    kvm_msr_entry entry{};
};
static_assert(offsetof(OneMsr, entry) == 8);
struct TwoMsrs {
    uint32_t nmsrs = 2;
    uint32_t pad = 0;
    kvm_msr_entry entries[2]{};
};
static_assert(offsetof(TwoMsrs, entries) == 8);
}  // namespace

Result<uint64_t> Vcpu::get_msr(uint32_t index) const {
    OneMsr m;
    m.entry.index = index;
    if (ioctl(fd(), kvm_ioctl::kGetMsrs, &m) != 1) return errno_error("KVM_GET_MSRS");
    return static_cast<uint64_t>(m.entry.data);
}

Status Vcpu::set_msr(uint32_t index, uint64_t value) {
    OneMsr m;
    m.entry.index = index;
    m.entry.data = value;
    if (ioctl(fd(), kvm_ioctl::kSetMsrs, &m) != 1) return errno_error("KVM_SET_MSRS");
    return {};
}

Result<uint32_t> Vcpu::tsc_khz() const {
    int khz = ioctl(fd(), KVM_GET_TSC_KHZ, 0);
    if (khz <= 0) return errno_error("KVM_GET_TSC_KHZ");
    return static_cast<uint32_t>(khz);
}

Result<VcpuState> Vcpu::save() const {
    VcpuState s;
    WISP_RETURN_IF_ERROR(get_regs(s.regs));
    WISP_RETURN_IF_ERROR(get_sregs(s.sregs));
    if (ioctl(fd(), kvm_ioctl::kGetXsave, &s.xsave) != 0) return errno_error("KVM_GET_XSAVE");
    if (ioctl(fd(), KVM_GET_XCRS, &s.xcrs) != 0) return errno_error("KVM_GET_XCRS");
    WISP_RETURN_IF_ERROR(get_events(s.events));
    auto tsc = get_msr(kMsrTsc);
    auto pat = get_msr(kMsrPat);
    auto kgs = get_msr(kMsrKernelGsBase);
    if (!tsc) return std::move(tsc).error();
    if (!pat) return std::move(pat).error();
    if (!kgs) return std::move(kgs).error();
    s.tsc = *tsc;
    s.pat = *pat;
    s.kernel_gs_base = *kgs;
    return s;
}

Status Vcpu::restore(const VcpuState &s, const VcpuState *current) {
    // Each vCPU ioctl costs ~7-20 us on a nested host: parts this vCPU already
    // holds (the machine model's special registers, XCR0, no pending events, the
    // default MSRs of a pre-forked vCPU) are not set again.
    auto same = [](const auto &a, const auto *b) { return b && std::memcmp(&a, b, sizeof a) == 0; };
    // Order matters: sregs (modes) before regs; XCRs before XSAVE so the
    // restored components are enabled.
    if (!same(s.sregs, current ? &current->sregs : nullptr)) WISP_RETURN_IF_ERROR(set_sregs(s.sregs));
    if (!same(s.xcrs, current ? &current->xcrs : nullptr) && ioctl(fd(), KVM_SET_XCRS, &s.xcrs) != 0)
        return errno_error("KVM_SET_XCRS");
    if (ioctl(fd(), kvm_ioctl::kSetXsave, &s.xsave) != 0) return errno_error("KVM_SET_XSAVE");
    WISP_RETURN_IF_ERROR(set_regs(s.regs));
    if (current && s.pat == current->pat && s.kernel_gs_base == current->kernel_gs_base) {
        if (!same(s.events, &current->events) && ioctl(fd(), KVM_SET_VCPU_EVENTS, &s.events) != 0)
            return errno_error("KVM_SET_VCPU_EVENTS");
        return {};
    }
    // Not the TSC: a software KVM runs guest ring-3 `rdtsc` natively (the host's
    // TSC, whatever the MSR says), so the guest's clocks are recalibrated against
    // the TSC the new VM actually has (GuestClock::restore) instead.
    TwoMsrs m;
    m.entries[0].index = kMsrPat;
    m.entries[0].data = s.pat;
    m.entries[1].index = kMsrKernelGsBase;
    m.entries[1].data = s.kernel_gs_base;
    if (ioctl(fd(), kvm_ioctl::kSetMsrs, &m) != 2) return errno_error("KVM_SET_MSRS (PAT, KERNEL_GS_BASE)");
    if (ioctl(fd(), KVM_SET_VCPU_EVENTS, &s.events) != 0) return errno_error("KVM_SET_VCPU_EVENTS");
    return {};
}

}  // namespace wisp::vmm
