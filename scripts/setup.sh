#!/usr/bin/env bash
# Install everything wisp needs to build, test, benchmark and run its demo on
# Debian bookworm. Idempotent: a second run checks and exits in seconds.
#
#   * Debian packages (the list below, each one used by the build, tests or benchmarks)
#   * lwIP 2.1.3 from Debian's *source* package, unpacked into a cache outside the
#     tree ($WISP_CACHE_DIR, default ~/.cache/wisp) where CMake finds it
#   * bpffs mounted on /sys/fs/bpf
set -euo pipefail

PACKAGES=(
  # toolchains: host C++20, BPF objects and skeletons, guest images, build driver
  cmake ninja-build pkg-config clang llvm lld libclang-rt-14-dev bpftool
  # libraries (docs/dependencies.md says why each one is here)
  libbpf-dev libxdp-dev libelf-dev zlib1g-dev
  libcli11-dev libspdlog-dev libfmt-dev nlohmann-json3-dev libcpp-httplib-dev
  libsqlite3-dev libsystemd-dev libseccomp-dev libxxhash-dev libtomlplusplus-dev
  libgtest-dev libgmock-dev
  # wispd: SHA-256 of guest images, to share golden snapshots (docs/density.md)
  libssl-dev
  # runtime tools used by tests, benchmarks and the demo
  iproute2 xdp-tools curl wrk systemd python3 python3-matplotlib
  # clients on a veth of the same host send partial TCP checksums (TX offload):
  # e2e tests, the demo and the wake benchmark turn that off with ethtool
  ethtool
  # fetching and unpacking the lwIP source package
  dpkg-dev xz-utils
)
LWIP_VERSION=2.1.3
CACHE_DIR=${WISP_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/wisp}
LWIP_DIR=$CACHE_DIR/lwip-$LWIP_VERSION
SRC_LIST=/etc/apt/sources.list.d/wisp-deb-src.sources

say() { printf 'setup: %s\n' "$*"; }
die() { printf 'setup: error: %s\n' "$*" >&2; exit 1; }

[ "$(id -u)" -eq 0 ] || die "run as root (it installs packages and mounts bpffs)"
command -v apt-get >/dev/null || die "needs a Debian system (apt-get not found)"

missing_packages() {
  local p
  for p in "${PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}\n' "$p" 2>/dev/null | grep -q '^install ok installed$' \
      || printf '%s\n' "$p"
  done
}

# The archive this machine already uses, as configured in its apt sources: the
# deb-src entry must point at the same place (no other host is reachable).
configured_archive() {
  local f uri
  for f in /etc/apt/sources.list.d/*.sources; do
    [ -e "$f" ] || continue
    [ "$f" = "$SRC_LIST" ] && continue
    uri=$(awk 'BEGIN{IGNORECASE=1}
               /^Types:/ {deb = ($0 ~ /(^|[ \t])deb([ \t]|$)/)}
               /^URIs:/ && deb {print $2; exit}
               /^$/ {deb=0}' "$f")
    if [ -n "$uri" ] && grep -qiE '^Suites:.*bookworm([ \t]|$)' "$f"; then
      echo "$uri"; return 0
    fi
  done
  if [ -f /etc/apt/sources.list ]; then
    awk '$1=="deb" && $0 ~ / bookworm / {for(i=2;i<=NF;i++) if ($i ~ /^[a-z]+:\/\//) {print $i; exit}}' \
      /etc/apt/sources.list
  fi
}

updated=0
apt_update_once() {
  if [ $updated -eq 0 ]; then
    say "apt-get update"
    apt-get update -qq
    updated=1
  fi
}

# 1. packages -------------------------------------------------------------------
mapfile -t missing < <(missing_packages)
if [ ${#missing[@]} -gt 0 ]; then
  apt_update_once
  say "installing ${missing[*]}"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# 2. lwIP source, from Debian's source package ------------------------------------
if [ ! -f "$LWIP_DIR/.wisp-complete" ]; then
  if [ ! -f "$SRC_LIST" ]; then
    archive=$(configured_archive)
    [ -n "$archive" ] || die "no bookworm 'deb' archive configured in /etc/apt; cannot add deb-src"
    say "adding deb-src for the configured archive ($SRC_LIST)"
    cat >"$SRC_LIST" <<SRC
Types: deb-src
URIs: $archive
Suites: bookworm
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SRC
    updated=0
  fi
  apt_update_once
  work=$(mktemp -d)
  trap 'rm -rf "$work"' EXIT
  say "fetching the lwip source package"
  (cd "$work" && apt-get source --download-only -qq lwip >/dev/null 2>&1) \
    || die "apt-get source lwip failed"
  dsc=$(ls "$work"/lwip_"$LWIP_VERSION"*.dsc 2>/dev/null | head -n1)
  [ -n "$dsc" ] || die "the archive's lwip source package is not version $LWIP_VERSION"
  rm -rf "$LWIP_DIR.tmp"
  mkdir -p "$CACHE_DIR"
  dpkg-source --no-check -x "$dsc" "$LWIP_DIR.tmp" >/dev/null
  [ -f "$LWIP_DIR.tmp/src/core/tcp.c" ] || die "unexpected lwip source layout in $dsc"
  touch "$LWIP_DIR.tmp/.wisp-complete"
  rm -rf "$LWIP_DIR"
  mv "$LWIP_DIR.tmp" "$LWIP_DIR"
  say "lwIP $LWIP_VERSION unpacked in $LWIP_DIR"
fi

# 3. bpffs ----------------------------------------------------------------------
if ! mount | grep -q ' /sys/fs/bpf type bpf'; then
  say "mounting bpffs on /sys/fs/bpf"
  mkdir -p /sys/fs/bpf
  mount -t bpf bpf /sys/fs/bpf
fi

# 4. capabilities the tests need (reported, not fixed: the tests fail loudly) ---------
for dev in /dev/kvm /dev/net/tun; do
  [ -c "$dev" ] || say "warning: $dev is missing; vm/e2e tests will fail"
done
[ -f /sys/kernel/btf/vmlinux ] || say "warning: no /sys/kernel/btf/vmlinux; bpf tests will fail"
exit 0
