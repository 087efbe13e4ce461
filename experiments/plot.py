#!/usr/bin/env python3
"""Plots for sil-lab's reports (Debian's python3-matplotlib).

  plot.py drift DIR   reads DIR/results.csv, writes DIR/divergence.png and
                      DIR/prediction_error.png
"""
import csv
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def read(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def drift(d):
    rows = read(f"{d}/results.csv")
    step = [float(r["step"]) for r in rows]
    shift = [float(r["suffix_mean"]) for r in rows]

    fig, ax1 = plt.subplots(figsize=(7, 4))
    ax1.plot(shift, [float(r["cosine_p50"]) for r in rows], "o-", label="cosine distance, p50")
    ax1.fill_between(shift, [float(r["cosine_p05"]) for r in rows],
                     [float(r["cosine_p95"]) for r in rows], alpha=0.2,
                     label="cosine distance, p5-p95")
    ax1.set_xlabel("suffix mean shift (step x strength), feature units")
    ax1.set_ylabel("cosine distance (cached vs fresh)")
    ax2 = ax1.twinx()
    ax2.plot(shift, [float(r["l2_p50"]) for r in rows], "s--", color="tab:red", label="L2, p50")
    ax2.set_ylabel("L2 distance (cached vs fresh)")
    lines = ax1.get_legend_handles_labels()
    lines2 = ax2.get_legend_handles_labels()
    ax1.legend(lines[0] + lines2[0], lines[1] + lines2[1], loc="lower right")
    ax1.set_title("Embedding divergence under suffix drift (prefix fixed)")
    fig.tight_layout()
    fig.savefig(f"{d}/divergence.png", dpi=120)

    fig, ax = plt.subplots(figsize=(7, 4))
    ax.plot(shift, [float(r["pred_err_p50"]) for r in rows], "o-", label="p50")
    ax.plot(shift, [float(r["pred_err_p95"]) for r in rows], "^-", label="p95")
    ax.set_xlabel("suffix mean shift (step x strength), feature units")
    ax.set_ylabel("|prediction(cached) - prediction(fresh)|")
    ax.set_title("Prediction error of a reused embedding under drift")
    ax.legend()
    fig.tight_layout()
    fig.savefig(f"{d}/prediction_error.png", dpi=120)
    del step


def main():
    if len(sys.argv) != 3 or sys.argv[1] not in ("drift",):
        print(__doc__, file=sys.stderr)
        return 2
    {"drift": drift}[sys.argv[1]](sys.argv[2])
    return 0


if __name__ == "__main__":
    sys.exit(main())
