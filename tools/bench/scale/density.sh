#!/usr/bin/env bash
# Builds and runs the density benchmark (root, /dev/kvm, BPF; ~5 minutes with the
# default counts) and prints its table.
#   tools/bench/scale/density.sh [--standby N] [--running N] [--burst N] [--pool N] [--quick]
# Defaults: 10,000 standby, 1,000 running, bursts of 300 wakes, 320 pre-forked monitors
# (a burst larger than the pool pays a fork/exec per extra wake: try --pool 32).
set -euo pipefail
cd "$(dirname "$0")/../../.."
BUILD=${WISP_BUILD_DIR:-build}
cmake -S . -B "$BUILD" -G Ninja >/dev/null
if ! out=$(cmake --build "$BUILD" --target wisp-bench-density 2>&1); then
  printf '%s\n' "$out" >&2
  exit 1
fi
# At the niceness the systemd unit gives wispd (Nice=-10), like tools/bench/wake.
exec nice -n "${WISP_BENCH_NICE:--10}" "$BUILD/bin/wisp-bench-density" "$@"
