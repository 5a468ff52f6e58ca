#!/usr/bin/env bash
# The wisp demo: two services at zero, woken by their first SYN.
#
#   scripts/setup.sh && scripts/demo.sh
#
# Builds what it needs (first run: a few minutes), then on this host:
#   - a client network namespace behind a veth pair (198.19.254.0/30); the host end
#     is wispd's uplink and its address the services' VIP,
#   - a private wispd (state, runtime and bpffs directories of its own),
#   - `hello` and `slowstart` (2 s of initialisation before it is ready),
# and shows, with timings measured by curl in the client namespace: a cold request
# from zero to each, a warm request, the return to zero after the idle timeout, and
# a second cold request. Everything it created is removed when it ends, also on
# Ctrl-C or an error.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
BUILD=${WISP_BUILD_DIR:-build}

NS=wisp-demo
UPLINK=wdemo0
PEER=wdemo1
HOST_IP=198.19.254.1
CLIENT_IP=198.19.254.2
IDLE=1s

die() { printf 'demo: %s\n' "$*" >&2; exit 1; }
[ "$(id -u)" -eq 0 ] || die "run as root (it creates a namespace, a veth and BPF pins)"
for tool in cmake ninja ip curl ethtool bpftool; do
  command -v "$tool" >/dev/null || die "$tool is missing: run scripts/setup.sh first"
done

TMP=
WISPD_PID=
BPFFS=/sys/fs/bpf/wisp-demo-$$

monitors_of() {  # pids of the wisp-vmm monitors of our runtime directory
  [ -n "$TMP" ] || return 0
  local p
  for p in /proc/[0-9]*; do
    { tr '\0' ' ' <"$p/cmdline"; } 2>/dev/null | grep -q -- "$TMP/run/monitors/" && echo "${p#/proc/}"
  done
  return 0
}

cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  if [ -n "$WISPD_PID" ] && kill -0 "$WISPD_PID" 2>/dev/null; then
    kill -TERM "$WISPD_PID" 2>/dev/null || true
    wait "$WISPD_PID" 2>/dev/null || true
  fi
  # Monitors outlive wispd by design (a restarted wispd re-adopts them): ours go.
  local pid
  for pid in $(monitors_of); do kill -KILL "$pid" 2>/dev/null || true; done
  ip link del "$UPLINK" 2>/dev/null || true
  ip netns del "$NS" 2>/dev/null || true
  rm -rf "$BPFFS"
  if [ $rc -eq 130 ] || [ $rc -eq 143 ]; then
    echo "demo: interrupted; everything it created is removed" >&2
  elif [ $rc -ne 0 ] && [ -n "$TMP" ] && [ -f "$TMP/wispd.log" ]; then
    echo "demo: failed; the last lines of wispd's log:" >&2
    tail -n 15 "$TMP/wispd.log" >&2 || true
  fi
  [ -n "$TMP" ] && rm -rf "$TMP"
  exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ---- build ---------------------------------------------------------------------
if [ ! -f "$BUILD/build.ninja" ]; then
  echo "configuring the build in $BUILD/ ..."
  cmake -S . -B "$BUILD" -G Ninja >/dev/null
fi
echo "building wispd, wisp, wisp-vmm and the guest images (first run: a few minutes) ..."
cmake --build "$BUILD" --target wispd wisp wisp-vmm hello slowstart >/dev/null
WISPD=$ROOT/$BUILD/bin/wispd
WISP_BIN=$ROOT/$BUILD/bin/wisp

# ---- network -------------------------------------------------------------------
# Leftovers of a demo that was killed hard.
ip link del "$UPLINK" 2>/dev/null || true
ip netns del "$NS" 2>/dev/null || true
TMP=$(mktemp -d /tmp/wisp-demo.XXXXXX)
ip netns add "$NS"
ip link add "$UPLINK" type veth peer name "$PEER"
ip link set "$PEER" netns "$NS"
ip addr add "$HOST_IP/30" dev "$UPLINK"
ip link set "$UPLINK" up
ip -n "$NS" addr add "$CLIENT_IP/30" dev "$PEER"
ip -n "$NS" link set "$PEER" up
ip -n "$NS" link set lo up
# A veth would hand the guest partial TCP checksums; a real NIC never does.
ip netns exec "$NS" ethtool -K "$PEER" tx off >/dev/null

# ---- wispd ---------------------------------------------------------------------
"$WISPD" --uplink "$UPLINK" --state-dir "$TMP/state" --runtime-dir "$TMP/run" \
  --bpffs-root "$BPFFS" --monitor-pool-size 2 >"$TMP/wispd.log" 2>&1 &
WISPD_PID=$!
wisp() { "$WISP_BIN" --socket "$TMP/run/wispd.sock" "$@"; }
for _ in $(seq 100); do
  wisp status >/dev/null 2>&1 && break
  kill -0 "$WISPD_PID" 2>/dev/null || die "wispd exited"
  sleep 0.05
done
wisp status >/dev/null || die "wispd does not answer"

field() {  # field SERVICE PYTHON-EXPRESSION-ON-d
  wisp service inspect "$1" -o json | python3 -c "import json,sys; d=json.load(sys.stdin); print($2)"
}
now_ms() { date +%s%3N; }

echo
echo "wisp demo"
echo "  client namespace $NS ($CLIENT_IP) --veth--> uplink $UPLINK ($HOST_IP) on this host"
echo "  wispd pid $WISPD_PID: $(wisp status | sed -n 's/^Data plane: *//p')"
echo

deploy() {  # deploy NAME IMAGE PORT CMDLINE WHAT
  local start; start=$(now_ms)
  printf '  %-10s %-44s ' "$1" "$5"
  wisp service create "$1" --image "$ROOT/$BUILD/images/$2.elf" -p "$3" --cmdline "$4" \
    --idle-timeout "$IDLE" >/dev/null
  for _ in $(seq 200); do
    [ "$(field "$1" "d['state']")" = standby ] && break
    sleep 0.05
  done
  [ "$(field "$1" "d['state']")" = standby ] || die "$1 did not reach standby: $(field "$1" d)"
  printf 'golden snapshot after %5.2f s, now at zero\n' "$(echo "($(now_ms) - $start) / 1000" | bc -l)"
}

echo "deploy: boot once, snapshot at ready, stop"
deploy hello hello 8080 "port=8080" "(answers 'hello from wisp')"
deploy slowstart slowstart 8081 "port=8081 init_ms=2000" "(2 s of initialisation before ready)"
echo

request() {  # request NAME PORT LABEL
  local out code connect total body
  out=$(ip netns exec "$NS" curl -s -m 5 -w '\n%{http_code} %{time_connect} %{time_total}' \
        "http://$HOST_IP:$2/")
  body=$(printf '%s' "$out" | head -n -1)
  read -r code connect total <<<"$(printf '%s' "$out" | tail -n 1)"
  local note=""
  case "$1" in
    hello) note="body: $(printf '%s' "$body" | tr -d '\n')" ;;
    slowstart) note=$(printf '%s' "$body" | python3 -c \
      "import json,sys; d=json.load(sys.stdin); print(f\"init_runs={d['init_runs']} restore_count={d['restore_count']} (init not re-run)\")") ;;
  esac
  printf '  %-10s %-18s %3s  connect %7.2f ms  total %7.2f ms  %s\n' "$1" "$3" "$code" \
    "$(echo "$connect * 1000" | bc -l)" "$(echo "$total * 1000" | bc -l)" "$note"
}

wake_detail() {
  local w
  w=$(field "$1" "d['last_wake_latency_ms']")
  printf '  %-10s %-18s      wispd: SYN captured -> replica READY in the maps in %.2f ms\n' "" "" "$w"
}

echo "requests from the client (curl's own timings)"
request hello 8080 "cold, from zero"
wake_detail hello
request hello 8080 "warm"
request slowstart 8081 "cold, from zero"
wake_detail slowstart
request slowstart 8081 "warm"
echo

echo "idle: no packet either way for $IDLE -> out of the data plane, monitor stopped"
for name in hello slowstart; do
  for _ in $(seq 200); do
    [ "$(field "$name" "len(d['replicas'])")" = 0 ] && break
    sleep 0.02
  done
  # wispd's journal: when it saw the replica idle (from the data plane's stamps).
  idle=$(wisp events --service "$name" -n 20 -o json | python3 -c \
    "import json,sys; e=[x for x in json.load(sys.stdin)['events'] if x['kind']=='idle']; print(e[0]['message'] if e else '?')")
  printf '  %-10s %s; now %s replicas, state %s\n' "$name" "$idle" \
    "$(field "$name" "len(d['replicas'])")" "$(field "$name" "d['state']")"
done
printf '  %-10s wisp-vmm processes left: %s (the idle pre-forked pool)\n' "" "$(monitors_of | wc -l)"
echo

echo "second cold requests"
request hello 8080 "cold, from zero"
request slowstart 8081 "cold, from zero"
echo
echo "metrics: $(wisp status | sed -n 's/^Services: *//p') services; wakes: $(curl -s --unix-socket "$TMP/run/wispd.sock" http://wisp/metrics | awk '/^wisp_wakes_total\{/ {s += $2} END {print s}')"
echo "cleaning up (wispd, monitors, namespace, veth, pins) ..."
