"""A/B: the same content-only rebuild of the default site in two trees, alternating, in one run.

    git archive <base> | tar -x -C /tmp/base && cp -a .cache /tmp/base/.cache   # a cache the base finds fresh
    python bench/ab_rebuild.py /tmp/base . [--rounds 15] [--no-bytecode]

Each tree gets a temp project (build.py and site.yml copied, article/ analysis/ templates/ symlinked to the tree,
content/ copied, its own .cache copied); each round adds one sentence to the main article of both and times
``python build.py`` in a fresh process in each, the order alternating. Prints the median wall and CPU (user+sys).
"""
from __future__ import annotations

import argparse
import os
import re
import shutil
import statistics
import sys
import tempfile
from pathlib import Path

from build_speed import timed  # bench/ is the script's folder: on sys.path


def project(tmp: Path, tree: Path) -> Path:
    root = tmp / "proj"
    root.mkdir(parents=True)
    shutil.copy(tree / "build.py", root / "build.py")
    for name in ("article", "analysis", "templates"):
        (root / name).symlink_to(tree.resolve() / name, target_is_directory=True)
    shutil.copytree(tree / "content", root / "content")
    shutil.copy(tree / "site.yml", root / "site.yml")
    shutil.copytree(tree / ".cache", tmp / "cache", symlinks=True)
    return root


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("base", type=Path)
    ap.add_argument("work", type=Path)
    ap.add_argument("--rounds", type=int, default=15)
    ap.add_argument("--no-bytecode", action="store_true", help="keep PYTHONDONTWRITEBYTECODE as the environment has it")
    args = ap.parse_args()
    env = dict(os.environ)
    env.pop("VW_CACHE_DIR", None)
    if not args.no_bytecode:
        env.pop("PYTHONDONTWRITEBYTECODE", None)
    trees = {"base": args.base, "work": args.work}
    with tempfile.TemporaryDirectory(prefix="vw-ab-") as name:
        tmp = Path(name)
        roots = {k: project(tmp / k, v) for k, v in trees.items()}
        for k, root in roots.items():
            out: list[str] = []
            timed([sys.executable, "build.py", "--cache-dir", str(tmp / k / "cache")], root, env, out)
            if out[0].startswith("analysis:"):
                raise SystemExit(f"{k}: the analysis cache is not fresh for this tree:\n{out[0][:400]}")
        rows: dict[str, list[tuple[float, float]]] = {k: [] for k in roots}
        for i in range(args.rounds):
            for k in (list(roots) if i % 2 == 0 else list(roots)[::-1]):
                index = roots[k] / "content" / "visualizing-weights" / "index.md"
                text = re.sub(r"\n\nEdited in round \d+\.\n\Z", "\n", index.read_text(encoding="utf-8"))
                index.write_text(text + f"\nEdited in round {i}.\n", encoding="utf-8")
                out = []
                wall, cpu = timed([sys.executable, "build.py", "--cache-dir", str(tmp / k / "cache")], roots[k], env,
                                  out)
                if out[0].startswith("analysis:"):
                    raise SystemExit(f"{k}: a content-only edit ran the analyses:\n{out[0][:400]}")
                rows[k].append((wall, cpu))
    print(f"# content-only rebuild (python build.py, fresh process), median of {args.rounds}, "
          f"load avg {os.getloadavg()[0]:.1f}, {os.cpu_count()} cores")
    print("| tree | wall (s) | CPU user+sys (s) |")
    print("|---|---:|---:|")
    cpu = {}
    for k, v in rows.items():
        cpu[k] = statistics.median(x[1] for x in v)
        print(f"| {k} ({trees[k]}) | {statistics.median(x[0] for x in v):.3f} | {cpu[k]:.3f} |")
    print(f"work/base CPU: {cpu['work'] / cpu['base']:.3f}x")


if __name__ == "__main__":
    main()
