#!/usr/bin/env python3
"""Plots for sil-lab's reports, from their CSV files (Debian's python3-matplotlib).

  plot.py drift DIR           divergence.png, prediction_error.png
  plot.py load DIR            latency.png, burst_timeline.png
  plot.py correctness DIR     risk_table.png, divergence_vs_error.png, tradeoff.png
  plot.py guard DIR           calibration.png, scenario.png, timeline.png
  plot.py sweep-ttl DIR       ttl_tradeoff.png
  plot.py sweep-capacity DIR  capacity.png
  plot.py picture DIR         drift.png (the README's picture)
  plot.py canary DIR          canary.png
"""
import csv
import json
import math
import sys
from collections import defaultdict

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def read(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def grouped(rows, key):
    """Rows grouped by key(row), in order of first appearance (one group per
    configuration, one row per repetition)."""
    out = {}
    for r in rows:
        out.setdefault(key(r), []).append(r)
    return out


def mean_range(rows, col):
    """Mean of a column over repetitions and the distance to its min / max
    (for error bars)."""
    v = [float(r[col]) for r in rows]
    m = sum(v) / len(v)
    return m, m - min(v), max(v) - m


def twin_legend(ax, twin):
    """One legend for an axis and its twinx."""
    h1, l1 = ax.get_legend_handles_labels()
    h2, l2 = twin.get_legend_handles_labels()
    ax.legend(h1 + h2, l1 + l2, fontsize=7, loc="upper left")


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
        runs = grouped([r for r in rows if r["shape"] == shape], lambda r: r["run"])
        pcts = (("p50_ms", "p50"), ("p99_ms", "p99"), ("p999_ms", "p99.9"))
        width = 0.8 / max(1, len(runs))
        for i, (name, rs) in enumerate(runs.items()):
            xs = [j + i * width for j in range(len(pcts))]
            stats = [mean_range(rs, k) for k, _ in pcts]
            ax.bar(xs, [m for m, _, _ in stats], width, label=name,
                   yerr=[[lo for _, lo, _ in stats], [hi for _, _, hi in stats]], capsize=3)
        ax.set_xticks([j + width * (len(runs) - 1) / 2 for j in range(len(pcts))])
        ax.set_xticklabels([n for _, n in pcts])
        ax.set_yscale("log")
        ax.set_ylabel("latency from intended send, ms (log)")
        ax.set_xlabel("percentile (bars: mean over repetitions, whiskers: min-max)")
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
    groups = grouped(rows, lambda r: (r["drift_strength"], r["formulation"], r["agent"]))
    labels = [f"{float(s):g}{' res.' if f == 'resampled' else ''}\n{a}" for s, f, a in groups]

    def avg(col):
        return [sum(int(r[col]) for r in rs) / len(rs) for rs in groups.values()]

    correct, wrong, miss = avg("correct_hits"), avg("wrong_hits"), avg("misses")
    fig, ax = plt.subplots(figsize=(max(7, len(groups) * 0.8), 4.5))
    x = range(len(groups))
    ax.bar(x, correct, label="correct hits", color="tab:green")
    ax.bar(x, wrong, bottom=correct, label="wrong hits", color="tab:red")
    ax.bar(x, miss, bottom=[c + w for c, w in zip(correct, wrong)], label="misses (fresh)",
           color="tab:gray")
    ax.set_xticks(list(x))
    ax.set_xticklabels(labels, fontsize=7)
    ax.set_xlabel("drift per step (feature units; res. = resampled formulation) / arm")
    ax.set_ylabel("requests (mean over repetitions)")
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
    tradeoff(d)


def tradeoff(d):
    try:
        rows = read(f"{d}/tradeoff.csv")
    except OSError:
        return
    if not rows:
        return
    fig, ax = plt.subplots(figsize=(7.5, 4.8))
    styles = {"static_cosine": ("tab:blue", "static cosine-divergence threshold (replayed)"),
              "static_distance": ("tab:orange", "static input-distance threshold (replayed)")}
    floor = 1e-4  # wrong rate 0 drawn at the axis floor (log scale)
    for rep, rs in grouped(rows, lambda r: r["rep"]).items():
        first = rep == rows[0]["rep"]
        for policy, (color, label) in styles.items():
            pts = [r for r in rs if r["policy"] == policy]
            ax.plot([max(float(r["wrong_rate"]), floor) for r in pts],
                    [float(r["hit_rate"]) for r in pts], ".-", color=color, alpha=0.6, ms=3,
                    label=label if first else None)
        for policy, marker, color, label in (("guard", "*", "tab:red", "reuse guard (live)"),
                                             ("oracle", "D", "k", "oracle (replayed)")):
            for r in (r for r in rs if r["policy"] == policy):
                ax.plot(max(float(r["wrong_rate"]), floor), float(r["hit_rate"]), marker,
                        color=color, ms=12 if marker == "*" else 7,
                        label=label if first else None)
    try:
        with open(f"{d}/results.json") as f:
            delta = float(json.load(f)["config"]["max_wrong_rate"])
        ax.axvline(delta, ls=":", color="tab:red", label=f"delta = {delta:g} (target)")
    except (OSError, KeyError, ValueError):
        pass
    ax.set_xscale("log")
    ax.set_xlabel(f"achieved wrong rate, wrong hits / hits (log; 0 drawn at {floor:g})")
    ax.set_ylabel("hit rate, hits / requests")
    ax.set_title("Hit rate vs wrong rate: guard, static thresholds, oracle\n"
                 "(totals over the correctness table's rows; one curve per repetition)",
                 fontsize=10)
    ax.legend(fontsize=7, loc="lower right")
    save(fig, f"{d}/tradeoff.png")


def sweep_ttl(d):
    # One row per TTL: the mean over repetitions.
    rows = []
    for rs in grouped(read(f"{d}/results.csv"), lambda r: (r["ttl_s"], r["plain_lru"])).values():
        row = dict(rs[0])
        for k in rs[0]:
            if k not in ("rep", "ttl_s", "plain_lru"):
                row[k] = mean_range(rs, k)[0]
        rows.append(row)
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
    twin_legend(a2, b2)
    a2.set_title("Staleness of what hits are served")
    save(fig, f"{d}/ttl_tradeoff.png")


def sweep_capacity(d):
    rows = read(f"{d}/results.csv")
    # Results written before the scan and bursty workloads have no column.
    for r in rows:
        r.setdefault("workload", "zipf")
    # One colour per policy in every panel.
    arms = (("lru_ttl", "o-", "tab:blue", "LRU+TTL"),
            ("lru_ttl_hop", "x--", "tab:orange", "LRU+TTL, read path off (actor hop)"),
            ("lru", "s-", "tab:green", "plain LRU"),
            ("tinylfu", "D-", "tab:red", "W-TinyLFU (no TTL)"))
    titles = {"zipf": "Zipf prefixes",
              "scan": "Zipf + one-off prefixes (every other request)",
              "bursty": "bursty: Zipf base + flash crowds"}
    workloads = [w for w in titles if any(r["workload"] == w for r in rows)]
    fig, axes = plt.subplots(1, len(workloads), figsize=(7.5 + 4.5 * (len(workloads) - 1), 4.4),
                             squeeze=False)
    for ax, w in zip(axes[0], workloads):
        wrows = [r for r in rows if r["workload"] == w]
        for policy, style, colour, label in arms:
            caps = grouped([r for r in wrows if r["policy"] == policy],
                           lambda r: int(r["capacity"]))
            if not caps:
                continue
            stats = [mean_range(rs, "hit_rate_second_half") for rs in caps.values()]
            ax.errorbar(list(caps), [m for m, _, _ in stats],
                        yerr=[[lo for _, lo, _ in stats], [hi for _, _, hi in stats]], fmt=style,
                        color=colour, capsize=3, label=label)
        if w == "zipf":
            caps = grouped([r for r in wrows if r["policy"] == "lru"],
                           lambda r: int(r["capacity"]))
            ax.plot(list(caps), [float(rs[0]["che_lru_hit_rate"]) for rs in caps.values()], "k:",
                    label="LRU, Che's approximation")
        ax.set_xscale("log", base=2)
        ax.set_xlabel("cache capacity, entries (log2)")
        ax.set_ylabel("hit rate (warm half)")
        ax.set_ylim(0, 1)
        ax.set_title(titles[w], fontsize=10)
        ax.legend(fontsize=7, loc="upper left")
    fig.suptitle("Hit rate vs capacity (warm half of each run; bars: min-max over repetitions)")
    save(fig, f"{d}/capacity.png")


def guard(d):
    rows = read(f"{d}/results.csv")
    fig, ax = plt.subplots(figsize=(6.5, 4.8))
    levels = sorted({r["drift_strength"] for r in rows}, key=float)
    top = max([float(r["delta"]) for r in rows] + [1e-3])
    for i, level in enumerate(levels):
        rs = [r for r in rows if r["drift_strength"] == level]
        ax.plot([float(r["delta"]) * (1 + 0.04 * (i - (len(levels) - 1) / 2)) for r in rs],
                [float(r["wrong_hit_rate"]) for r in rs], "o", alpha=0.7,
                label=f"drift {float(level):g} / step (one point per repetition)")
        top = max([top] + [float(r["wrong_hit_rate"]) for r in rs])
    ax.plot([0, top * 1.1], [0, top * 1.1], "k--", label="y = x (achieved = target)")
    ax.set_xlabel("target max wrong-rate delta (--risk.max-wrong-rate)")
    ax.set_ylabel("achieved wrong rate, wrong hits / hits")
    ax.set_title("Calibration of the reuse guard")
    ax.legend(fontsize=8)
    save(fig, f"{d}/calibration.png")

    rows = read(f"{d}/scenario.csv")
    phases = list(grouped(rows, lambda r: r["phase"]))
    arms = list(grouped(rows, lambda r: r["arm"]))
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(11, 4.2))
    width = 0.8 / max(1, len(arms))
    for i, arm in enumerate(arms):
        for ax, col in ((a1, "hit_rate"), (a2, "wrong_hit_rate")):
            stats = [mean_range([r for r in rows if r["arm"] == arm and r["phase"] == p], col)
                     for p in phases]
            ax.bar([j + i * width for j in range(len(phases))], [m for m, _, _ in stats], width,
                   yerr=[[lo for _, lo, _ in stats], [hi for _, _, hi in stats]], capsize=3,
                   label=arm)
    for ax, ylabel in ((a1, "hit rate"), (a2, "wrong hits / hits")):
        ax.set_xticks([j + width * (len(arms) - 1) / 2 for j in range(len(phases))])
        ax.set_xticklabels(phases)
        ax.set_xlabel("phase (mean over repetitions, whiskers: min-max)")
        ax.set_ylabel(ylabel)
        ax.legend(fontsize=8)
    a1.set_title("Hit rate per phase")
    a2.set_title("Wrong rate of served hits per phase")
    save(fig, f"{d}/scenario.png")

    timeline(d)


def timeline(d):
    rows = read(f"{d}/timeline.csv")
    with open(f"{d}/results.json") as f:
        res = json.load(f)
    tol = float(res["config"]["tolerance"])
    fig, (a1, a2) = plt.subplots(2, 1, figsize=(10, 6.5), sharex=True)
    hits = [r for r in rows if r["hit"] == "1" and r["error"] not in ("", "nan")]
    for basis, color in (("exact", "tab:green"), ("certified", "tab:blue"),
                         ("unguarded", "tab:gray"), ("hit", "tab:gray")):
        pts = [r for r in hits if r["basis"] == basis]
        if pts:
            a1.scatter([float(r["t_s"]) for r in pts],
                       [max(float(r["error"]), 1e-9) for r in pts], s=5, alpha=0.5, color=color,
                       label=f"served hit ({basis})")
    a1.axhline(tol, ls="--", color="tab:red", label=f"tolerance tau = {tol:g}")
    a1.set_yscale("log")
    a1.set_ylabel("|cached - fresh| per served hit (log)")
    a1.set_title("Errors of served hits over time (one drifting run)")
    a1.legend(fontsize=7, loc="lower right")
    end = max((float(r["t_s"]) for r in rows), default=0.0)
    seconds = int(end) + 1
    for basis, color in (("refused", "tab:red"), ("certified", "tab:blue"),
                         ("exact", "tab:green")):
        counts = [0] * seconds
        for r in rows:
            if r["basis"] == basis:
                counts[int(float(r["t_s"]))] += 1
        a2.plot([s + 0.5 for s in range(seconds)], counts, "o-", color=color, label=basis)
    a2.set_ylabel("decisions per second")
    a2.set_xlabel("time since the start of the run, s")
    b2 = a2.twinx()
    order = ["normal", "short_ttl", "disabled"]
    mode, ts, ms = "normal", [0.0], ["normal"]
    try:
        for r in read(f"{d}/decisions.csv"):
            t = float(r["t_s"])
            if 0 <= t <= end + 1:
                ts.append(t)
                ms.append(mode)
                mode = r["to"]
                ts.append(t)
                ms.append(mode)
    except OSError:
        pass
    ts.append(end)
    ms.append(mode)
    for m in ms:
        if m not in order:
            order.append(m)
    b2.plot(ts, [order.index(m) for m in ms], color="k", lw=1.5, label="agent mode")
    b2.set_yticks(range(len(order)))
    b2.set_yticklabels(order, fontsize=8)
    b2.set_ylabel("agent mode")
    twin_legend(a2, b2)
    a2.set_title("The guard's decisions per second and the agent's mode")
    save(fig, f"{d}/timeline.png")


def mode_steps(decisions, end):
    """The agent's mode over [0, end] from its decision log, as step-plot
    points (times, modes)."""
    mode, ts, ms = "normal", [0.0], ["normal"]
    for r in decisions:
        t = float(r["t_s"])
        if 0 <= t <= end:
            ts += [t, t]
            ms += [mode, r["to"]]
            mode = r["to"]
    ts.append(end)
    ms.append(mode)
    return ts, ms


def picture(d):
    """Two columns (the arms), two rows on one time axis: every served hit's
    error against the tolerance, then the guard's decisions and the served
    hits per second with the agent's mode."""
    rows = read(f"{d}/timeline.csv")
    decisions = read(f"{d}/decisions.csv")
    with open(f"{d}/results.json") as f:
        res = json.load(f)
    cfg = res["config"]
    tol = float(cfg["tolerance"])
    onset = float(cfg["onset_s"])
    end = float(cfg["duration_s"])
    seconds = max(1, math.ceil(end))
    arms = [("prefix_reuse", "Prefix reuse + cosine agent (before the guard)"),
            ("guard", "Reuse guard + wrong-rate agent (defaults)")]
    fig, axes = plt.subplots(2, 2, figsize=(13, 7.2), sharex=True, sharey="row",
                             gridspec_kw={"height_ratios": [3, 2]})
    order = ["normal", "short_ttl", "disabled"]
    for r in decisions:
        if r["to"] not in order:
            order.append(r["to"])
    floor = 1e-7
    for col, (arm, title) in enumerate(arms):
        top, bottom = axes[0][col], axes[1][col]
        mine = [r for r in rows if r["arm"] == arm]
        hits = [r for r in mine if r["hit"] == "1" and r["error"] not in ("", "nan")]
        ok = [r for r in hits if float(r["error"]) <= tol]
        bad = [r for r in hits if float(r["error"]) > tol]
        top.scatter([float(r["t_s"]) for r in ok], [max(float(r["error"]), floor) for r in ok],
                    s=4, alpha=0.45, color="tab:blue", label=f"served hit within tau ({len(ok)})")
        top.scatter([float(r["t_s"]) for r in bad], [float(r["error"]) for r in bad], s=6,
                    alpha=0.7, color="tab:red", label=f"wrong served hit ({len(bad)})")
        top.axhline(tol, ls="--", color="k", lw=1, label=f"tolerance tau = {tol:g}")
        top.set_yscale("log")
        top.set_title(title, fontsize=10)
        if col == 0:
            top.set_ylabel("|cached - fresh| per served hit\n(log; exact repeats at the floor)")
        top.legend(fontsize=7, loc="lower right")

        per = {k: [0] * seconds for k in ("requests", "hits", "wrong", "refused")}
        for r in mine:
            s = min(seconds - 1, int(float(r["t_s"])))
            per["requests"][s] += 1
            if r["basis"] == "refused":
                per["refused"][s] += 1
            if r["hit"] == "1":
                per["hits"][s] += 1
                if r["error"] not in ("", "nan") and float(r["error"]) > tol:
                    per["wrong"][s] += 1
        x = [s + 0.5 for s in range(seconds)]
        bottom.plot(x, per["requests"], color="0.6", lw=1, label="requests")
        bottom.plot(x, per["hits"], color="tab:blue", label="served hits")
        bottom.plot(x, per["wrong"], color="tab:red", label="wrong served hits")
        if any(per["refused"]):
            bottom.plot(x, per["refused"], color="tab:orange",
                        label="refused by the guard (computed fresh)")
        if col == 0:
            bottom.set_ylabel("per second")
        bottom.set_xlabel("time since the start of the run, s")
        twin = bottom.twinx()
        ts, ms = mode_steps([r for r in decisions if r["arm"] == arm], end)
        twin.plot(ts, [order.index(m) for m in ms], color="k", lw=1.8, label="agent mode")
        twin.set_ylim(-0.3, len(order) - 0.7)
        twin.set_yticks(range(len(order)))
        twin.set_yticklabels(order, fontsize=8)
        if col == 1:
            twin.set_ylabel("agent mode")
        bottom.set_ylim(0, 1.7 * max(per["requests"] + [1]))
        twin_legend(bottom, twin)
        for ax in (top, bottom):
            ax.axvline(onset, color="tab:purple", ls=":", lw=1.2)
        top.annotate("drift starts", (onset, 1.0), xycoords=("data", "axes fraction"),
                     xytext=(3, -12), textcoords="offset points", fontsize=8, color="tab:purple")
    fig.suptitle(f"The cache and the agent under drift: {cfg['rate']:g} req/s, every suffix "
                 f"drifts by {cfg['drift_per_second']:g} per second from t = {onset:g} s",
                 fontsize=11)
    save(fig, f"{d}/drift.png")


def canary(d):
    """One column per case, two rows on one time axis: wrong served hits per
    served hit, then the hit rate, per second and per policy (A: in place,
    B: the candidate), with the canary's start and the judge's decision."""
    rows = read(f"{d}/timeline.csv")
    events = read(f"{d}/events.csv")
    with open(f"{d}/results.json") as f:
        res = json.load(f)
    cases = res["cases"]
    fig, axes = plt.subplots(2, len(cases), figsize=(6.5 * len(cases), 6.4), sharex=True,
                             squeeze=False)
    colors = {"A": "tab:blue", "B": "tab:orange"}
    for col, c in enumerate(cases):
        name = c["case"]
        top, bottom = axes[0][col], axes[1][col]
        for arm, label in (("A", "A: policy in place"), ("B", f"B: {c['candidate']['name']}")):
            mine = sorted((r for r in rows if r["case"] == name and r["arm"] == arm),
                          key=lambda r: int(r["t_s"]))
            x = [int(r["t_s"]) + 0.5 for r in mine]
            hits = [int(r["hits"]) for r in mine]
            wrong = [int(r["wrong_hits"]) / h if h else 0.0 for r, h in zip(mine, hits)]
            rate = [h / int(r["requests"]) if int(r["requests"]) else 0.0
                    for r, h in zip(mine, hits)]
            top.plot(x, wrong, color=colors[arm], lw=1.2, marker=".", ms=3, label=label)
            bottom.plot(x, rate, color=colors[arm], lw=1.2, marker=".", ms=3, label=label)
        for e in events:
            if e["case"] != name:
                continue
            t = float(e["t_s"])
            color = {"start": "tab:purple", "promote": "tab:green"}.get(e["action"], "tab:red")
            for ax in (top, bottom):
                ax.axvline(t, color=color, ls=":", lw=1.4)
            top.annotate(e["action"], (t, 1.0), xycoords=("data", "axes fraction"),
                         xytext=(3, -12), textcoords="offset points", fontsize=8, color=color)
        top.set_title(f"{name}: expected {c['expected']}, decided {c['verdict']}", fontsize=10)
        top.set_ylabel("wrong served hits / served hits")
        bottom.set_ylabel("hit rate")
        bottom.set_xlabel("time since the start of the run, s")
        bottom.set_ylim(0, 1.05)
        top.legend(fontsize=7, loc="upper left")
        bottom.legend(fontsize=7, loc="lower left")
    cfg = res["config"]
    fig.suptitle(f"Canary cache policies: {cfg['rate']:g} req/s, suffixes drift by "
                 f"{cfg['drift_per_second']:g} per second; the candidate takes "
                 f"{100 * cfg['share']:g}% of the prefixes", fontsize=11)
    save(fig, f"{d}/canary.png")


KINDS = {"drift": drift, "load": load, "correctness": correctness, "guard": guard,
         "sweep-ttl": sweep_ttl, "sweep-capacity": sweep_capacity, "picture": picture,
         "canary": canary}


def main():
    if len(sys.argv) != 3 or sys.argv[1] not in KINDS:
        print(__doc__, file=sys.stderr)
        return 2
    KINDS[sys.argv[1]](sys.argv[2])
    return 0


if __name__ == "__main__":
    sys.exit(main())
