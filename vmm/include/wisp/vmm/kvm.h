// RAII wrappers over the KVM API: the system fd, one VM, one vCPU. Nothing here
// knows about wisp guests; machine.h and vmm.h give the vCPU its meaning.
#pragma once

#include <linux/kvm.h>

#include <cstdint>
#include <memory>
#include <vector>

#include "wisp/result.h"
#include "wisp/snapshot/state.h"
#include "wisp/unique_fd.h"
#include "wisp/vmm/guest_memory.h"

namespace wisp::vmm {

// ioctl numbers of the KVM calls whose argument struct ends in a flexible array.
// The UAPI header's __DECLARE_FLEX_ARRAY gives those structs a different size in
// C++ than in C, so the header's macros encode the wrong size and the kernel
// answers EINVAL; these use the C sizes (pinned in tests/vm/machine_test.cpp).
namespace kvm_ioctl {
constexpr unsigned long kGetSupportedCpuid = _IOC(_IOC_READ | _IOC_WRITE, KVMIO, 0x05, 8);
constexpr unsigned long kSetCpuid2 = _IOC(_IOC_WRITE, KVMIO, 0x90, 8);
constexpr unsigned long kGetMsrs = _IOC(_IOC_READ | _IOC_WRITE, KVMIO, 0x88, 8);
constexpr unsigned long kSetMsrs = _IOC(_IOC_WRITE, KVMIO, 0x89, 8);
constexpr unsigned long kGetXsave = _IOC(_IOC_READ, KVMIO, 0xa4, 4096);
constexpr unsigned long kSetXsave = _IOC(_IOC_WRITE, KVMIO, 0xa5, 4096);
}  // namespace kvm_ioctl

// /dev/kvm, its API version checked, with the CPUID KVM can offer guests.
class Kvm {
public:
    static Result<Kvm> open();
    int fd() const { return fd_.get(); }
    int vcpu_mmap_size() const { return vcpu_mmap_size_; }
    // The supported CPUID, fetched once (KVM_GET_SUPPORTED_CPUID).
    const std::vector<kvm_cpuid_entry2> &supported_cpuid() const { return cpuid_; }
    // Whether the CPUID above offers XSAVE and AVX.
    bool has_xsave() const;
    bool has_avx() const;
    // A hash of the supported CPUID: a snapshot records it, and a restore refuses a
    // host whose CPU offers the guest other features.
    uint64_t cpuid_hash() const { return cpuid_hash_; }

private:
    UniqueFd fd_;
    int vcpu_mmap_size_ = 0;
    std::vector<kvm_cpuid_entry2> cpuid_;
    uint64_t cpuid_hash_ = 0;
};

class Vm {
public:
    static Result<Vm> create(const Kvm &kvm);
    int fd() const { return fd_.get(); }
    // Makes `memory` guest-physical [0, size) in slot 0 (replacing any earlier one).
    Status set_memory(const GuestMemory &memory);
    // Slot 0 over host addresses [base, base + size), mapped or not yet: KVM
    // resolves addresses when the guest touches them. Replaces any earlier slot.
    Status set_memory_region(uint8_t *base, uint64_t size);

private:
    UniqueFd fd_;
    uint64_t slot_size_ = 0;  // 0: no slot yet
};

// The vCPU's complete architectural state as KVM exposes it: what a snapshot
// saves and a restore sets. A plain struct of the snapshot format
// (snapshot/include/wisp/snapshot/state.h), so the vmstate file holds it as is.
using VcpuState = snapshot::VcpuState;

class Vcpu {
public:
    static Result<Vcpu> create(const Kvm &kvm, const Vm &vm);
    ~Vcpu();
    Vcpu(Vcpu &&other) noexcept;
    Vcpu &operator=(Vcpu &&other) noexcept;
    Vcpu(const Vcpu &) = delete;
    Vcpu &operator=(const Vcpu &) = delete;

    int fd() const { return fd_.get(); }
    kvm_run *run_state() const { return run_; }

    // KVM_RUN once. Returns 0 on an exit to handle (see run_state()), or -errno
    // (-EINTR when kicked; see vmm/src/kick.cpp).
    int run();
    // Completes an in-flight I/O exit without entering the guest (KVM_RUN with
    // immediate_exit), so saved registers point past the `out`.
    Status complete_pending_io();

    Status set_cpuid(const std::vector<kvm_cpuid_entry2> &entries);
    Status get_regs(kvm_regs &regs) const;
    Status set_regs(const kvm_regs &regs);
    Status get_sregs(kvm_sregs &sregs) const;
    Status set_sregs(const kvm_sregs &sregs);
    Status set_xcr0(uint64_t value);
    Status get_events(kvm_vcpu_events &events) const;
    Result<uint64_t> get_msr(uint32_t index) const;
    Status set_msr(uint32_t index, uint64_t value);
    // Guest TSC frequency in kHz (KVM_GET_TSC_KHZ).
    Result<uint32_t> tsc_khz() const;

    // The whole state (save) and setting it on this vCPU (restore, e.g. on a fresh
    // VM). restore() sets everything but the TSC (see kvm.cpp; the guest's clocks
    // are recalibrated instead); it is on the wake path, so it batches the MSRs
    // and, given `current` (what this vCPU is known to hold), skips the parts
    // that are already equal.
    Result<VcpuState> save() const;
    Status restore(const VcpuState &state, const VcpuState *current = nullptr);

private:
    Vcpu(UniqueFd fd, kvm_run *run, size_t run_size) : fd_(std::move(fd)), run_(run), run_size_(run_size) {}
    UniqueFd fd_;
    kvm_run *run_ = nullptr;
    size_t run_size_ = 0;
};

constexpr uint32_t kMsrTsc = 0x10;
constexpr uint32_t kMsrPat = 0x277;
constexpr uint32_t kMsrKernelGsBase = 0xc0000102;

}  // namespace wisp::vmm
