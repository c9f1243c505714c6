#!/usr/bin/env python3
"""Build the Visualizing Weights site: ``python build.py [build] [--strict] [--clean] ...``.

Stages: (analysis, added by the lead) -> render content/ through templates/ into site/.
"""
from __future__ import annotations

import argparse
import shutil
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="build.py", description=__doc__.splitlines()[0])
    parser.add_argument("command", nargs="?", default="build", choices=["build"],
                        help="what to do (default: build)")
    parser.add_argument("--strict", action="store_true", help="treat broken links as errors")
    parser.add_argument("--debug", action="store_true",
                        help="full tracebacks, ignore the render cache, keep the temp folder of a failed build")
    parser.add_argument("--site-dir", type=Path, default=ROOT / "site", help="output folder (default: site/)")
    parser.add_argument("--cache-dir", type=Path, default=ROOT / ".cache",
                        help="analysis results and render cache (default: .cache/)")
    parser.add_argument("--clean", action="store_true", help="delete the render cache before building")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    from article.errors import BuildError
    from article.pipeline import build_site

    if args.clean:
        shutil.rmtree(args.cache_dir / "render", ignore_errors=True)
    t0 = time.perf_counter()
    try:
        report = build_site(ROOT, args.site_dir, cache_dir=args.cache_dir, strict=args.strict, debug=args.debug)
    except BuildError as exc:
        if args.debug:
            raise
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"built {len(report.pages)} pages into {args.site_dir} in {time.perf_counter() - t0:.2f} s"
          + (f" ({len(report.warnings)} warning(s))" if report.warnings else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
