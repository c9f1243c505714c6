"""Banding-lab training, measured: per variant and seed, held-out accuracy, banding of the last conv and CPU seconds.

    python bench/lab_train.py [--seeds 0 1 2] [--set steps=300 ...] [--compare REV]

Trains every model in this one process, one after another, on one torch thread (what each build worker uses),
into a temporary cache, and prints a markdown table. CPU seconds are `time.process_time()` around
`analysis.models.lab.train_model` (data already loaded, as in a build worker that trained a model before).
R and C are the row and column shares of the last conv (`conv6`), pooled over the layer, on the trained
weights W. With `--compare REV` the lab of git revision REV (its `analysis/models/lab.py`, default config) is
trained in the same process, alternating model by model, so the two CPU columns see the same machine load.
"""
from __future__ import annotations

import argparse
import dataclasses
import importlib.util
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402

from analysis.core import data  # noqa: E402
from analysis.core.banding import banding_scores  # noqa: E402
from analysis.models import lab  # noqa: E402


def _old_lab(rev: str):
    source = subprocess.run(["git", "-C", str(ROOT), "show", f"{rev}:analysis/models/lab.py"], check=True,
                            capture_output=True, text=True).stdout
    path = Path(tempfile.mkdtemp()) / "old_lab.py"
    path.write_text(source)
    spec = importlib.util.spec_from_file_location("old_lab", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules["old_lab"] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def _measure(module, variant: str, seed: int, config) -> dict:
    t0 = time.process_time()
    model, init, info = module.train_model(variant, seed, config)
    cpu = time.process_time() - t0
    w = model.conv6.weight.detach().numpy()
    s = banding_scores(w)
    d = banding_scores(w - init["conv6.weight"].numpy())
    return {"variant": variant, "seed": seed, "acc": info["test_accuracy"], "R": s["R_layer"], "C": s["C_layer"],
            "Rd": d["R_layer"], "Cd": d["C_layer"], "cpu": cpu}


def _parse(value: str):
    for cast in (int, float):
        try:
            return cast(value)
        except ValueError:
            pass
    if "," in value:
        return tuple(_parse(v) for v in value.split(","))
    return value


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="*", default=None, help="default: LabConfig().seeds")
    parser.add_argument("--variants", nargs="*", default=list(lab.VARIANTS))
    parser.add_argument("--set", action="append", default=[], metavar="FIELD=VALUE",
                        help="override a LabConfig field, e.g. steps=300 or widths=8,16,32,64,64,64")
    parser.add_argument("--compare", metavar="REV", help="also train the lab of this git revision, side by side")
    args = parser.parse_args()
    torch.set_num_threads(1)
    overrides = {k: _parse(v) for k, v in (s.split("=", 1) for s in args.set)}
    config = dataclasses.replace(lab.LabConfig(), **overrides)
    seeds = args.seeds if args.seeds is not None else list(config.seeds)
    data.mnist_arrays()  # loaded once per process, like a build worker
    old = _old_lab(args.compare) if args.compare else None
    if old is not None:
        old_config = old.LabConfig()
        for name in old_config.photos:
            data.load_photo(name)
    rows, old_rows = [], []
    for variant in args.variants:
        for seed in seeds:
            rows.append(_measure(lab, variant, seed, config))
            if old is not None:
                old_rows.append(_measure(old, variant, seed, old_config))
            print(f"  {variant} s{seed}: acc {rows[-1]['acc']:.3f}, R/C {rows[-1]['R'] / rows[-1]['C']:.2f}, "
                  f"{rows[-1]['cpu']:.1f} CPU-s" + (f" (old: {old_rows[-1]['cpu']:.1f} CPU-s, acc "
                                                  f"{old_rows[-1]['acc']:.3f})" if old_rows else ""),
                  file=sys.stderr, flush=True)
    print(f"config: {overrides or 'default LabConfig'}; torch {torch.__version__}, 1 thread\n")
    head = "| variant | seed | test acc. | R (W) | C (W) | R/C (W) | R/C (W-W0) | CPU s |"
    rule = "|---|---:|---:|---:|---:|---:|---:|---:|"
    if old_rows:
        head += " CPU s, REV | acc., REV |"
        rule += "---:|---:|"
    print(head)
    print(rule)
    for i, r in enumerate(rows):
        line = (f"| {r['variant']} | {r['seed']} | {r['acc']:.3f} | {r['R']:.3f} | {r['C']:.3f} | {r['R'] / r['C']:.2f} "
                f"| {r['Rd'] / r['Cd']:.2f} | {r['cpu']:.1f} |")
        if old_rows:
            line += f" {old_rows[i]['cpu']:.1f} | {old_rows[i]['acc']:.3f} |"
        print(line)
    print()
    print("| variant | median R/C (W) | median C/R (W) | min acc. | median CPU s |" + (" median CPU s, REV |" if old_rows else ""))
    print("|---|---:|---:|---:|---:|" + ("---:|" if old_rows else ""))
    for variant in args.variants:
        sel = [r for r in rows if r["variant"] == variant]
        line = (f"| {variant} | {statistics.median(r['R'] / r['C'] for r in sel):.2f} | "
                f"{statistics.median(r['C'] / r['R'] for r in sel):.2f} | {min(r['acc'] for r in sel):.3f} | "
                f"{statistics.median(r['cpu'] for r in sel):.1f} |")
        if old_rows:
            line += f" {statistics.median(r['cpu'] for r in old_rows if r['variant'] == variant):.1f} |"
        print(line)
    total = sum(r["cpu"] for r in rows)
    print(f"\ntotal CPU: {total:.1f} s" + (f" (REV: {sum(r['cpu'] for r in old_rows):.1f} s)" if old_rows else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
