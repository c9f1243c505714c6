"""The banding-lab claim, checked: per seed, R and C of the last conv for every variant, and the summary ratios.

    python bench/banding_lab.py [--cache-dir .cache]

Reads `<cache>/analysis/lab-summary.json` written by `python build.py` (run that first; it trains the lab from
nothing in a cold cache) and prints a markdown table. Expected: gap R/C >= 1.5, rotated C/R >= 1.5, flatten
clearly less banded than gap.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cache-dir", type=Path, default=Path(__file__).resolve().parent.parent / ".cache")
    args = parser.parse_args()
    path = args.cache_dir / "analysis" / "lab-summary.json"
    if not path.is_file():
        print(f"{path}: not found; run `python build.py` first", file=sys.stderr)
        return 1
    summary = json.loads(path.read_text())
    print("| variant | seed | test acc. | R (W) | C (W) | R/C (W) | R (W-W0) | C (W-W0) | R/C (W-W0) |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in sorted(summary["rows"], key=lambda r: (["gap", "flatten", "rotated"].index(r["variant"]), r["seed"])):
        print(f"| {r['variant']} | {r['seed']} | {r['test_accuracy']:.3f} | {r['R']:.3f} | {r['C']:.3f} | "
              f"{r['R'] / r['C']:.2f} | {r['R_delta']:.3f} | {r['C_delta']:.3f} | {r['R_delta'] / r['C_delta']:.2f} |")
    print()
    print("| variant | mean R/C (W) | mean C/R (W) | mean R/C (W-W0) |")
    print("|---|---:|---:|---:|")
    for v, s in summary["variants"].items():
        print(f"| {v} | {s['R_over_C']:.2f} | {s['C_over_R']:.2f} | {s['R_delta']['mean'] / s['C_delta']['mean']:.2f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
