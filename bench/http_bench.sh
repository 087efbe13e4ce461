#!/usr/bin/env bash
# Side-by-side HTTP benchmark (not run by CI).
#
# Starts, on this machine and on loopback ports:
#   - bench's bare Boost.Beast keep-alive server (fixed JSON body), and
#   - sil-server with its defaults (plus $SIL_ARGS), and
#   - the same sil-server with audits off (--audit.rate=0), to show what
#     audit sampling costs on a hit-only load,
# drives them with the same wrk load, first hits only (one input, exact
# reuse), then misses only (a unique prefix per request), and prints one
# table.
#
#   bench/http_bench.sh [SECONDS=10] [CONNECTIONS=10] [WRK_THREADS=1]
#   SIL_ARGS="--scheduler.policy=sharing" bench/http_bench.sh
#
# Needs a release build (cmake --preset release && cmake --build --preset
# release) and wrk (scripts/setup.sh installs it).
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-10}
conns=${2:-10}
wrk_threads=${3:-1}
build=${BUILD_DIR:-build}
lua=bench/wrk/predict.lua

for bin in "$build/sil-server" "$build/bench/sil_bare_server"; do
  [[ -x $bin ]] || { echo "missing $bin: build with cmake --preset release first" >&2; exit 1; }
done
command -v wrk >/dev/null || { echo "wrk not found: run scripts/setup.sh" >&2; exit 1; }

tmp=$(mktemp -d)
cleanup() {
  # start() runs in a command substitution (a subshell): it records each
  # server's pid in a file, not in a variable of this shell.
  for f in "$tmp"/*.pid; do [[ -e $f ]] && kill "$(cat "$f")" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$tmp"
}
trap cleanup EXIT

# start NAME CMD... : runs CMD in the background and echoes its port.
start() {
  local name=$1
  shift
  "$@" >"$tmp/$name.out" 2>"$tmp/$name.err" &
  echo $! >"$tmp/$name.pid"
  for _ in $(seq 100); do
    if grep -q '^listening on ' "$tmp/$name.out" 2>/dev/null; then
      sed -n 's/^listening on .*:\([0-9]*\)$/\1/p' "$tmp/$name.out"
      return
    fi
    sleep 0.1
  done
  echo "$name did not start:" >&2
  cat "$tmp/$name.err" >&2
  exit 1
}

# run PORT MODE : prints "req/s p50_us p99_us errors"
run() {
  MODE=$2 wrk -t"$wrk_threads" -c"$conns" -d"${secs}s" -s "$lua" "http://127.0.0.1:$1" \
    | sed -n 's/^RESULT //p'
}

bare_port=$(start bare "$build/bench/sil_bare_server" 0 2)
# shellcheck disable=SC2086 # SIL_ARGS is a list of flags
sil_port=$(start sil "$build/sil-server" --port=0 ${SIL_ARGS:-})
# shellcheck disable=SC2086
quiet_port=$(start quiet "$build/sil-server" --port=0 ${SIL_ARGS:-} --audit.rate=0)

# Warm up: the first request of each kind populates caches and code paths.
MODE=hit wrk -t1 -c1 -d1s -s "$lua" "http://127.0.0.1:$bare_port" >/dev/null
MODE=hit wrk -t1 -c1 -d1s -s "$lua" "http://127.0.0.1:$sil_port" >/dev/null
MODE=hit wrk -t1 -c1 -d1s -s "$lua" "http://127.0.0.1:$quiet_port" >/dev/null

read -r bare_rps bare_p50 bare_p99 bare_err <<<"$(run "$bare_port" hit)"
read -r hit_rps hit_p50 hit_p99 hit_err <<<"$(run "$sil_port" hit)"
read -r quiet_rps quiet_p50 quiet_p99 quiet_err <<<"$(run "$quiet_port" hit)"
kill "$(cat "$tmp/quiet.pid")" 2>/dev/null || true # the audits-off server is done
read -r miss_rps miss_p50 miss_p99 miss_err <<<"$(run "$sil_port" miss)"
stats=$(curl -s "http://127.0.0.1:$sil_port/stats")

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", (b > 0 ? a / b : 0) }'; }
ms() { awk -v us="$1" 'BEGIN { printf "%.3f", us / 1000 }'; }

echo "wrk -t$wrk_threads -c$conns -d${secs}s on $(nproc) cores; sil-server args: ${SIL_ARGS:-(defaults)}"
echo
echo "| server | req/s | p50 ms | p99 ms | errors |"
echo "|---|---|---|---|---|"
echo "| bare Beast, fixed body | $bare_rps | $(ms "$bare_p50") | $(ms "$bare_p99") | $bare_err |"
echo "| sil-server, hits only | $hit_rps | $(ms "$hit_p50") | $(ms "$hit_p99") | $hit_err |"
echo "| sil-server, hits only, audits off | $quiet_rps | $(ms "$quiet_p50") | $(ms "$quiet_p99") | $quiet_err |"
echo "| sil-server, misses only | $miss_rps | $(ms "$miss_p50") | $(ms "$miss_p99") | $miss_err |"
echo
echo "- hit / bare throughput: $(ratio "$hit_rps" "$bare_rps") (goal >= 0.8)"
echo "- hits with audits / audits off: $(ratio "$hit_rps" "$quiet_rps") (goal >= 0.9)"
echo "- miss / hit throughput: $(ratio "$miss_rps" "$hit_rps")"
echo "- miss / hit p50 latency: $(ratio "$miss_p50" "$hit_p50")x"
echo "$stats" | python3 -c '
import json, sys
s = json.load(sys.stdin)
c, e, h, m = s["cache"], s["encoder"], s["latency_hit"], s["latency_miss"]
ratio = m["p50"] / h["p50"] if h["p50"] > 0 else 0
print("- server-side latency (from /stats, last {} requests of each kind): hit p50 {:.4f} ms, "
      "miss p50 {:.4f} ms: a miss costs {:.0f}x a hit".format(h["window"], h["p50"], m["p50"], ratio))
print("- cache: hits={} misses={} hit_rate={:.3f}; encoder: batches={} items={} largest_batch={}".format(
    c["hits"], c["misses"], c["hit_rate"], e["batches"], e["items"], e["largest_batch"]))
d = s["divergence"]
print("- audits (defaults): {} run, {} skipped; served wrong-rate {}/{}".format(
    d["audits"], d["audits_skipped"], s["risk"]["served"]["wrong"], s["risk"]["served"]["audits"]))'
