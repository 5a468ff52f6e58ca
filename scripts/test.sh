#!/usr/bin/env bash
# Build wisp and run the whole test suite:
#   1. the main build (RelWithDebInfo): every test, all labels (unit bpf vm guest
#      snapshot e2e, plus the bounded fuzz runs)
#   2. an ASan+UBSan build of the unit tests
# Fails on any test failure, and up front on a missing capability (root, KVM, bpffs,
# BTF, tun): these tests never skip silently.
#
# Environment: WISP_BUILD_DIR (default build), WISP_JOBS (default nproc),
#              WISP_TEST_ARGS (extra ctest arguments, e.g. "-L unit" or "-R Wake"),
#              WISP_SKIP_ASAN=1 to skip the sanitizer build (local iteration only).
set -euo pipefail
cd "$(dirname "$0")/.."

BUILD=${WISP_BUILD_DIR:-build}
ASAN_BUILD=${BUILD}-asan
JOBS=${WISP_JOBS:-$(nproc)}
read -r -a EXTRA <<<"${WISP_TEST_ARGS:-}"

fail() { printf 'test.sh: %s\n' "$*" >&2; exit 1; }

# Capabilities: the suite needs all of them; report every missing one at once.
missing=()
[ "$(id -u)" -eq 0 ] || missing+=("root (run as root)")
[ -c /dev/kvm ] && [ -r /dev/kvm ] || missing+=("/dev/kvm")
[ -c /dev/net/tun ] || missing+=("/dev/net/tun")
mount | grep -q ' /sys/fs/bpf type bpf' || missing+=("bpffs on /sys/fs/bpf (scripts/setup.sh mounts it)")
[ -f /sys/kernel/btf/vmlinux ] || missing+=("kernel BTF (/sys/kernel/btf/vmlinux)")
command -v ip >/dev/null || missing+=("iproute2")
if [ ${#missing[@]} -gt 0 ]; then
  printf 'test.sh: missing capability: %s\n' "${missing[@]}" >&2
  fail "cannot run the suite; run scripts/setup.sh as root on a host with KVM and BPF"
fi

echo "== build ($BUILD)"
cmake -S . -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$BUILD" -j "$JOBS"

echo "== tests ($BUILD)"
ctest --test-dir "$BUILD" -j "$JOBS" --output-on-failure --no-tests=error "${EXTRA[@]}"

if [ "${WISP_SKIP_ASAN:-0}" != 1 ]; then
  echo "== unit tests under ASan+UBSan ($ASAN_BUILD)"
  cmake -S . -B "$ASAN_BUILD" -G Ninja -DCMAKE_BUILD_TYPE=Debug -DWISP_SANITIZE=ON >/dev/null
  cmake --build "$ASAN_BUILD" -j "$JOBS" --target wisp_unit_tests
  ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1 \
    ctest --test-dir "$ASAN_BUILD" -j "$JOBS" --output-on-failure --no-tests=error -L unit -LE fuzz
fi
echo "== all tests passed"
