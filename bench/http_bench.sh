#!/usr/bin/env bash
# Side-by-side HTTP benchmark (not run by CI). One run prints one table.
#
# Starts, on this machine and on loopback ports:
#   - bench's bare Boost.Beast keep-alive server (fixed JSON body),
#   - sil-server with its defaults (plus $SIL_ARGS),
#   - the same with audits off (--audit.rate=0),
#   - the same with the read path off (--cache.read-path=false: every hit
#     asks the cache owner, one actor hop there and back),
#   - sil-server with the tiny `seed` preset (a hit must still beat a miss),
# and drives them with the same wrk load (bench/wrk/predict.lua): hits only
# (one input, exact reuse) at CONNECTIONS, then misses only (a unique prefix
# per request) at CONNECTIONS and at MISS_CONNECTIONS. It also runs
# sil_core_bench's batch-32 encode on one core for the miss reference.
#
#   bench/http_bench.sh [SECONDS=10] [CONNECTIONS=10] [WRK_THREADS=1] [MISS_CONNECTIONS=64]
#   SIL_ARGS="--scheduler.policy=sharing" bench/http_bench.sh
#   BASELINE_SERVER=/path/to/other/sil-server bench/http_bench.sh
#     adds that binary (another commit's build) with its defaults: hits and
#     misses under the same loads, for a before/after in one run.
#
# Needs a release build (cmake --preset release && cmake --build --preset
# release) and wrk (scripts/setup.sh installs it).
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-10}
conns=${2:-10}
wrk_threads=${3:-1}
miss_conns=${4:-64}
build=${BUILD_DIR:-build}
lua=bench/wrk/predict.lua

for bin in "$build/sil-server" "$build/bench/sil_bare_server" "$build/bench/sil_core_bench"; do
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

stop() { kill "$(cat "$tmp/$1.pid")" 2>/dev/null || true; }

# run PORT MODE [CONNECTIONS] : prints "req/s p50_us p99_us errors"
run() {
  MODE=$2 wrk -t"$wrk_threads" -c"${3:-$conns}" -d"${secs}s" -s "$lua" "http://127.0.0.1:$1" \
    | sed -n 's/^RESULT //p'
}

warm() { MODE=hit wrk -t1 -c1 -d1s -s "$lua" "http://127.0.0.1:$1" >/dev/null; }

stats() { curl -s "http://127.0.0.1:$1/stats"; }

# The miss reference first, alone on the machine: one core, batches of 32.
"$build/bench/sil_core_bench" --benchmark_filter='bm_encode/base/32$' \
  --benchmark_out="$tmp/core.json" --benchmark_out_format=json >/dev/null 2>&1
read -r core_items core_gflops <<<"$(python3 -c '
import json, sys
b = json.load(open(sys.argv[1]))["benchmarks"][0]
print("{:.0f} {:.1f}".format(b["items_per_second"], b["GFLOP"]))' "$tmp/core.json")"

# shellcheck disable=SC2086 # SIL_ARGS is a list of flags
{
  bare_port=$(start bare "$build/bench/sil_bare_server" 0 2)
  sil_port=$(start sil "$build/sil-server" --port=0 ${SIL_ARGS:-})
  quiet_port=$(start quiet "$build/sil-server" --port=0 ${SIL_ARGS:-} --audit.rate=0)
  hop_port=$(start hop "$build/sil-server" --port=0 ${SIL_ARGS:-} --cache.read-path=false)
}
for p in "$bare_port" "$sil_port" "$quiet_port" "$hop_port"; do warm "$p"; done

read -r bare_rps bare_p50 bare_p99 bare_err <<<"$(run "$bare_port" hit)"
read -r hit_rps hit_p50 hit_p99 hit_err <<<"$(run "$sil_port" hit)"
read -r quiet_rps quiet_p50 quiet_p99 quiet_err <<<"$(run "$quiet_port" hit)"
read -r hop_rps hop_p50 hop_p99 hop_err <<<"$(run "$hop_port" hit)"
if [[ -n ${BASELINE_SERVER:-} ]]; then
  base_port=$(start base "$BASELINE_SERVER" --port=0)
  warm "$base_port"
  read -r base_rps base_p50 base_p99 base_err <<<"$(run "$base_port" hit)"
  read -r basem_rps basem_p50 basem_p99 basem_err <<<"$(run "$base_port" miss)"
  read -r basem64_rps basem64_p50 basem64_p99 basem64_err <<<"$(run "$base_port" miss "$miss_conns")"
  stop base
fi
stop bare
stop quiet
stop hop
hit_stats=$(stats "$sil_port")
read -r miss_rps miss_p50 miss_p99 miss_err <<<"$(run "$sil_port" miss)"
miss_stats=$(stats "$sil_port")
read -r miss64_rps miss64_p50 miss64_p99 miss64_err <<<"$(run "$sil_port" miss "$miss_conns")"
miss64_stats=$(stats "$sil_port")
stop sil

# shellcheck disable=SC2086
seed_port=$(start seed "$build/sil-server" --port=0 ${SIL_ARGS:-} --model.preset=seed)
warm "$seed_port"
read -r seed_hit_rps seed_hit_p50 seed_hit_p99 seed_hit_err <<<"$(run "$seed_port" hit)"
read -r seed_miss_rps seed_miss_p50 seed_miss_p99 seed_miss_err <<<"$(run "$seed_port" miss)"
stop seed

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", (b > 0 ? a / b : 0) }'; }
ms() { awk -v us="$1" 'BEGIN { printf "%.3f", us / 1000 }'; }
row() { echo "| $1 | $2 | $(ms "$3") | $(ms "$4") | $5 |"; }

echo "wrk -t$wrk_threads -c$conns -d${secs}s on $(nproc) cores; sil-server args: ${SIL_ARGS:-(defaults)}"
echo
echo "| server | req/s | p50 ms | p99 ms | errors |"
echo "|---|---|---|---|---|"
row "bare Beast, fixed body" "$bare_rps" "$bare_p50" "$bare_p99" "$bare_err"
row "sil-server, hits, defaults" "$hit_rps" "$hit_p50" "$hit_p99" "$hit_err"
row "sil-server, hits, audits off" "$quiet_rps" "$quiet_p50" "$quiet_p99" "$quiet_err"
row "sil-server, hits, read path off (actor hop)" "$hop_rps" "$hop_p50" "$hop_p99" "$hop_err"
row "sil-server, misses, c=$conns" "$miss_rps" "$miss_p50" "$miss_p99" "$miss_err"
row "sil-server, misses, c=$miss_conns" "$miss64_rps" "$miss64_p50" "$miss64_p99" "$miss64_err"
row "sil-server --model.preset=seed, hits" "$seed_hit_rps" "$seed_hit_p50" "$seed_hit_p99" \
  "$seed_hit_err"
row "sil-server --model.preset=seed, misses" "$seed_miss_rps" "$seed_miss_p50" "$seed_miss_p99" \
  "$seed_miss_err"
if [[ -n ${BASELINE_SERVER:-} ]]; then
  row "baseline ($BASELINE_SERVER), hits" "$base_rps" "$base_p50" "$base_p99" "$base_err"
  row "baseline, misses, c=$conns" "$basem_rps" "$basem_p50" "$basem_p99" "$basem_err"
  row "baseline, misses, c=$miss_conns" "$basem64_rps" "$basem64_p50" "$basem64_p99" "$basem64_err"
fi
echo
if [[ -n ${BASELINE_SERVER:-} ]]; then
  echo "- baseline hits / bare: $(ratio "$base_rps" "$bare_rps"); this build's hits / baseline's: $(ratio "$hit_rps" "$base_rps")"
fi
echo "- hit / bare throughput, defaults: $(ratio "$hit_rps" "$bare_rps") (goal >= 0.8)"
echo "- hit / bare throughput, audits off: $(ratio "$quiet_rps" "$bare_rps") (goal >= 0.85)"
echo "- hits with audits / audits off: $(ratio "$hit_rps" "$quiet_rps")"
echo "- hits, read path / actor hop: $(ratio "$hit_rps" "$hop_rps")"
echo "- misses / sil_core_bench base batch-32 items/s on one core ($core_items/s, $core_gflops GFLOP/s):" \
  "c=$conns $(ratio "$miss_rps" "$core_items") (goal >= 0.5), c=$miss_conns $(ratio "$miss64_rps" "$core_items") (goal >= 1.0)"
echo "- seed preset: hit / miss throughput $(ratio "$seed_hit_rps" "$seed_miss_rps") (a hit must beat a miss)"
python3 - "$hit_stats" "$miss_stats" "$miss64_stats" "$secs" "$conns" "$miss_conns" <<'EOF'
import json, sys
hit, miss, miss64 = (json.loads(x) for x in sys.argv[1:4])
secs, conns, miss_conns = float(sys.argv[4]), sys.argv[5], sys.argv[6]
c, h = hit["cache"], hit["latency_hit"]
print("- hits (defaults): cache hits={} of which read path={}; access batches={} replayed={} "
      "dropped={}; server-side hit p50 {:.4f} ms".format(
          c["hits"], c.get("read_path_hits", 0), c.get("access_batches", 0),
          c.get("accesses_applied", 0), c.get("accesses_dropped", 0), h["p50"]))
m = miss["latency_miss"]
print("- server-side p50 (from /stats): hit {:.4f} ms, miss {:.4f} ms (c={}): a miss costs {:.0f}x "
      "a hit".format(h["p50"], m["p50"], conns, m["p50"] / h["p50"] if h["p50"] > 0 else 0))
d = hit["divergence"]
print("- audits (defaults): {} run, {} skipped; served wrong-rate {}/{}".format(
    d["audits"], d["audits_skipped"], hit["risk"]["served"]["wrong"],
    hit["risk"]["served"]["audits"]))
def encoder(before, after, label):
    e0, e1 = before["encoder"], after["encoder"]
    items = e1["items"] - e0["items"]
    batches = e1["batches"] - e0["batches"]
    busy = e1["busy_seconds"] - e0["busy_seconds"]
    gflop = e1["gflop"] - e0["gflop"]
    print("- misses {}: {} encodes in {} batches (mean {:.1f}, largest so far {}); encoder "
          "{:.1f} GFLOP/s while computing, {:.1f} GFLOP/s over the run ({:.2f} cores busy)".format(
              label, items, batches, items / batches if batches else 0, e1["largest_batch"],
              gflop / busy if busy > 0 else 0, gflop / secs, busy / secs))
encoder(hit, miss, "c=" + conns)
encoder(miss, miss64, "c=" + miss_conns)
EOF
