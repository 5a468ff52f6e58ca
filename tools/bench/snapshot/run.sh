#!/usr/bin/env bash
# Builds and runs the snapshot benchmark (root and /dev/kvm needed).
#   tools/bench/snapshot/run.sh [--restores N] [--replicas N] [--creations N]
#                               [--only restore|slowstart|create|replicas]
set -euo pipefail
cd "$(dirname "$0")/../../.."
BUILD=${WISP_BUILD_DIR:-build}
cmake -S . -B "$BUILD" -G Ninja >/dev/null
cmake --build "$BUILD" --target bench_snapshot >/dev/null
exec "$BUILD/bin/bench_snapshot" "$@"
