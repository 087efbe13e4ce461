#!/usr/bin/env python3
"""Plots for sil-lab's reports, from their CSV files (Debian's python3-matplotlib).

  plot.py drift DIR           divergence.png, prediction_error.png
  plot.py load DIR            latency.png, burst_timeline.png
  plot.py correctness DIR     risk_table.png, divergence_vs_error.png
  plot.py sweep-ttl DIR       ttl_tradeoff.png
  plot.py sweep-capacity DIR  capacity.png
"""
import csv
import json
import sys
from collections import defaultdict

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def read(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def save(fig, path):
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def drift(d):
    rows = read(f"{d}/results.csv")
    by = defaultdict(list)
    for r in rows:
        by[r["formulation"]].append(r)
    fig, ax1 = plt.subplots(figsize=(7.5, 4.2))
    for name, style in (("resampled", "o-"), ("shifted", "s-")):
        rs = by.get(name, [])
        x = [float(r["suffix_mean"]) for r in rs]
        ax1.plot(x, [float(r["cosine_p50"]) for r in rs], style, label=f"{name}: cosine p50")
        ax1.fill_between(x, [float(r["cosine_p05"]) for r in rs],
                         [float(r["cosine_p95"]) for r in rs], alpha=0.15,
                         label=f"{name}: cosine p5-p95")
    ax1.set_xlabel("suffix mean shift (step x strength), feature units")
    ax1.set_ylabel("cosine distance, cached vs fresh (1 - cos)")
    ax1.set_title("Embedding divergence under suffix drift (prefix fixed)")
    ax1.legend(loc="best", fontsize=8)
    save(fig, f"{d}/divergence.png")

    fig, ax = plt.subplots(figsize=(7.5, 4.2))
    for name, style in (("resampled", "o-"), ("shifted", "s-")):
        rs = by.get(name, [])
        x = [float(r["suffix_mean"]) for r in rs]
        ax.plot(x, [float(r["pred_err_p50"]) for r in rs], style, label=f"{name}: p50")
        ax.plot(x, [float(r["pred_err_p95"]) for r in rs], style.replace("-", "--"),
                label=f"{name}: p95")
    ax.set_xlabel("suffix mean shift (step x strength), feature units")
    ax.set_ylabel("|prediction(cached) - prediction(fresh)| (score units)")
    ax.set_title("Prediction error of a reused embedding under drift")
    ax.legend(fontsize=8)
    save(fig, f"{d}/prediction_error.png")


def load(d):
    rows = read(f"{d}/results.csv")
    fig, axes = plt.subplots(1, 2, figsize=(10, 4.2), sharey=False)
    for ax, shape in zip(axes, ("steady", "bursty")):
        rs = [r for r in rows if r["shape"] == shape]
        pcts = (("p50_ms", "p50"), ("p99_ms", "p99"), ("p999_ms", "p99.9"))
        width = 0.8 / max(1, len(rs))
        for i, r in enumerate(rs):
            xs = [j + i * width for j in range(len(pcts))]
            ax.bar(xs, [float(r[k]) for k, _ in pcts], width, label=r["run"])
        ax.set_xticks([j + width * (len(rs) - 1) / 2 for j in range(len(pcts))])
        ax.set_xticklabels([n for _, n in pcts])
        ax.set_yscale("log")
        ax.set_ylabel("latency from intended send, ms (log)")
        ax.set_xlabel("percentile")
        ax.set_title(f"{shape} traffic")
        ax.legend(fontsize=8)
    save(fig, f"{d}/latency.png")

    tl = [r for r in read(f"{d}/timeline.csv") if r["shape"] == "bursty"]
    fig, ax = plt.subplots(figsize=(10, 4.2))
    runs = defaultdict(list)
    for r in tl:
        runs[r["run"]].append(r)
    for name, rs in runs.items():
        ax.plot([float(r["t_s"]) for r in rs], [max(float(r["p99_ms"]), 1e-3) for r in rs],
                label=f"{name}: p99")
    # Shade the bursts (from the run's configuration).
    try:
        with open(f"{d}/results.json") as f:
            cfg = json.load(f)["config"]
        period, length = float(cfg["burst_period_s"]), float(cfg["burst_length_s"])
        end = max((float(r["t_s"]) for r in tl), default=0.0) + 0.1
        t, first = 0.0, True
        while period > 0 and t < end:
            ax.axvspan(t, t + length, color="0.85", zorder=0,
                       label="burst" if first else None)
            t, first = t + period, False
    except (OSError, KeyError, ValueError):
        pass
    ax.set_yscale("log")
    ax.set_xlabel("intended send time, s (100 ms buckets)")
    ax.set_ylabel("p99 latency, ms (log)")
    ax.set_title("Bursty traffic: tail latency over time")
    ax.legend(fontsize=8)
    save(fig, f"{d}/burst_timeline.png")


def correctness(d):
    rows = read(f"{d}/results.csv")
    labels = [f"{float(r['drift_strength']):g}\n{r['agent']}" for r in rows]
    correct = [int(r["correct_hits"]) for r in rows]
    wrong = [int(r["wrong_hits"]) for r in rows]
    miss = [int(r["misses"]) for r in rows]
    fig, ax = plt.subplots(figsize=(max(7, len(rows) * 0.9), 4.5))
    x = range(len(rows))
    ax.bar(x, correct, label="correct hits", color="tab:green")
    ax.bar(x, wrong, bottom=correct, label="wrong hits", color="tab:red")
    ax.bar(x, miss, bottom=[c + w for c, w in zip(correct, wrong)], label="misses (fresh)",
           color="tab:gray")
    ax.set_xticks(list(x))
    ax.set_xticklabels(labels, fontsize=8)
    ax.set_xlabel("drift per step (feature units) / agent")
    ax.set_ylabel("requests")
    ax.set_title("Correct hits, wrong hits and misses under drift")
    ax.legend(fontsize=8)
    save(fig, f"{d}/risk_table.png")

    pairs = read(f"{d}/pairs.csv")
    fig, ax = plt.subplots(figsize=(7, 4.5))
    cells = defaultdict(lambda: ([], []))
    exact = 0
    for p in pairs:
        cos, err = float(p["cosine"]), float(p["prediction_error"])
        if cos <= 1e-6:  # identical features: divergence 0, error only float rounding
            exact += 1
            continue
        c = cells[p["cell"]]
        c[0].append(cos)
        c[1].append(max(err, 1e-9))
    for name, (xs, ys) in cells.items():
        ax.scatter(xs, ys, s=6, alpha=0.5, label=name)
    ax.axhline(0.05, ls=":", color="k", label="default tolerance 0.05")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("cosine distance, reused vs fresh embedding (log)")
    ax.set_ylabel("|prediction error| (score units, log)")
    ax.set_title(f"Divergence vs prediction error of hits\n(sampled; {exact} exact reuses with "
                 "cosine 0 not shown)", fontsize=10)
    ax.legend(fontsize=6, markerscale=2, ncol=2)
    save(fig, f"{d}/divergence_vs_error.png")


def sweep_ttl(d):
    rows = read(f"{d}/results.csv")
    finite = [r for r in rows if r["plain_lru"] == "0"]
    plain = [r for r in rows if r["plain_lru"] == "1"]
    x = [float(r["ttl_s"]) for r in finite]
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(11, 4.2))
    a1.plot(x, [float(r["hit_rate"]) for r in finite], "o-", label="hit rate")
    a1.plot(x, [float(r["encodes_per_request"]) for r in finite], "s-",
            label="encodes per request (recomputation)")
    a1.plot(x, [float(r["wrong_answer_rate"]) for r in finite], "^-",
            label="wrong answers / answers")
    for r in plain:
        a1.axhline(float(r["hit_rate"]), ls=":", color="tab:blue", label="hit rate, plain LRU")
        a1.axhline(float(r["wrong_answer_rate"]), ls=":", color="tab:green",
                   label="wrong answers, plain LRU")
    a1.set_xscale("log")
    a1.set_xlabel("TTL, s (log)")
    a1.set_ylabel("fraction")
    a1.set_title("What a TTL costs and buys")
    a1.legend(fontsize=7)
    a2.plot(x, [float(r["age_mean_ms"]) for r in finite], "o-", label="entry age at hit, mean")
    a2.plot(x, [float(r["age_p95_ms"]) for r in finite], "s-", label="entry age at hit, p95")
    a2.plot(x, [t * 1000 for t in x], "k:", label="TTL (the bound)")
    a2.set_xscale("log")
    a2.set_yscale("log")
    a2.set_xlabel("TTL, s (log)")
    a2.set_ylabel("age at hit, ms (log)")
    b2 = a2.twinx()
    b2.plot(x, [float(r["cosine_at_hit_mean"]) for r in finite], "^--", color="tab:red",
            label="cosine at hit, mean")
    b2.set_ylabel("cosine distance at hit")
    h1, l1 = a2.get_legend_handles_labels()
    h2, l2 = b2.get_legend_handles_labels()
    a2.legend(h1 + h2, l1 + l2, fontsize=7, loc="upper left")
    a2.set_title("Staleness of what hits are served")
    save(fig, f"{d}/ttl_tradeoff.png")


def sweep_capacity(d):
    rows = read(f"{d}/results.csv")
    fig, ax = plt.subplots(figsize=(7.5, 4.2))
    for policy, style, label in (("lru_ttl", "o-", "LRU+TTL"), ("lru", "s-", "plain LRU")):
        rs = [r for r in rows if r["policy"] == policy]
        ax.plot([int(r["capacity"]) for r in rs], [float(r["hit_rate_second_half"]) for r in rs],
                style, label=f"{label}, measured (warm half)")
    rs = [r for r in rows if r["policy"] == "lru"]
    ax.plot([int(r["capacity"]) for r in rs], [float(r["che_lru_hit_rate"]) for r in rs], "k:",
            label="LRU, Che's approximation")
    ax.set_xscale("log", base=2)
    ax.set_xlabel("cache capacity, entries (log2)")
    ax.set_ylabel("hit rate")
    ax.set_ylim(0, 1)
    ax.set_title("Hit rate vs capacity on Zipf prefixes")
    ax.legend(fontsize=8)
    save(fig, f"{d}/capacity.png")


KINDS = {"drift": drift, "load": load, "correctness": correctness, "sweep-ttl": sweep_ttl,
         "sweep-capacity": sweep_capacity}


def main():
    if len(sys.argv) != 3 or sys.argv[1] not in KINDS:
        print(__doc__, file=sys.stderr)
        return 2
    KINDS[sys.argv[1]](sys.argv[2])
    return 0


if __name__ == "__main__":
    sys.exit(main())
