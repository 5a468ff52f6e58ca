#!/usr/bin/env bash
# Builds and runs the scale benchmark (root, /dev/kvm, BPF; about a minute for the
# load step), prints its tables and writes the plot of replicas and request latency
# over time, autoscale ON next to OFF, to docs/bench/scale.png.
#   tools/bench/scale/run.sh [--max N] [--target T] [--connections C] [--quick] ...
# (options: build/bin/wisp-bench-scale --help)
set -euo pipefail
cd "$(dirname "$0")/../../.."
BUILD=${WISP_BUILD_DIR:-build}
cmake -S . -B "$BUILD" -G Ninja >/dev/null
cmake --build "$BUILD" --target wisp-bench-scale >/dev/null
SAMPLES=$BUILD/bench/scale-samples.json
# At the niceness the systemd unit gives wispd (Nice=-10, inherited by its monitors);
# the client runs at the same niceness. WISP_BENCH_NICE=0 measures at the default.
# Ctrl-C: the benchmark removes wispd, its monitors, the namespace, the veth and the
# pins itself before it exits.
nice -n "${WISP_BENCH_NICE:--10}" "$BUILD/bin/wisp-bench-scale" --samples "$SAMPLES" "$@"
mkdir -p docs/bench
# Debian's python3 (python3-matplotlib), whatever python3 is first on PATH.
PY=/usr/bin/python3; [ -x "$PY" ] || PY=python3
"$PY" tools/bench/scale/plot.py "$SAMPLES" docs/bench/scale.png
echo "plot: docs/bench/scale.png"
# (b), (c): density and restores per second, when present.
if [ -x tools/bench/scale/density.sh ]; then tools/bench/scale/density.sh; fi
