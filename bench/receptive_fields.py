"""Receptive fields of every analysed layer (analysis/example_pass.receptive_fields), as the examples stage measures
them once per weights: CPU seconds (`time.process_time`, one torch thread) of the probe alone and with the longer
probes for fields the probe's border cuts off, side by side in one run, and the deepest layers' fields both ways.

    python bench/receptive_fields.py [--models mobilenet-v2,efficientnet-lite0,lab-gap-s0]

Reads the repository's .cache for trained lab weights (ImageNet weights come from their packages).
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))


def main() -> None:
    import torch

    from analysis import example_pass as xp
    from analysis.examples_stage import analysed_layers
    from analysis.featureviz.hooks import frozen
    from examples_pass import subject

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", default="mobilenet-v2,efficientnet-lite0,lab-gap-s0")
    args = ap.parse_args()
    torch.set_num_threads(1)
    wide = xp._wide_extents
    print(f"# receptive fields (load avg {os.getloadavg()[0]:.1f}, one torch thread)")
    print("| model | layers | probe (px) | CPU, probe only (s) | CPU, with longer probes (s) | deepest 3 fields, probe only "
          "| with longer probes (size, stride, offset) |")
    print("|---|---:|---:|---:|---:|---|---|")
    for name in args.models.split(","):
        s = subject(name, REPO / ".cache")
        hooks = [s.recipe.hook(n) for n in analysed_layers(s.recipe)]
        net = s.recipe.network(s.model)
        probe = max(32, int(s.recipe.image_size if name.startswith("lab-") else
                            (s.recipe.photo_size or s.recipe.image_size)))
        cells = []
        for longer in (False, True):
            xp._wide_extents = wide if longer else (lambda *a, **k: {})
            c0 = time.process_time()
            with frozen(net):
                found = xp.receptive_fields(net, hooks, probe, int(s.info.get("input_channels", 3)))
            cpu = time.process_time() - c0
            deep = ", ".join(f"{found[h][0].size} / {found[h][0].stride[0]:g} / {found[h][0].offset[0]:g}"
                             for h in hooks[-3:])
            cells.append((cpu, deep))
        xp._wide_extents = wide
        print(f"| {name} | {len(hooks)} | {probe} | {cells[0][0]:.2f} | {cells[1][0]:.2f} | {cells[0][1]} | "
              f"{cells[1][1]} |", flush=True)


if __name__ == "__main__":
    main()
