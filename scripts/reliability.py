#!/usr/bin/python3
"""Regenerates reports/reliability.md: what was tried against sil-server and what held.

  scripts/reliability.py [--server build/sil-server] [--skip-attacks] [-k CASE ...]

1. Runs the attack suite (tests/attack/attack_suite.py) in report mode, which
   writes reports/attack/attacks.json (--skip-attacks reuses the last one).
2. Reads reports/soak/soak.json if a soak run (scripts/soak.py) left one.
3. Rewrites only its own sections of reports/reliability.md, each between
   marker comments, so that other generators can own other sections:
     <!-- attacks:begin --> ... <!-- attacks:end -->
     <!-- soak:begin --> ... <!-- soak:end -->
   The fuzzing section (<!-- fuzz:begin --> ... <!-- fuzz:end -->) belongs to
   another script: it is kept as it is, or created empty if missing.

Exit status: that of the attack suite (0 when every attack held).
"""
import argparse
import datetime
import json
import os
import re
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
REPORT = os.path.join(ROOT, "reports", "reliability.md")
ATTACKS_JSON = os.path.join(ROOT, "reports", "attack", "attacks.json")
SOAK_JSON = os.path.join(ROOT, "reports", "soak", "soak.json")
SECTIONS = ["attacks", "soak", "fuzz"]

HEADER = """# Reliability

Regenerate with one command (after the release build, `cmake --preset release && cmake --build
--preset release`):
```sh
scripts/reliability.py        # runs the attack suite, reads reports/soak/soak.json, rewrites this file
```
Each section below is owned by one generator and sits between marker comments; a generator
rewrites only its own section. Attacks and soak: `scripts/reliability.py` (the soak numbers come
from the last `scripts/soak.py` run); fuzzing: its own script.

"""


def mib(kb):
    return "-" if kb is None else f"{kb / 1024:.1f}"


def cell(text):
    return str(text).replace("|", "\\|").replace("\n", " ")


def attacks_section(data):
    cases = data["cases"]
    held = sum(1 for c in cases if c["outcome"] == "held")
    when = datetime.datetime.fromtimestamp(data["unix_time"]).strftime("%Y-%m-%d %H:%M")
    out = ["## Attacks", "",
           f"`tests/attack/attack_suite.py` (ctest: `ctest --preset release -L attack`), run {when} "
           f"against `{os.path.relpath(data['server'], ROOT)}`: **{held} of {len(cases)} attacks "
           f"held** in {data['seconds']:.0f} s. Every case starts its own `sil-server` on a "
           "loopback port, attacks it, checks the hardened behaviour, and stops it with SIGTERM "
           "(it must still be alive and exit 0 unless the case checks the exit itself). "
           "`requests`: requests the case sent; `5xx`: 5xx answers it saw (503 is the expected "
           "answer to overload and to requests dropped at the drain deadline); `crashed`: the "
           "server died during the case; RSS of the server before and after the case (MiB).", "",
           "| attack | what it tries | requests | outcome | 5xx | crashed | RSS before / after |",
           "|---|---|---:|---|---:|---|---|"]
    for c in cases:
        outcome = f"**{c['outcome']}**: {cell(c['detail'])[:220]}"
        out.append(f"| `{c['name']}` | {cell(c['attack'])} | {c['requests']} | {outcome} | "
                   f"{c['5xx']} | {'**yes**' if c['crashed'] else 'no'} | "
                   f"{mib(c['rss_before_kb'])} / {mib(c['rss_after_kb'])} |")
    failed = [c["name"] for c in cases if c["outcome"] != "held"]
    out += ["", f"Failed: {', '.join(f'`{n}`' for n in failed)}." if failed
            else "Every attack held.", "",
            "Run one case (or several) by name: `tests/attack/attack_suite.py build/sil-server "
            "-k smuggling -k head_framing -v`; `--list` prints them all."]
    return "\n".join(out)


def soak_section(s):
    if s is None:
        return ("## Soak\n\nNo soak run yet: `scripts/soak.py` (30 minutes) or "
                "`scripts/soak.py --quick` (60 s) writes `reports/soak/`, then run "
                "`scripts/reliability.py --skip-attacks`.")
    when = datetime.datetime.fromtimestamp(s["unix_time"]).strftime("%Y-%m-%d %H:%M")
    kinds = ", ".join(f"{k} {v}" for k, v in sorted(s["by_kind"].items()))
    statuses = ", ".join(f"{k}: {v}" for k, v in sorted(s["by_status"].items()))
    checks = s["checks"]
    mode = {"quick": "the quick run (`--quick`, 60 s)", "full": "the full run (30 minutes)"}.get(
        s["mode"], f"a {s['duration_s']:.0f} s run")
    p99s = [x["p99_ms"] for x in s["samples"] if x["p99_ms"] is not None]
    return "\n".join([
        "## Soak", "",
        f"`scripts/soak.py`, {mode}, {when}: one `sil-server` under a steady mixed load of "
        f"{s['rate']:.0f} req/s ({s['threads']} client threads; 70% hits on 8 hot inputs, 15% misses "
        "on fresh prefixes of 1-8 rows, 8% bad requests, 7% `/stats` and `/metrics` scrapes), "
        f"well below saturation; a sample every {s['interval_s']:.0f} s. "
        f"**Verdict: {s['verdict']}.**", "",
        "| | value | check |", "|---|---|---|",
        f"| duration | {s['duration_s']:.0f} s | |",
        f"| requests | {s['requests']} ({kinds}) | |",
        f"| statuses | {statuses} | |",
        f"| 5xx | {s['5xx']} | {'ok' if checks['no_5xx'] else '**FAILED**'}: none allowed |",
        f"| unexpected non-2xx or connection errors | {s['unexpected_non_2xx_or_errors']} | |",
        f"| latency p50 / p99 (client side, whole run) | {s['p50_ms']:.2f} / {s['p99_ms']:.2f} ms | |",
        f"| p99 per interval, min / max | {min(p99s):.2f} / {max(p99s):.2f} ms | |" if p99s else
        "| p99 per interval | - | |",
        f"| RSS, first / last third after warm-up | {mib(s['rss_first_third_kb'])} / "
        f"{mib(s['rss_last_third_kb'])} MiB ({100 * s['rss_growth']:+.1f}%) | "
        f"{'ok' if checks['rss_flat'] else '**FAILED**'}: within 10% |",
        f"| open fds, first / last / max after warm-up | {s['fds_first']} / {s['fds_last']} / "
        f"{s['fds_max']} | {'ok' if checks['fds_flat'] else '**FAILED**'}: flat |",
        f"| server alive throughout | {'yes' if s['server_died'] is None else 'no'} | "
        f"{'ok' if checks['alive'] else '**FAILED**'} |",
        f"| exit status on SIGTERM | {s['exit_status']} | "
        f"{'ok' if checks['exit_0'] else '**FAILED**'}: 0 |", "",
        "![RSS, open fds, p99 latency and errors over the soak run](soak/soak.png)", "",
        "Per-interval numbers: [soak/soak.csv](soak/soak.csv), [soak/soak.json](soak/soak.json). "
        "Latency is measured by Python client threads from each request's intended send time, so "
        "its p99 includes the client's own scheduling; it is there to show a trend, not the "
        "server's speed (see [performance.md](performance.md) for that).",
    ])


def replace_section(text, name, body):
    begin, end = f"<!-- {name}:begin -->", f"<!-- {name}:end -->"
    block = f"{begin}\n{body}\n{end}" if body is not None else None
    pat = re.compile(re.escape(begin) + r".*?" + re.escape(end), re.S)
    if pat.search(text):
        return pat.sub(lambda _: block, text) if block else text
    return text.rstrip("\n") + "\n\n" + (block or f"{begin}\n{end}") + "\n"


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--server", default=os.path.join(ROOT, "build", "sil-server"))
    ap.add_argument("--skip-attacks", action="store_true",
                    help="reuse reports/attack/attacks.json instead of running the suite")
    ap.add_argument("-k", action="append", default=[], help="run only these attack cases")
    a = ap.parse_args()
    rc = 0
    if not a.skip_attacks:
        cmd = [sys.executable, os.path.join(ROOT, "tests", "attack", "attack_suite.py"), a.server,
               "--report", ATTACKS_JSON] + [x for k in a.k for x in ("-k", k)]
        print("running: " + " ".join(os.path.relpath(c, ROOT) if c.startswith(ROOT) else c
                                       for c in cmd), flush=True)
        rc = subprocess.call(cmd)
    if not os.path.exists(ATTACKS_JSON):
        sys.exit(f"no {ATTACKS_JSON}: run without --skip-attacks first")
    with open(ATTACKS_JSON) as f:
        attacks = json.load(f)
    soak = None
    if os.path.exists(SOAK_JSON):
        with open(SOAK_JSON) as f:
            soak = json.load(f)
    text = open(REPORT).read() if os.path.exists(REPORT) else HEADER
    text = replace_section(text, "attacks", attacks_section(attacks))
    text = replace_section(text, "soak", soak_section(soak))
    text = replace_section(text, "fuzz", None)  # someone else's: kept, or empty markers
    with open(REPORT, "w") as f:
        f.write(text)
    print(f"wrote {os.path.relpath(REPORT, ROOT)}")
    return rc


if __name__ == "__main__":
    sys.exit(main())
