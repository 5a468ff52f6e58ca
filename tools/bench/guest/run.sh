#!/usr/bin/env bash
# Builds and runs the guest SDK benchmark (root, /dev/kvm and wrk needed).
#   tools/bench/guest/run.sh [--seconds N] [--rounds N]
set -euo pipefail
cd "$(dirname "$0")/../../.."
BUILD=${WISP_BUILD_DIR:-build}
cmake -S . -B "$BUILD" -G Ninja >/dev/null
cmake --build "$BUILD" --target bench_guest >/dev/null
exec "$BUILD/bin/bench_guest" "$@"
