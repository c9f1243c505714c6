"""Feature visualization on the CPU: this checkout against another (e.g. before a change), alternating, one run.

    git worktree add --detach /tmp/base <rev>
    python bench/featureviz_threads.py --base /tmp/base [--layer features.7] [--neurons 48] [--steps 128] [--rounds 2]

Each run is a fresh interpreter that loads MobileNetV2 (real ImageNet weights, analysis.models) and renders
`--neurons` channels of `--layer` at 64 px with `num_threads=2`, as the build does on 2 cores. Prints wall and CPU
seconds per run, the medians, their ratios (this checkout / base), and how far the pictures of the last two runs
differ. CPU seconds are the steadier number on a shared machine.
"""
from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent.parent

CHILD = """
import json, sys, time
sys.path.insert(0, sys.argv[1])
import numpy as np
from analysis.models import load
from analysis.featureviz.render import visualize
model = load("mobilenet-v2").eval()
t0, c0 = time.perf_counter(), time.process_time()
images = visualize(model, sys.argv[2], list(range(int(sys.argv[3]))), size=64, steps=int(sys.argv[4]), num_threads=2)
print(json.dumps({"wall": time.perf_counter() - t0, "cpu": time.process_time() - c0}))
np.save(sys.argv[5], images)
"""


def run(checkout: Path, args: argparse.Namespace, out: Path) -> dict:
    done = subprocess.run([sys.executable, "-c", CHILD, str(checkout), args.layer, str(args.neurons),
                           str(args.steps), str(out)], capture_output=True, text=True, check=True, cwd=checkout)
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base", type=Path, required=True, help="the other checkout (a git worktree)")
    parser.add_argument("--layer", default="features.7")
    parser.add_argument("--neurons", type=int, default=48)
    parser.add_argument("--steps", type=int, default=128)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    runs: dict[str, list[dict]] = {"base": [], "this": []}
    with tempfile.TemporaryDirectory() as tmp:
        pictures = {name: Path(tmp) / f"{name}.npy" for name in runs}
        for i in range(args.rounds):
            for name, checkout in (("base", args.base.resolve()), ("this", HERE)):
                r = run(checkout, args, pictures[name])
                runs[name].append(r)
                print(f"round {i + 1} {name:4s}: wall {r['wall']:6.2f} s, CPU {r['cpu']:6.2f} s", flush=True)
        diff = np.abs(np.load(pictures["base"]) - np.load(pictures["this"]))
    med = {name: {k: statistics.median(r[k] for r in rs) for k in ("wall", "cpu")} for name, rs in runs.items()}
    for k in ("wall", "cpu"):
        print(f"median {k}: base {med['base'][k]:.2f} s, this {med['this'][k]:.2f} s, "
              f"ratio {med['this'][k] / med['base'][k]:.2f}")
    print(f"pictures, this vs base: mean |diff| {diff.mean():.4f}, max {diff.max():.4f}")


if __name__ == "__main__":
    main()
