#!/usr/bin/env bash
# Where a hit's time goes (not run by CI; needs perf and wrk).
#
# Starts SERVER on a loopback port (sil-server: --port=P ARGS...; the bare
# Beast server: P 2), drives it with the hit load of bench/wrk/predict.lua
# (wrk -c10, one input, exact reuse) and, while the load runs, measures:
#   - perf stat: context switches and CPU time per request (4 s);
#   - perf record -g: the share of samples per binary/library and the top
#     symbols (3 s).
#
#   bench/perf_hit.sh build/sil-server [sil-server flags...]
#   bench/perf_hit.sh build/bench/sil_bare_server
set -euo pipefail
cd "$(dirname "$0")/.."
server=${1:?usage: bench/perf_hit.sh SERVER [ARGS...]}
shift
command -v perf >/dev/null || { echo "perf not found (apt install linux-perf)" >&2; exit 1; }
command -v wrk >/dev/null || { echo "wrk not found: run scripts/setup.sh" >&2; exit 1; }
port=$((20000 + RANDOM % 20000))
tmp=$(mktemp -d)
if [[ $(basename "$server") == sil_bare_server ]]; then
  "$server" "$port" 2 >/dev/null 2>&1 &
else
  "$server" --port="$port" "$@" >/dev/null 2>&1 &
fi
pid=$!
trap 'kill $pid 2>/dev/null || true; rm -rf "$tmp"' EXIT
for _ in $(seq 100); do
  curl -s -o /dev/null "http://127.0.0.1:$port/" 2>/dev/null && break
  sleep 0.1
done
lua=bench/wrk/predict.lua
MODE=hit wrk -t1 -c10 -d1s -s "$lua" "http://127.0.0.1:$port" >/dev/null
MODE=hit wrk -t1 -c10 -d9s -s "$lua" "http://127.0.0.1:$port" | sed -n 's/^RESULT //p' >"$tmp/wrk" &
load=$!
sleep 1
perf stat -e context-switches,task-clock -x, -p "$pid" -o "$tmp/stat" -- sleep 4
perf record -F 999 -g -p "$pid" -o "$tmp/perf.data" -- sleep 3 >/dev/null 2>&1
wait "$load"
read -r rps _ <<<"$(cat "$tmp/wrk")"
awk -F, -v rps="$rps" '
  $3 == "context-switches" { cs = $1 }
  $3 == "task-clock" { ms = $1 }
  END {
    n = rps * 4
    printf "req/s %.0f (whole run, under perf); per request: %.2f context switches, %.1f us CPU\n",
      rps, cs / n, ms * 1000 / n
  }' "$tmp/stat"
echo "share of samples by binary:"
perf report -i "$tmp/perf.data" --no-children --sort dso --stdio -g none 2>/dev/null \
  | grep -E '^ +[0-9]' | head -8
echo "top symbols:"
perf report -i "$tmp/perf.data" --no-children --sort symbol --stdio -g none 2>/dev/null \
  | grep -E '^ +[0-9]' | head -15 | cut -c1-140
