"""Batched one-sided NMF (analysis.nmf) vs a per-neuron scikit-learn NMF loop, side by side in one run.

Both factor the same non-negative matrices X_o = [relu(W_o), relu(-W_o)] ([h*w, 2*in]) with the same k;
scikit-learn uses its defaults for this shape (init="nndsvda", solver="cd", tol=1e-4, max_iter=200).
Time is the median of `--repeats` runs of the whole layer, the two methods alternating so that both see
the same machine load (ours includes the factor alignment); error is
the mean over neurons of ||X - S F|| / ||X||. Prints a markdown table.

    python bench/nmf_speed.py [--repeats 5] [--k 3]
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
import warnings
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from analysis.nmf import one_sided_nmf, reconstruction_error, split_matrix  # noqa: E402

SHAPES = [(64, 64, 3, 3), (128, 48, 5, 5)]


def structured_weight(shape: tuple[int, int, int, int], rng: np.random.Generator, noise: float = 0.3) -> np.ndarray:
    """Each neuron = 3 smooth non-negative spatial patterns (shared by the layer) x signed channel loadings
    with neuron-specific strengths, plus Gaussian noise of `noise` x the signal's std."""
    out, cin, h, w = shape
    yy, xx = np.mgrid[0:h, 0:w] / max(h - 1, 1)
    patterns = np.stack(
        [
            np.exp(-((yy - 0.5) ** 2 + (xx - 0.5) ** 2) / 0.08),  # centre blob
            np.clip(1.0 - 2.0 * yy, 0, None),  # top band
            np.clip(2.0 * xx - 1.0, 0, None),  # right band
        ]
    )
    loadings = rng.standard_normal((out, 3, cin)) * rng.uniform(0.2, 1.0, (out, 3, 1))
    signal = np.einsum("khw,oki->oihw", patterns, loadings)
    return signal + noise * signal.std() * rng.standard_normal(shape)


def sklearn_layer(x: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    from sklearn.decomposition import NMF
    from threadpoolctl import threadpool_limits

    s_all, f_all = [], []
    # One BLAS thread, as analysis.nmf uses: sklearn's small products are faster that way too.
    with threadpool_limits(1, "blas"):
        for xo in x:
            model = NMF(n_components=k, init="nndsvda", solver="cd", tol=1e-4, max_iter=200, random_state=0)
            s_all.append(model.fit_transform(xo))
            f_all.append(model.components_)
    return np.stack(s_all), np.stack(f_all)


def rel_error(x: np.ndarray, s: np.ndarray, f: np.ndarray) -> float:
    num = np.linalg.norm((x - s @ f).reshape(len(x), -1), axis=1)
    return float(np.mean(num / np.linalg.norm(x.reshape(len(x), -1), axis=1)))


def timed_pair(fn_a, fn_b, repeats: int):
    """Median wall time of each of two functions, run alternately so both see the same machine load."""
    times_a, times_b = [], []
    for _ in range(repeats):
        t0 = time.perf_counter()
        res_a = fn_a()
        t1 = time.perf_counter()
        res_b = fn_b()
        t2 = time.perf_counter()
        times_a.append(t1 - t0)
        times_b.append(t2 - t1)
    return statistics.median(times_a), res_a, statistics.median(times_b), res_b


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--k", type=int, default=3)
    args = ap.parse_args()
    warnings.filterwarnings("ignore")  # sklearn's ConvergenceWarning at max_iter, once per neuron
    rng = np.random.default_rng(0)
    rows = []
    for shape in SHAPES:
        for kind in ("random", "structured"):
            w = rng.standard_normal(shape) if kind == "random" else structured_weight(shape, rng)
            x = split_matrix(w)
            one_sided_nmf(w, args.k)  # warm-up (imports, first-call allocations)
            t_sk, (s_sk, f_sk), t_us, (spatial, _, split) = timed_pair(
                lambda: sklearn_layer(x, args.k), lambda: one_sided_nmf(w, args.k, return_split=True), args.repeats
            )
            e_sk = rel_error(x, s_sk, f_sk)
            e_us = float(reconstruction_error(w, spatial, split, per_neuron=True).mean())
            rows.append((shape, kind, t_sk, t_us, e_sk, e_us))
    print(f"k={args.k}, median wall time of {args.repeats} alternating runs per cell\n")
    print(
        "| shape | weights | sklearn loop (s) | batched (s) | speed-up | sklearn error | batched error "
        "| error ratio |"
    )
    print("|---|---|---:|---:|---:|---:|---:|---:|")
    for shape, kind, t_sk, t_us, e_sk, e_us in rows:
        print(
            f"| {list(shape)} | {kind} | {t_sk:.3f} | {t_us:.4f} | {t_sk / t_us:.1f}x | {e_sk:.4f} | {e_us:.4f} "
            f"| {e_us / e_sk:.3f} |"
        )


if __name__ == "__main__":
    main()
