#!/usr/bin/env bash
# Builds and runs the wisp-vmm benchmark (root and /dev/kvm needed).
#   tools/bench/vmm/run.sh [--boots N] [--hypercalls N]
set -euo pipefail
cd "$(dirname "$0")/../../.."
BUILD=${WISP_BUILD_DIR:-build}
cmake -S . -B "$BUILD" -G Ninja >/dev/null
cmake --build "$BUILD" --target bench_vmm >/dev/null
exec "$BUILD/bin/bench_vmm" "$@"
