#!/usr/bin/env python3
"""Build the Visualizing Weights site: ``python build.py [build] [--strict] [--clean] ...``.

The whole recipe is ``build()`` below: check the folders -> load site.yml -> analysis (only when its inputs changed;
imports torch lazily) -> render content/ through templates/ into a temporary folder -> link check -> swap it into
site/. ``main()`` only turns the command line into arguments for ``build()`` or ``serve()``.
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

from analysis.core.spec import BACKENDS, DEVICES  # stdlib only

# An OpenMP runtime setting read by torch's thread pool (not one of ours): idle threads must not spin, which on a busy
# 2-core machine made torch 5-10x slower (bench/README.md). Only a default: the user's own value wins.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

ROOT = Path(__file__).resolve().parent


def port_number(text: str) -> int:
    """--port: 0 (any free port) to 65535."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port number (0-65535)") from None
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"{value} is not a port number (0-65535)")
    return value


def job_count(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a positive number of workers")
    return value


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # one line, like every other build error (--help shows the usage)
        self.exit(2, f"error: build.py: {message} (see python build.py --help)\n")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = _Parser(
        prog="build.py",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Build the Visualizing Weights site from content/, templates/ and the analyses in analysis/.\n\n"
                    "Stages: load site.yml -> analysis (only when its inputs changed; the results are cached in\n"
                    "the cache folder) -> render every article into a temporary folder -> link check -> swap it\n"
                    "into the site folder. A failing build leaves the previous site untouched.",
        epilog="examples:\n"
               "  python build.py                  build site/\n"
               "  python build.py --strict         also fail on a broken internal link or #anchor (CI)\n"
               "  python build.py --clean          recompute analyses and re-render every figure\n"
               "  python build.py serve --port 0   preview with live reload on a free port\n\n"
               "environment: VW_SITE_URL (canonical/feed base URL), VW_CACHE_DIR, VW_WEIGHTS_<ARCH> (path to a\n"
               "torchvision weights file, e.g. VW_WEIGHTS_RESNET50=resnet50-0676ba61.pth; never downloaded)")
    parser.add_argument("command", nargs="?", default="build", choices=["build", "serve"],
                        help="what to do (default: build); serve: build, serve site/ and rebuild + live-reload "
                             "on every change")
    parser.add_argument("--strict", action="store_true", help="treat broken links as errors")
    parser.add_argument("--debug", action="store_true",
                        help="full tracebacks, ignore the render cache, keep the temp folder of a failed build")
    parser.add_argument("--site-dir", type=Path, default=ROOT / "site", help="output folder (default: site/)")
    parser.add_argument("--cache-dir", type=Path, default=Path(os.environ.get("VW_CACHE_DIR") or ROOT / ".cache"),
                        help="analysis results and render cache (default: $VW_CACHE_DIR, else .cache/)")
    parser.add_argument("--clean", action="store_true",
                        help="rebuild everything: recompute every analysis and feature visualization and "
                             "re-render every figure and page (the banding lab's trained models are reused when "
                             "intact)")
    parser.add_argument("--jobs", type=job_count, default=None, help="parallel analysis workers (default: site.yml)")
    parser.add_argument("--backend", choices=BACKENDS, default=None,
                        help="where the per-tensor analysis runs: local processes or a Dask cluster (default: site.yml)")
    parser.add_argument("--scheduler", default=None, metavar="ADDRESS",
                        help="the Dask scheduler for --backend dask, e.g. tcp://10.0.0.5:8786 (default: site.yml)")
    parser.add_argument("--device", choices=DEVICES, default=None,
                        help="feature visualization and expanded weights on the CPU or a CUDA GPU (default: site.yml, "
                             "else auto: CUDA when present)")
    parser.add_argument("--port", type=port_number, default=8000, help="serve: port (default: 8000; 0 picks a free one)")
    parser.add_argument("--host", default="127.0.0.1", help="serve: address to listen on (default: 127.0.0.1)")
    return parser.parse_args(argv)


def build(root: Path, site_dir: Path, cache_dir: Path, *, strict: bool = False, debug: bool = False,
          clean: bool = False, jobs: int | None = None, progress: bool = True, run_analysis: bool = True,
          **runtime: str | None):
    """The recipe, stage by stage; returns the render stage's BuildReport. Raises BuildError, AnalysisError or
    OSError for the author's mistakes. ``runtime``: backend, scheduler, device (where the analyses run, never what
    they compute). ``run_analysis=False`` only checks that the analyses are fresh and raises AnalysisStale when
    they are not (``serve`` then runs the whole recipe in a fresh interpreter). Imports happen
    here, not at the top, so ``serve`` gets freshly imported stages after it forgets edited modules."""
    from article.analysis_stage import analysis_state, clean as clean_cache, ensure_analysis, missing_models
    from article.config.site import load_config
    from article.figures.figure_cache import manifest_digests
    from article.output.sitedir import check_cache_dir, check_site_dir
    from article.pipeline import build_site
    from article.structure.errors import AnalysisStale

    check_cache_dir(root, cache_dir)  # before anything slow or destructive (--clean): fail fast
    check_site_dir(root, site_dir, cache_dir)
    parsed = None if debug else cache_dir  # site.yml and front matter, kept parsed (article/config/yamlcache.py)
    config = load_config(root, parsed)
    if clean:  # every analysis and every render made again; the banding lab's trained weights are kept
        clean_cache(cache_dir)
    if run_analysis:
        analysis = ensure_analysis(root, config, cache_dir, force=clean, jobs=jobs, progress=progress, debug=debug,
                                   yaml_cache=parsed, **runtime)
    else:  # torch is never imported on this path
        analysis = analysis_state(root, config, cache_dir, jobs, parsed, **runtime)
        if analysis == "stale":
            raise AnalysisStale("the analyses must run first")
    if progress and analysis != "none":
        for line in missing_models(cache_dir):
            print(line, flush=True)
    # 'fresh' or 'computed': every file the manifest lists was just verified (or written) by its sha256.
    verified = manifest_digests(cache_dir) if analysis in ("fresh", "computed") else {}
    return build_site(root, site_dir, config=config, cache_dir=cache_dir, strict=strict, debug=debug,
                      progress=progress, verified=verified)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.command == "serve":
        from article.serve.command import serve

        return serve(build, ROOT, args.site_dir, args.cache_dir, host=args.host, port=args.port,
                     strict=args.strict, debug=args.debug, clean=args.clean, jobs=args.jobs, backend=args.backend,
                     scheduler=args.scheduler, device=args.device)
    from analysis.core.errors import AnalysisError  # stdlib only: importing it does not import torch
    from article.structure.errors import BuildError, one_line

    t0 = time.perf_counter()
    try:
        report = build(ROOT, args.site_dir, args.cache_dir, strict=args.strict, debug=args.debug,
                       clean=args.clean, jobs=args.jobs, backend=args.backend, scheduler=args.scheduler,
                       device=args.device)
    except (BuildError, AnalysisError, OSError) as exc:  # the author's problem: one line (--debug: traceback)
        if args.debug:
            raise
        print(f"error: {one_line(exc)}", file=sys.stderr)
        return 1
    print(f"built {len(report.pages)} pages into {args.site_dir} in {time.perf_counter() - t0:.2f} s"
          + (f" ({len(report.warnings)} warning(s))" if report.warnings else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
