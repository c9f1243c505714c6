#!/usr/bin/env python3
"""ResNet-50-sized analysis on one machine: every block's expanded weights, NMF and banding through the product path,
and the per-layer cost of this code next to a baseline commit's, in one run.

(a) product path: ResNet-50 (torchvision's layout, random weights saved as a bring-your-own model) analysed by
    analysis.pipeline.run with the auto recipe (every spatial conv and every block; no context figures, which are
    feature visualizations and dataset examples, not the tensor work timed here), n_jobs workers. Reports wall time,
    the peak summed RSS of the whole process tree (sampled every 0.2 s) and the size of the analysis folder.
(b) per layer: the same few tensors (expanded weights + tensor_report + JSON written) timed in a fresh process with
    this checkout's code and with the baseline's (a `git worktree` of --baseline under /tmp), one after the other.

    python bench/scale_resnet50.py                    # (a) and (b), baseline 1bf34d7
    python bench/scale_resnet50.py --skip-product     # (b) only
    python bench/scale_resnet50.py --skip-per-layer   # (a) only
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PEAK_PARTS: list[int] = []  # RSS of each process at the peak, largest first
LAYERS = ["layer2.0->layer2.1", "layer3.0->layer3.1", "layer3.5->layer4.0", "layer4.0->layer4.1"]

PER_LAYER = r'''
import json, resource, sys, time, tempfile
from pathlib import Path
import torch
torch.manual_seed(0)
torch.set_num_threads(1)
from analysis import recipes
from analysis.core import jsonio
from analysis.models.tv_resnet import resnet50
from analysis.per_tensor import tensor_report
try:
    from analysis.tensor_stage import tensor_of, _arrays_beside
except ImportError:  # the baseline: one pipeline module, everything in the JSON
    from analysis.pipeline import _tensor_job as tensor_of
    _arrays_beside = lambda path, report: report
model = resnet50().eval()
recipe = recipes.auto_recipe(model, 224)
jobs = {j.id: j for j in recipe.tensors}
out = []
with tempfile.TemporaryDirectory() as tmp:
    for tid in sys.argv[1:]:
        t0 = time.perf_counter(); w = tensor_of(model, jobs[tid], recipe)
        t1 = time.perf_counter(); report = tensor_report(w)
        t2 = time.perf_counter(); path = Path(tmp) / (tid.replace(">", "_") + ".json")
        jsonio.write_json(path, {"key": "x", **_arrays_beside(path, report)})
        t3 = time.perf_counter()
        size = sum(p.stat().st_size for p in Path(tmp).glob(path.stem + "*"))
        out.append({"id": tid, "shape": list(w.shape), "expand_s": t1 - t0, "report_s": t2 - t1, "write_s": t3 - t2,
                    "bytes": size, "peak_rss_gb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6})
        del w, report
print(json.dumps(out))
'''

PRODUCT = r'''
import sys, time
from pathlib import Path
import torch
from analysis.models.tv_resnet import resnet50
from analysis.pipeline import AnalysisConfig, ModelSpec, run
cache, n_jobs = Path(sys.argv[1]), int(sys.argv[2])
torch.manual_seed(0)
torch.save(resnet50().state_dict(), cache / "resnet50-random.pt")
spec = ModelSpec("resnet50-random", factory="analysis.models.tv_resnet:resnet50", weights=str(cache / "resnet50-random.pt"),
                 image_size=224, recipe={"context": []})
t0 = time.perf_counter()
run(AnalysisConfig(models=[spec], cache_dir=cache, n_jobs=n_jobs, device="cpu"))
print(f"RUN_SECONDS {time.perf_counter() - t0:.1f}")
'''


def tree_rss(pid: int) -> list[int]:
    import psutil

    try:
        root = psutil.Process(pid)
        procs = [root, *root.children(recursive=True)]
    except psutil.Error:
        return []
    sizes = []
    for p in procs:
        try:
            sizes.append(p.memory_info().rss)
        except psutil.Error:
            pass
    return sizes


def run_sampled(cmd: list[str], cwd: Path, env: dict | None = None) -> tuple[str, float, float]:
    """(stdout, wall seconds, peak summed RSS of the process tree in GB)."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=cwd, stdout=subprocess.PIPE, text=True, env=env)
    peak = [0]

    def sample():
        while proc.poll() is None:
            sizes = tree_rss(proc.pid)
            if sum(sizes) > peak[0]:
                peak[0] = sum(sizes)
                PEAK_PARTS[:] = sorted(sizes, reverse=True)
            time.sleep(0.2)

    thread = threading.Thread(target=sample, daemon=True)
    thread.start()
    out, _ = proc.communicate()
    thread.join()
    if proc.returncode:
        sys.exit(f"scale_resnet50: {' '.join(cmd[:3])} failed with exit status {proc.returncode}")
    return out, time.perf_counter() - t0, peak[0] / 1e9


def per_layer(code_root: Path) -> list[dict]:
    import os

    env = {**os.environ, "PYTHONPATH": str(code_root), "OMP_WAIT_POLICY": "PASSIVE"}
    out, _, _ = run_sampled([sys.executable, "-c", PER_LAYER, *LAYERS], code_root, env)
    return json.loads(out.strip().splitlines()[-1])


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--baseline", default="1bf34d7")
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--skip-product", action="store_true")
    ap.add_argument("--skip-per-layer", action="store_true")
    args = ap.parse_args()
    if not args.skip_product:
        import os

        with tempfile.TemporaryDirectory() as tmp:
            env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_WAIT_POLICY": "PASSIVE"}
            out, wall, peak = run_sampled([sys.executable, "-c", PRODUCT, tmp, str(args.jobs)], ROOT, env)
            folder = Path(tmp) / "analysis"
            size = sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())
            n = sum(1 for _ in (folder / "resnet50-random" / "tensors").glob("*.json"))
            secs = next((line.split()[1] for line in out.splitlines() if line.startswith("RUN_SECONDS")), "?")
            print(f"(a) product path, {args.jobs} workers: {n} tensors, analysis {secs} s (process {wall:.1f} s), "
                  f"peak RSS of the process tree {peak:.2f} GB "
                  f"({' + '.join(f'{b / 1e9:.2f}' for b in PEAK_PARTS if b > 5e7)}), analysis folder {size / 1e6:.0f} MB")
    if args.skip_per_layer:
        return 0
    base = Path(tempfile.gettempdir()) / f"vw-baseline-{args.baseline}"
    if not base.exists():
        subprocess.run(["git", "worktree", "add", "--detach", str(base), args.baseline], cwd=ROOT, check=True,
                       capture_output=True)
    print("(b) per layer, one process each, 1 thread: expand / report / write seconds, file MB, peak RSS GB")
    results = {"baseline " + args.baseline: per_layer(base), "this checkout": per_layer(ROOT)}
    for label, rows in results.items():
        for r in rows:
            print(f"  {label:20s} {r['id']:22s} {str(r['shape']):22s} {r['expand_s']:6.2f} {r['report_s']:6.2f} "
                  f"{r['write_s']:6.2f}  {r['bytes'] / 1e6:6.1f} MB  {r['peak_rss_gb']:.2f} GB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
