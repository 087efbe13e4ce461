#!/usr/bin/env python3
"""Independent reference implementation of the SIL model, in NumPy float64.

It shares no code with the C++ model: it re-implements, from the written spec
in docs/model.md and docs/weights-format.md, the splitmix64 weight
initialization, the transformer encoder and the head.

  reference_model.py              print the reference value used by
                                  tests/core/model_test.cpp (ReferenceValue)
  reference_model.py --check BIN  run BIN (build/sil-model) on random inputs
                                  for every preset and compare; exit 1 if the
                                  two implementations disagree

Needs Debian's python3-numpy (run it with /usr/bin/python3).
"""
import math
import subprocess
import sys

import numpy as np

MASK = (1 << 64) - 1
GOLDEN = 0x9E3779B97F4A7C15
PRESETS = {
    "seed": dict(input_dim=32, d_model=64, heads=4, layers=2, ff_dim=128),
    "base": dict(input_dim=32, d_model=256, heads=8, layers=4, ff_dim=1024),
}


class Stream:
    """splitmix64, vectorized: the i-th draw (1-based) mixes seed + i * GOLDEN."""

    def __init__(self, seed):
        self.seed = seed & MASK
        self.drawn = 0

    def uniform(self, n):
        i = np.arange(self.drawn + 1, self.drawn + n + 1, dtype=np.uint64)
        self.drawn += n
        with np.errstate(over="ignore"):
            z = np.uint64(self.seed) + i * np.uint64(GOLDEN)
            z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
            z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
            z = z ^ (z >> np.uint64(31))
        return (z >> np.uint64(11)).astype(np.float64) * 2.0**-53


def init_weights(cfg, seed):
    """Tensors in file order, each float32-rounded, then held as float64."""
    rng = Stream(seed)
    d, f, D = cfg["d_model"], cfg["ff_dim"], cfg["input_dim"]

    def tensor(name, rows, cols):
        u = rng.uniform(rows * cols) * 2.0 - 1.0
        if name.endswith("_gamma"):
            vals = 1.0 + u * 0.1
        elif name.startswith("w"):
            vals = u * math.sqrt(6.0 / (rows + cols))
        else:
            vals = u * 0.1
        return vals.astype(np.float32).astype(np.float64).reshape(rows, cols)

    w = {"w_in": tensor("w_in", D, d), "b_in": tensor("b_in", 1, d), "layers": []}
    for _ in range(cfg["layers"]):
        layer = {}
        for name, rows, cols in [
            ("wq", d, d), ("bq", 1, d), ("wk", d, d), ("bk", 1, d), ("wv", d, d), ("bv", 1, d),
            ("wo", d, d), ("bo", 1, d), ("ln1_gamma", 1, d), ("ln1_beta", 1, d),
            ("w1", d, f), ("b1", 1, f), ("w2", f, d), ("b2", 1, d),
            ("ln2_gamma", 1, d), ("ln2_beta", 1, d),
        ]:
            layer[name] = tensor(name, rows, cols)
        w["layers"].append(layer)
    w["w_head"] = tensor("w_head", d, 1)
    w["b_head"] = tensor("b_head", 1, 1)
    return w


def layer_norm(x, gamma, beta):
    mu = x.mean(axis=1, keepdims=True)
    var = ((x - mu) ** 2).mean(axis=1, keepdims=True)
    return (x - mu) / np.sqrt(var + 1e-5) * gamma + beta


def encode(cfg, w, x):
    """x: T x D float64 -> embedding (d_model,)."""
    d, heads = cfg["d_model"], cfg["heads"]
    dk = d // heads
    h = x @ w["w_in"] + w["b_in"]
    for l in w["layers"]:
        q = h @ l["wq"] + l["bq"]
        k = h @ l["wk"] + l["bk"]
        v = h @ l["wv"] + l["bv"]
        att = np.zeros_like(h)
        for i in range(heads):
            s = slice(i * dk, (i + 1) * dk)
            scores = q[:, s] @ k[:, s].T / math.sqrt(dk)
            scores = np.exp(scores - scores.max(axis=1, keepdims=True))
            scores /= scores.sum(axis=1, keepdims=True)
            att[:, s] = scores @ v[:, s]
        h = layer_norm(h + att @ l["wo"] + l["bo"], l["ln1_gamma"], l["ln1_beta"])
        ff = np.maximum(h @ l["w1"] + l["b1"], 0.0)
        h = layer_norm(h + ff @ l["w2"] + l["b2"], l["ln2_gamma"], l["ln2_beta"])
    return h.mean(axis=0)


def head(w, e):
    z = float(e @ w["w_head"][:, 0] + w["b_head"][0, 0])
    return 1.0 / (1.0 + math.exp(-z))


def fixed_input():
    """The input of tests/core/model_test.cpp ReferenceValue: 3 rows of 32."""
    return np.array([[((t * 32 + i) % 7 - 3) * 0.25 for i in range(32)] for t in range(3)])


def check(binary):
    rng = np.random.default_rng(20261126)
    worst = 0.0
    for name, cfg in PRESETS.items():
        w = init_weights(cfg, 42)
        inputs = [rng.normal(0.0, 1.0, size=(t, cfg["input_dim"])).astype(np.float32)
                  for t in (1, 2, 5, 16)]
        text = "".join(f"{x.shape[0]}\n" + " ".join(f"{v:.9g}" for v in x.ravel()) + "\n"
                       for x in inputs)
        out = subprocess.run([binary, "predict", "--preset", name, "--seed", "42"], input=text,
                             capture_output=True, text=True, check=True).stdout.split("\n")
        for x, line in zip(inputs, out):
            got = np.array([float(v) for v in line.split()])
            e = encode(cfg, w, x.astype(np.float64))
            p = head(w, e)
            dp = abs(got[0] - p)
            de = float(np.max(np.abs(got[1:] - e)))
            worst = max(worst, dp)
            print(f"{name} T={x.shape[0]:2d}: prediction cpp={got[0]:.7f} numpy={p:.7f} "
                  f"|diff|={dp:.2e}; embedding max|diff|={de:.2e}")
            if dp > 1e-5 or de > 1e-4:
                print("MISMATCH: the C++ model disagrees with the reference", file=sys.stderr)
                return 1
    print(f"ok: worst prediction difference {worst:.2e} (tolerance 1e-5)")
    return 0


def main():
    if len(sys.argv) == 3 and sys.argv[1] == "--check":
        return check(sys.argv[2])
    if len(sys.argv) != 1:
        print(__doc__, file=sys.stderr)
        return 2
    cfg = PRESETS["seed"]
    w = init_weights(cfg, 42)
    e = encode(cfg, w, fixed_input())
    print(f"preset seed, seed 42, fixed 3x32 input:")
    print(f"prediction {head(w, e):.12f}")
    print("embedding[0:4] " + " ".join(f"{v:.12f}" for v in e[:4]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
