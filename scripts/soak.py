#!/usr/bin/python3
"""Soak run: a steady mixed load against one sil-server, to find leaks.

Starts sil-server on a free loopback port and holds a load well below
saturation for 30 minutes (--quick: 60 s): hits on a few hot inputs, misses
on fresh prefixes, some bad requests (4xx expected), /stats and /metrics
scrapes. Every interval (10 s) it records the server's RSS and open fds
(/proc), requests done, p99 latency (all requests and hits), non-2xx counts by
status and 5xx. Then it stops the server with SIGTERM and prints a verdict:
RSS flat (after warm-up, the last third's mean within 10% of the first
third's), fds flat, no 5xx, the server alive throughout and exiting 0.

  scripts/soak.py [--quick] [--server build/sil-server] [--rate 200] [--out reports/soak]

Writes OUT/soak.json, OUT/soak.csv and OUT/soak.png (RSS, fds, p99 and errors
against time). Exit status 0 when the verdict holds, 1 otherwise.
Only the Python 3 standard library and matplotlib are used.
"""
import argparse
import csv
import http.client
import json
import os
import random
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time

HOST = "127.0.0.1"
DIM = 32
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def rss_kb(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return None


def open_fds(pid):
    return len(os.listdir(f"/proc/{pid}/fd"))


def pct(values, p):
    if not values:
        return None
    v = sorted(values)
    return v[min(len(v) - 1, int(p * len(v)))]


def row(first, second, rest=0.25):
    return [first, second, 0.5, 0.125] + [rest] * (DIM - 4)


HOT = [json.dumps({"features": [row(1000 + k, 7)]}) for k in range(8)]
BAD = [
    ("POST", "/predict", "{", "application/json"),                      # malformed JSON
    ("POST", "/predict", '{"features":[[1,2,3]]}', "application/json"),  # wrong row length
    ("POST", "/predict", '{"features":[]}', "application/json"),        # no rows
    ("POST", "/predict", HOT[0], "text/plain"),                          # 415
    ("GET", "/predict", None, None),                                     # 405
    ("GET", "/no-such-route", None, None),                               # 404
]


class Load:
    """Worker threads, each with its own keep-alive connection, sending one
    request every `period` seconds on a fixed schedule (open loop per thread:
    a late answer does not delay the schedule, and latency counts from the
    intended send time)."""

    def __init__(self, port, rate, threads, seed):
        self.port = port
        self.period = threads / rate
        self.threads = threads
        self.seed = seed
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.records = []  # (kind, status or error string, latency ms)
        self.unique = 0

    def take(self):
        with self.lock:
            out, self.records = self.records, []
        return out

    def next_unique(self):
        with self.lock:
            self.unique += 1
            return self.unique

    def choose(self, rng):
        x = rng.random()
        if x < 0.70:
            return "hit", "POST", "/predict", rng.choice(HOT), "application/json"
        if x < 0.85:
            u = self.next_unique()
            rows = [row(u % 4096, u // 4096 + 100, rng.random())] * rng.randint(1, 8)
            return "miss", "POST", "/predict", json.dumps({"features": rows}), "application/json"
        if x < 0.93:
            return ("bad",) + rng.choice(BAD)
        if x < 0.965:
            return "stats", "GET", "/stats", None, None
        return "metrics", "GET", "/metrics", None, None

    def worker(self, k):
        rng = random.Random(self.seed * 1000 + k)
        conn = None
        t_next = time.monotonic() + rng.random() * self.period
        while not self.stop.is_set():
            delay = t_next - time.monotonic()
            if delay > 0:
                if self.stop.wait(delay):
                    break
            intended = t_next
            t_next += self.period
            kind, method, path, body, ctype = self.choose(rng)
            try:
                if conn is None:
                    conn = http.client.HTTPConnection(HOST, self.port, timeout=10)
                headers = {"Content-Type": ctype} if ctype else {}
                conn.request(method, path, body=body, headers=headers)
                r = conn.getresponse()
                r.read()
                status = r.status
                if r.getheader("Connection", "").lower() == "close":
                    conn.close()
                    conn = None
            except (OSError, http.client.HTTPException) as e:
                status = type(e).__name__
                if conn is not None:
                    conn.close()
                conn = None
            ms = (time.monotonic() - intended) * 1000
            with self.lock:
                self.records.append((kind, status, ms))
        if conn is not None:
            conn.close()

    def start(self):
        self.ts = [threading.Thread(target=self.worker, args=(k,), daemon=True)
                   for k in range(self.threads)]
        for t in self.ts:
            t.start()

    def finish(self):
        self.stop.set()
        for t in self.ts:
            t.join(15)


def start_server(binary, args, workdir):
    out = open(os.path.join(workdir, "stdout"), "wb")
    err = open(os.path.join(workdir, "stderr"), "wb")
    proc = subprocess.Popen([binary, "--port=0"] + args, stdout=out, stderr=err,
                            stdin=subprocess.DEVNULL)
    out.close()
    err.close()
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        with open(os.path.join(workdir, "stdout"), "rb") as f:
            m = re.search(rb"listening on [0-9.]+:(\d+)", f.read())
        if m:
            return proc, int(m.group(1))
        if proc.poll() is not None:
            break
        time.sleep(0.05)
    proc.kill()
    with open(os.path.join(workdir, "stderr")) as f:
        sys.exit(f"sil-server did not start: {f.read().strip()[:300]}")


def plot(samples, path, title):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    t = [s["t"] for s in samples]
    fig, ax = plt.subplots(4, 1, figsize=(9, 9), sharex=True)
    ax[0].plot(t, [s["rss_kb"] / 1024 for s in samples], marker="o")
    ax[0].set_ylabel("RSS (MiB)")
    ax[1].plot(t, [s["fds"] for s in samples], marker="o", color="tab:orange")
    ax[1].set_ylabel("open fds")
    ax[2].plot(t, [s["p99_ms"] if s["p99_ms"] is not None else float("nan") for s in samples], marker="o", label="all requests")
    ax[2].plot(t, [s["p99_hit_ms"] if s["p99_hit_ms"] is not None else float("nan") for s in samples], marker=".", label="hits")
    ax[2].set_ylabel("p99 latency (ms)")
    ax[2].legend(loc="upper right")
    ax[3].plot(t, [s["non_2xx"] - s["bad_4xx"] for s in samples], marker="o",
               label="unexpected non-2xx")
    ax[3].plot(t, [s["5xx"] for s in samples], marker="x", color="tab:red", label="5xx")
    ax[3].plot(t, [s["bad_4xx"] for s in samples], marker=".", color="tab:gray",
               label="4xx to bad requests (expected)")
    ax[3].set_ylabel("responses per interval")
    ax[3].set_xlabel("time since start (s)")
    ax[3].legend(loc="upper right")
    for a in ax:
        a.grid(alpha=0.3)
        a.set_ylim(bottom=0)
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="60 s instead of 30 minutes")
    ap.add_argument("--duration", type=float, help="seconds (default 1800, --quick 60)")
    ap.add_argument("--server", default=os.path.join(ROOT, "build", "sil-server"))
    ap.add_argument("--rate", type=float, default=200.0, help="requests per second in all")
    ap.add_argument("--threads", type=int, default=8)
    ap.add_argument("--interval", type=float, default=10.0, help="seconds per sample")
    ap.add_argument("--out", default=os.path.join(ROOT, "reports", "soak"))
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("server_args", nargs="*", help="extra sil-server flags (after --)")
    a = ap.parse_args()
    duration = a.duration or (60.0 if a.quick else 1800.0)
    os.makedirs(a.out, exist_ok=True)
    workdir = tempfile.mkdtemp(prefix="sil-soak-")
    proc, port = start_server(a.server, a.server_args, workdir)
    pid = proc.pid
    print(f"soak: sil-server pid {pid} on {HOST}:{port}, {duration:.0f} s at {a.rate:.0f} req/s "
          f"(70% hits, 15% misses, 8% bad requests, 7% /stats and /metrics)", flush=True)
    samples = [{"t": 0.0, "rss_kb": rss_kb(pid), "fds": open_fds(pid), "requests": 0,
                "p99_ms": None, "p99_hit_ms": None, "non_2xx": 0, "bad_4xx": 0, "5xx": 0,
                "errors": 0, "by_status": {}}]
    load = Load(port, a.rate, a.threads, a.seed)
    t0 = time.monotonic()
    load.start()
    died = None
    totals = {"requests": 0, "by_status": {}, "by_kind": {}, "5xx": 0, "unexpected": 0}
    all_lat = []
    try:
        k = 0
        while True:
            k += 1
            target = t0 + k * a.interval
            if target > t0 + duration + 1e-6:
                break
            while time.monotonic() < target:
                if proc.poll() is not None:
                    died = proc.returncode
                    break
                time.sleep(min(0.5, max(0.0, target - time.monotonic())))
            if died is not None:
                break
            recs = load.take()
            by_status = {}
            lat = [ms for _, _, ms in recs]
            hit_lat = [ms for kind, _, ms in recs if kind == "hit"]
            bad_4xx = non_2xx = n5xx = errors = 0
            for kind, status, _ in recs:
                key = str(status)
                by_status[key] = by_status.get(key, 0) + 1
                totals["by_kind"][kind] = totals["by_kind"].get(kind, 0) + 1
                if isinstance(status, int):
                    if not 200 <= status < 300:
                        non_2xx += 1
                    if status >= 500:
                        n5xx += 1
                    if kind == "bad" and 400 <= status < 500:
                        bad_4xx += 1
                    elif not 200 <= status < 300:
                        totals["unexpected"] += 1
                else:
                    errors += 1
                    totals["unexpected"] += 1
            for key, v in by_status.items():
                totals["by_status"][key] = totals["by_status"].get(key, 0) + v
            totals["requests"] += len(recs)
            totals["5xx"] += n5xx
            all_lat += lat
            s = {"t": round(time.monotonic() - t0, 1), "rss_kb": rss_kb(pid), "fds": open_fds(pid),
                 "requests": len(recs), "p99_ms": pct(lat, 0.99), "p99_hit_ms": pct(hit_lat, 0.99),
                 "non_2xx": non_2xx, "bad_4xx": bad_4xx, "5xx": n5xx, "errors": errors,
                 "by_status": by_status}
            samples.append(s)
            print(f"  t={s['t']:6.0f} s  rss {s['rss_kb'] / 1024:7.1f} MiB  fds {s['fds']:4d}  "
                  f"req {len(recs):6d}  p99 {s['p99_ms'] or 0:7.2f} ms (hits "
                  f"{s['p99_hit_ms'] or 0:.2f})  non-2xx {non_2xx} (bad-request 4xx {bad_4xx})  "
                  f"5xx {n5xx}  errors {errors}", flush=True)
    finally:
        load.finish()
        alive = proc.poll() is None
        if alive:
            proc.send_signal(signal.SIGTERM)
        try:
            rc = proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            rc = proc.wait()
            rc = f"killed after 30 s (was {rc})"
    with open(os.path.join(workdir, "stderr")) as f:
        stderr_tail = f.read().strip().splitlines()[-3:]
    # Verdict, over the samples after warm-up (the first 20% of the run, at
    # least one interval): the cache fills and the allocator settles then.
    warm = max(1, int(0.2 * (len(samples) - 1)) + 1)
    steady = samples[warm:]
    third = max(1, len(steady) // 3)
    first_rss = sum(s["rss_kb"] for s in steady[:third]) / third if steady else None
    last_rss = sum(s["rss_kb"] for s in steady[-third:]) / third if steady else None
    rss_growth = (last_rss - first_rss) / first_rss if steady else None
    fd_first = steady[0]["fds"] if steady else None
    fd_last = steady[-1]["fds"] if steady else None
    fd_max = max(s["fds"] for s in steady) if steady else None
    checks = {
        "rss_flat": steady != [] and abs(rss_growth) <= 0.10,
        "fds_flat": steady != [] and fd_last <= fd_first + 5 and fd_max <= fd_first + 20,
        "no_5xx": totals["5xx"] == 0,
        "alive": died is None,
        "exit_0": rc == 0,
    }
    verdict = all(checks.values())
    elapsed = time.monotonic() - t0
    result = {
        "mode": "quick" if a.quick else ("full" if duration >= 1800 else "custom"),
        "duration_s": round(elapsed, 1), "rate": a.rate, "threads": a.threads,
        "interval_s": a.interval, "server": os.path.abspath(a.server),
        "server_args": a.server_args, "unix_time": int(time.time()),
        "requests": totals["requests"], "by_kind": totals["by_kind"],
        "by_status": totals["by_status"], "5xx": totals["5xx"],
        "unexpected_non_2xx_or_errors": totals["unexpected"],
        "p99_ms": pct(all_lat, 0.99), "p50_ms": pct(all_lat, 0.50),
        "warmup_samples": warm,
        "rss_first_third_kb": round(first_rss) if first_rss else None,
        "rss_last_third_kb": round(last_rss) if last_rss else None,
        "rss_growth": round(rss_growth, 4) if rss_growth is not None else None,
        "fds_first": fd_first, "fds_last": fd_last, "fds_max": fd_max,
        "server_died": died, "exit_status": rc, "stderr_tail": stderr_tail,
        "checks": checks, "verdict": "held" if verdict else "failed",
        "samples": samples,
    }
    with open(os.path.join(a.out, "soak.json"), "w") as f:
        json.dump(result, f, indent=1)
        f.write("\n")
    with open(os.path.join(a.out, "soak.csv"), "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["t_s", "rss_kb", "fds", "requests", "p99_ms", "p99_hit_ms", "non_2xx",
                    "bad_request_4xx", "5xx", "errors"])
        for s in samples:
            w.writerow([s["t"], s["rss_kb"], s["fds"], s["requests"], s["p99_ms"],
                        s["p99_hit_ms"], s["non_2xx"], s["bad_4xx"], s["5xx"], s["errors"]])
    plot(samples, os.path.join(a.out, "soak.png"),
         f"sil-server soak: {elapsed:.0f} s at {a.rate:.0f} req/s ({result['mode']})")
    print(f"\nsoak: {totals['requests']} requests in {elapsed:.0f} s, p99 "
          f"{result['p99_ms'] or 0:.2f} ms, statuses {totals['by_status']}")
    print(f"  RSS {first_rss / 1024 if first_rss else 0:.1f} -> {last_rss / 1024 if last_rss else 0:.1f}"
          f" MiB (first vs last third after warm-up, {100 * (rss_growth or 0):+.1f}%): "
          f"{'flat' if checks['rss_flat'] else 'GROWING'}")
    print(f"  fds {fd_first} -> {fd_last} (max {fd_max}): {'flat' if checks['fds_flat'] else 'GROWING'}")
    print(f"  5xx {totals['5xx']}; server {'alive' if died is None else f'died ({died})'}; "
          f"exit status on SIGTERM {rc}")
    print(f"verdict: {'HELD' if verdict else 'FAILED'} "
          f"({', '.join(k for k, v in checks.items() if not v) or 'every check passed'}); "
          f"wrote {a.out}/soak.json, soak.csv, soak.png")
    return 0 if verdict else 1


if __name__ == "__main__":
    sys.exit(main())
