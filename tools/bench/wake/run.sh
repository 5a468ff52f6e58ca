#!/usr/bin/env bash
# Builds and runs the wake benchmark (root, /dev/kvm, BPF; a few minutes), prints
# its tables and writes the plot of the distributions to docs/bench/wake.png.
#   tools/bench/wake/run.sh [--wakes N] [--quick]
set -euo pipefail
cd "$(dirname "$0")/../../.."
BUILD=${WISP_BUILD_DIR:-build}
cmake -S . -B "$BUILD" -G Ninja >/dev/null
cmake --build "$BUILD" --target wisp-bench-wake >/dev/null
SAMPLES=$BUILD/bench/wake-samples.json
# At the niceness the systemd unit gives wispd (Nice=-10, inherited by its
# monitors); the client and every baseline run at the same niceness. WISP_BENCH_NICE=0
# measures at the default priority instead.
nice -n "${WISP_BENCH_NICE:--10}" "$BUILD/bin/wisp-bench-wake" --samples "$SAMPLES" "$@"
mkdir -p docs/bench
# Debian's python3 (python3-matplotlib), whatever python3 is first on PATH.
PY=/usr/bin/python3; [ -x "$PY" ] || PY=python3
"$PY" tools/bench/wake/plot.py "$SAMPLES" docs/bench/wake.png
echo "plot: docs/bench/wake.png"
