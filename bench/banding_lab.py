"""The banding-lab claim, checked: per seed, R and C of the last conv for every variant, and the summary ratios.

    python bench/banding_lab.py [--cache-dir .cache]

Reads `<cache>/analysis/lab-summary.json` written by `python build.py` (run that first; it trains the lab from
nothing in a cold cache) and prints a markdown table. The claim (issue 12), on the trained weights W: every network
>= 90% held-out accuracy; per variant, the median over seeds of each network's ratio: gap R/C >= 1.8, rotated
C/R >= 1.8, flatten R/C <= 0.75 x gap's.
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
    print("| variant | median R/C (W) | median C/R (W) | median R/C (W-W0) | test acc. min-max |")
    print("|---|---:|---:|---:|---|")
    for v, s in summary["variants"].items():
        print(f"| {v} | {s['median_R_over_C']:.2f} | {s['median_C_over_R']:.2f} | {s['median_R_over_C_delta']:.2f} | "
              f"{s['test_accuracy']['min']:.3f}-{s['test_accuracy']['max']:.3f} |")
    v = summary["variants"]
    checks = {
        "every network >= 90% held-out accuracy": all(r["test_accuracy"] >= 0.90 for r in summary["rows"]),
        "gap median R/C >= 1.8": v["gap"]["median_R_over_C"] >= 1.8,
        "rotated median C/R >= 1.8": v["rotated"]["median_C_over_R"] >= 1.8,
        "flatten median R/C <= 0.75 x gap's": v["flatten"]["median_R_over_C"] <= 0.75 * v["gap"]["median_R_over_C"],
    }
    print()
    for name, ok in checks.items():
        print(f"- {name}: {'met' if ok else 'NOT MET'}")
    return 0 if all(checks.values()) else 2


if __name__ == "__main__":
    sys.exit(main())
