"""A/B: a content-only rebuild (and a no-change rebuild) of the default site by this tree and by a base revision,
alternating on the same edit in one run, with the two built sites compared byte for byte.

Each tree is a temp copy (the base from ``git archive``, this one from the working tree), with its own copy of
.cache/ (a base whose analysis code differs recomputes its analyses in the untimed first build). Each round edits the
main article of both the same way, then runs ``python build.py`` of each in a fresh process, in alternating order;
"no change" rounds rebuild without an edit (the render cache serves every page). Reported: median wall and median
CPU (user+sys of the build and everything it waited for, its worker process included) per tree, and B/A.

    python bench/ab_rebuild.py --base a1aaa73 [--rounds 9]
"""
from __future__ import annotations

import argparse
import hashlib
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
MAIN = "content/visualizing-weights/index.md"


def tree(dest: Path, base: str | None) -> Path:
    dest.mkdir(parents=True)
    if base:
        archive = subprocess.run(["git", "archive", base], cwd=REPO, capture_output=True, check=True).stdout
        subprocess.run(["tar", "-x", "-C", str(dest)], input=archive, check=True)
    else:
        for name in ("build.py", "site.yml"):
            shutil.copy(REPO / name, dest / name)
        for name in ("article", "analysis", "templates", "content"):
            shutil.copytree(REPO / name, dest / name, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree(REPO / ".cache", dest / ".cache", symlinks=True)
    return dest


def timed(root: Path, env: dict[str, str]) -> tuple[float, float]:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    done = subprocess.run([sys.executable, "build.py"], cwd=root, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode:
        raise SystemExit(f"{root}: build failed\n{done.stdout}{done.stderr}")
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def digest(site: Path) -> str:
    h = hashlib.sha256()
    for f in sorted(p for p in site.rglob("*") if p.is_file()):
        h.update(f.relative_to(site).as_posix().encode() + b"\0" + f.read_bytes())
    return h.hexdigest()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--base", required=True, help="git revision to compare with (A)")
    ap.add_argument("--rounds", type=int, default=9)
    args = ap.parse_args()
    env = {k: v for k, v in os.environ.items() if not k.startswith("VW_") and k != "PYTHONDONTWRITEBYTECODE"}
    with tempfile.TemporaryDirectory(prefix="vw-ab-") as tmpname:
        trees = {"A": tree(Path(tmpname) / "a", args.base), "B": tree(Path(tmpname) / "b", None)}
        for root in trees.values():
            timed(root, env)  # analyses (a base may recompute them), figures: not what is measured
            timed(root, env)
        rows: dict[str, dict[str, list[tuple[float, float]]]] = {"edit": {"A": [], "B": []},
                                                                  "no change": {"A": [], "B": []}}
        same = True
        for i in range(args.rounds):
            order = ("A", "B") if i % 2 == 0 else ("B", "A")
            for root in trees.values():
                index = root / MAIN
                index.write_text(index.read_text(encoding="utf-8") + f"\nEdited in A/B round {i}.\n", "utf-8")
            for name in order:
                rows["edit"][name].append(timed(trees[name], env))
            for name in order:
                rows["no change"][name].append(timed(trees[name], env))
            same &= digest(trees["A"] / "site") == digest(trees["B"] / "site")
    print(f"# A = {args.base}, B = this tree; median of {args.rounds} (load avg {os.getloadavg()[0]:.1f}, "
          f"{os.cpu_count()} cores); sites byte-identical every round: {same}")
    print("| rebuild | A wall / CPU (s) | B wall / CPU (s) | B/A wall | B/A CPU |")
    print("|---|---:|---:|---:|---:|")
    for what, by in rows.items():
        w = {k: statistics.median(x[0] for x in v) for k, v in by.items()}
        c = {k: statistics.median(x[1] for x in v) for k, v in by.items()}
        print(f"| {what} | {w['A']:.3f} / {c['A']:.3f} | {w['B']:.3f} / {c['B']:.3f} | {w['B'] / w['A']:.2f} | "
              f"{c['B'] / c['A']:.2f} |")


if __name__ == "__main__":
    main()
