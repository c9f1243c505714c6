"""The tensor stage's work under two glibc mmap thresholds (analysis/heap.py), side by side in one run.

    python bench/tensor_heap.py [--model efficientnet-lite0] [--thresholds 131072 33554432] [--rounds 2]

Each measurement is a fresh interpreter that sets the threshold the way a worker does (heap.keep_large_blocks_mapped
at the given MMAP_THRESHOLD), then runs every tensor of the model's recipe through analysis.tensor_stage._compute in
that one process, on one torch thread, as a worker would: the CPU seconds of the loop are printed. The thresholds
alternate, so both see the same machine load. Then the same tensors go through parallel.unordered on 2 workers at
the threshold the code has now (wall seconds).
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def tasks_of(name: str):
    from analysis import per_tensor, recipes
    from analysis.core.spec import Subject
    from analysis.models import registry
    from analysis.tensor_stage import _task

    model = registry.family_of(name).load(name, None).eval()
    recipe = recipes.recipe_for(name, model)
    analyses = list(per_tensor.registered().items())
    subject = Subject(name, model, {}, recipe)
    return [_task(subject, job, None, "cpu", analyses) for job in recipe.tensors]


def child(name: str, threshold: int) -> None:
    from analysis import heap
    from analysis.tensor_stage import _compute

    heap.MMAP_THRESHOLD = threshold
    tasks = tasks_of(name)
    t0 = time.process_time()
    for task in tasks:
        _compute(*task)
    print(json.dumps({"cpu_s": time.process_time() - t0, "tensors": len(tasks)}))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="efficientnet-lite0")
    ap.add_argument("--thresholds", nargs="+", type=int, default=[128 * 1024, 32 * 1024 * 1024])
    ap.add_argument("--rounds", type=int, default=2)
    args = ap.parse_args()
    cpu: dict[int, list[float]] = {t: [] for t in args.thresholds}
    for _ in range(args.rounds):
        for t in args.thresholds:
            out = subprocess.run([sys.executable, __file__, "--child", args.model, str(t)], capture_output=True,
                                 text=True, check=True, cwd=ROOT).stdout
            cpu[t].append(json.loads(out.strip().splitlines()[-1])["cpu_s"])
    from analysis import heap, parallel
    from analysis.tensor_stage import _compute

    tasks = tasks_of(args.model)
    w0 = time.perf_counter()
    for _ in parallel.unordered(_compute, tasks, 2):
        pass
    wall = time.perf_counter() - w0
    print(f"# {args.model}: {len(tasks)} tensors, load avg {os.getloadavg()[0]:.1f}, {os.cpu_count()} cores")
    for t, values in cpu.items():
        print(f"in one process, mmap threshold {t:>9} B: CPU {statistics.median(values):6.1f} s "
              f"(runs {', '.join(f'{v:.1f}' for v in values)})")
    print(f"on 2 workers at the code's threshold ({heap.MMAP_THRESHOLD} B): {wall:.1f} s wall")


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        child(sys.argv[2], int(sys.argv[3]))
    else:
        main()
