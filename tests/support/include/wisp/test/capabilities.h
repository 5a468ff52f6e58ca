// Capability checks for privileged tests. A missing capability is a test FAILURE
// with a message naming what is missing, never a silent skip: CI has root, KVM,
// BPF and netns, so a missing one means the environment is broken.
#pragma once

#include <gtest/gtest.h>

#include <string>

namespace wisp::test {

// Each returns "" when the capability is present, otherwise what is missing.
std::string missing_root();
std::string missing_kvm();     // /dev/kvm usable (KVM_GET_API_VERSION == 12)
std::string missing_bpf();     // root + bpffs mounted at /sys/fs/bpf + BTF
std::string missing_netns();   // root + /dev/net/tun + `ip netns` works

}  // namespace wisp::test

#define WISP_REQUIRE_(check)                                                              \
    do {                                                                                  \
        std::string wisp_missing_ = (check);                                              \
        ASSERT_TRUE(wisp_missing_.empty()) << "missing capability: " << wisp_missing_;    \
    } while (0)
#define WISP_REQUIRE_ROOT() WISP_REQUIRE_(::wisp::test::missing_root())
#define WISP_REQUIRE_KVM() WISP_REQUIRE_(::wisp::test::missing_kvm())
#define WISP_REQUIRE_BPF() WISP_REQUIRE_(::wisp::test::missing_bpf())
#define WISP_REQUIRE_NETNS() WISP_REQUIRE_(::wisp::test::missing_netns())
