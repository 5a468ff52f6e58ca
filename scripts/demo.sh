#!/usr/bin/env bash
# The wisp demo. For now (foundation stage) it builds everything and shows what
# exists; later stages turn it into the full cold-start demo.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${WISP_BUILD_DIR:-build}

[ "$(id -u)" -eq 0 ] || { echo "demo.sh: run as root" >&2; exit 1; }
cmake -S . -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$BUILD" >/dev/null

echo "built:"
for exe in wispd wisp wisp-vmm; do
  printf '  %-10s %s\n' "$exe" "$("$BUILD/bin/$exe" --version)"
done
echo "guest images:"
for img in "$BUILD"/images/*.elf; do
  printf '  %-24s %8d bytes\n' "$(basename "$img")" "$(stat -c %s "$img")"
done
