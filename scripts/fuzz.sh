#!/usr/bin/env bash
# Builds the libFuzzer targets (the `fuzz` preset: clang-14, ASan + UBSan,
# build-fuzz/) and runs each of them from its seed corpus.
#
# Usage: scripts/fuzz.sh [RUNS | --minutes N] [--report]
#   RUNS         executions per target (default 100000)
#   --minutes N  run each target for N minutes instead (the longer run)
#   --report     also write the results into reports/reliability.md: its
#                "## Fuzzing" section, between the <!-- fuzz:begin --> and
#                <!-- fuzz:end --> markers (added if missing; the rest of the
#                file, owned by scripts/reliability.py, is left alone)
#
# The targets run side by side (SIL_FUZZ_JOBS, default 2); SIL_FUZZ_ARGS
# adds libFuzzer flags (e.g. -dict=FILE). Each target mutates a working copy
# of its seeds (build-fuzz/fuzz/<target>/corpus; the seeds in
# tests/fuzz/corpus/ are never modified) and writes any crashing input to
# build-fuzz/fuzz/<target>/artifacts/. Prints per target: runs, exec/s (over
# the wall time, start-up included), coverage (edges and features), crashes,
# seconds. Exits 1 if any target crashed (or failed to run).
set -euo pipefail
cd "$(dirname "$0")/.."

runs=100000
minutes=""
report=false
while (($#)); do
  case "$1" in
    --minutes) minutes="$2"; shift 2 ;;
    --report) report=true; shift ;;
    -h|--help) sed -n '2,21p' "$0"; exit 0 ;;
    *[!0-9]*|"") echo "fuzz: unknown argument '$1'" >&2; exit 2 ;;
    *) runs="$1"; shift ;;
  esac
done

targets=(fuzz_decode_predict fuzz_http_request)
jobs=${SIL_FUZZ_JOBS:-2}

cmake --preset fuzz >/dev/null
cmake --build --preset fuzz -j "${SIL_BUILD_JOBS:-2}"

if [[ -n "$minutes" ]]; then
  limit=(-max_total_time=$((minutes * 60)))
  mode="$minutes min"
else
  limit=(-runs="$runs")
  mode="$runs runs"
fi

out=build-fuzz/fuzz
run_target() {
  local t=$1 dir=$out/$1
  rm -rf "$dir"
  mkdir -p "$dir/corpus" "$dir/artifacts"
  local start end rc=0
  start=$(date +%s.%N)
  # -timeout: an input taking 10 s is a hang, reported as a crash.
  # -max_len: the largest seed is ~9 KB (64 rows); room to grow past it.
  build-fuzz/tests/fuzz/"$t" "${limit[@]}" -timeout=10 -max_len=16384 -print_final_stats=1 \
    -artifact_prefix="$dir/artifacts/" ${SIL_FUZZ_ARGS:-} "$dir/corpus" "tests/fuzz/corpus/$t" \
    >"$dir/log" 2>&1 || rc=$?
  end=$(date +%s.%N)
  echo "$rc $(awk -v a="$start" -v b="$end" 'BEGIN { printf "%.1f", b - a }')" >"$dir/status"
}

echo "fuzz: $mode per target, up to $jobs targets at a time; logs in $out/<target>/log"
pids=()
for t in "${targets[@]}"; do
  run_target "$t" &
  pids+=($!)
  while (($(jobs -rp | wc -l) >= jobs)); do sleep 1; done
done
wait "${pids[@]}" || true

failed=0
rows=()
printf '%-22s %10s %8s %8s %8s %8s %8s\n' target runs exec/s cov ft crashes seconds
for t in "${targets[@]}"; do
  dir=$out/$t
  read -r rc secs <"$dir/status"
  log=$dir/log
  runs_done=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  speed=$(awk -v n="${runs_done:-0}" -v s="$secs" 'BEGIN { if (s > 0) printf "%d", n / s }')
  secs=$(printf '%.0f' "$secs")
  # The last status line ("#N DONE cov: X ft: Y ...", or the last one
  # printed before a crash).
  cov=$(grep -oE 'cov: [0-9]+' "$log" | tail -1 | cut -d' ' -f2)
  ft=$(grep -oE 'ft: [0-9]+' "$log" | tail -1 | cut -d' ' -f2)
  crashes=$(find "$dir/artifacts" -type f | wc -l)
  if ((rc != 0 && crashes == 0)); then
    crashes=1 # died without writing an artifact (e.g. out of memory)
  fi
  printf '%-22s %10s %8s %8s %8s %8s %8s\n' "$t" "${runs_done:-?}" "${speed:-?}" "${cov:-?}" \
    "${ft:-?}" "$crashes" "$secs"
  rows+=("| \`$t\` | ${runs_done:-?} | ${speed:-?} | ${cov:-?} | ${ft:-?} | $crashes | $secs |")
  if ((crashes > 0)); then
    failed=1
    echo "fuzz: $t crashed (exit $rc); input(s) in $dir/artifacts/, log $log:" >&2
    grep -E 'ERROR|invariant violated|SUMMARY|Test unit written' "$log" | head -20 >&2 || true
  fi
done

if $report; then
  # One table row per target and mode: a run replaces the rows of its own
  # mode (a runs count or a duration) and keeps the others.
  rows_file=$out/rows.md
  printf '%s\n' "${rows[@]}" >"$rows_file"
  python3 - reports/reliability.md "$mode" "$(date -u +%Y-%m-%d)" \
    "$(git rev-parse --short HEAD 2>/dev/null || echo unknown)" "$(nproc)" "$rows_file" <<'PY'
import os, re, sys
path, mode, day, commit, cores, rows_file = sys.argv[1:7]
new_rows = [f"| {mode} | {r.strip().strip('|').strip()} | {day} | `{commit}` |"
            for r in open(rows_file).read().splitlines() if r.strip()]
begin, end = "<!-- fuzz:begin -->", "<!-- fuzz:end -->"
text = open(path).read() if os.path.exists(path) else "# Reliability\n"
old_rows = []
m = re.search(re.escape(begin) + "(.*?)" + re.escape(end), text, flags=re.S)
if m:
    old_rows = [l for l in m.group(1).splitlines()
                if l.startswith("| ") and not l.startswith("| mode")
                and l.split("|")[1].strip() != mode]
block = "\n".join([
    begin,
    "## Fuzzing",
    "Two libFuzzer targets (`tests/fuzz/`, clang-14 with ASan and UBSan) feed arbitrary bytes",
    "to the HTTP API's decoders (`fuzz_decode_predict`: `decode_predict` against an independent",
    "reading of the contract, `decode_ttl`, `check_admin`) and to a Beast request parser",
    "configured as the server's, with pipelined requests routed through the same decoders",
    "(`fuzz_http_request`), from the seeds in `tests/fuzz/corpus/`. Any exception, sanitizer",
    "report, 5xx error or broken invariant is a crash. `scripts/fuzz.sh --report` (100,000 runs",
    "per target) and `scripts/fuzz.sh --minutes 10 --report` rewrite the rows of their mode",
    f"below. Machine: {cores} cores shared with other builds; the targets run side by side.",
    "`cov` is the number of code edges reached, `ft` libFuzzer's coverage features.",
    "",
    "| mode | target | runs | exec/s | cov | ft | crashes | seconds | date | commit |",
    "|---|---|---|---|---|---|---|---|---|---|",
    *sorted(old_rows + new_rows),
    end,
])
if m:
    text = text[:m.start()] + block + text[m.end():]
else:
    text = text.rstrip("\n") + "\n\n" + block + "\n"
open(path, "w").write(text)
PY
  echo "fuzz: wrote the '$mode' rows of reports/reliability.md (## Fuzzing)"
fi
exit $failed
