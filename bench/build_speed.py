"""Build speed: a content-only rebuild of the whole default site against a bare-Python floor and mkdocs, in one run.

Each round edits the main article (content/visualizing-weights/index.md: one sentence added at its end; with
``--site sample``: one word of the sample article, on a one-article site), then times, alternating so all see
the same machine load:

  (a) ``python build.py`` (fresh interpreter; warm render cache, fresh analysis cache): every page of the site,
  (a') the same rebuild inside a warm process, through ``serve``'s own Builder,
  (b) the floor: a fresh interpreter that imports jinja2 + markdown and renders the same Markdown files into a
      Jinja2 template (no math, citations, figures or link check),
  (c) ``mkdocs build`` of the same Markdown files (default ``mkdocs`` theme, a minimal temp project).

Wall time is the median of ``--rounds``; CPU is user+sys of the child (less sensitive to other jobs on the
machine). Everything runs in a temp copy of the project (build.py and site.yml copied, article/ analysis/
templates/ symlinked, content/ copied, the analysis cache copied from .cache/ so it is fresh), so the real
site/ and .cache/ are untouched. Children run with Python's default of writing bytecode (``PYTHONDONTWRITEBYTECODE``
dropped from the environment, as an author's machine has it; ``--no-bytecode`` keeps it).

    python bench/build_speed.py [--rounds 9] [--site default|sample] [--no-bytecode]
    python bench/build_speed.py --cold [--timeout 7200]   # the default site from nothing: time + peak RSS
"""
from __future__ import annotations

import argparse
import json
import os
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
MARKER = re.compile(r"This (\w+ )?page exercises")

FLOOR = """
import sys
from pathlib import Path
import jinja2, markdown
page = jinja2.Environment(autoescape=True).from_string(
    "<!doctype html><html><head><title>{{ t }}</title></head><body><main>{{ body | safe }}</main></body></html>")
for i, source in enumerate(sys.argv[2:]):
    text = Path(source).read_text(encoding="utf-8")
    meta, body = text.split("\\n---\\n", 1) if text.startswith("---") else ("", text)
    html = markdown.markdown(body, extensions=["extra", "toc"])
    Path(sys.argv[1], f"floor-{i}.html").write_text(page.render(t=Path(source).parent.name, body=html), encoding="utf-8")
"""

WARM = """
import contextlib, importlib.util, io, json, re, sys, time
from pathlib import Path
root, rounds, index = Path.cwd(), int(sys.argv[1]), Path(sys.argv[2])
spec = importlib.util.spec_from_file_location("build", root / "build.py")
build = importlib.util.module_from_spec(spec); spec.loader.exec_module(build)
from article.serve.command import Builder
builder = Builder(build.build, root, root / "site", Path(sys.argv[3]))
base = index.read_text(encoding="utf-8")
times, cpu = [], []
for i in range(rounds + 1):  # the first one warms imports, templates and lexers up
    index.write_text(base + f"\\nEdited in warm round {i}.\\n", encoding="utf-8")
    t0, c0 = time.perf_counter(), time.process_time()
    error, _ = builder([str(index)])  # what `serve` runs on a change: the recipe in process, analyses checked
    assert error is None, error
    times.append(time.perf_counter() - t0)
    cpu.append(time.process_time() - c0)
print(json.dumps({"times": times[1:], "cpu": cpu[1:], "torch": any(m.split(".")[0] == "torch" for m in sys.modules)}))
"""


MAIN = "visualizing-weights"


def make_project(tmp: Path, site: str = "sample") -> Path:
    """A copy of the project: the default site (site.yml and content/ as they are, the analysis cache copied so it
    is fresh), or the sample article alone with a site.yml of our own."""
    root = tmp / "proj"
    root.mkdir(parents=True)
    shutil.copy(REPO / "build.py", root / "build.py")
    for name in ("article", "analysis", "templates"):
        (root / name).symlink_to(REPO / name, target_is_directory=True)
    if site == "default":
        shutil.copytree(REPO / "content", root / "content")
        shutil.copy(REPO / "site.yml", root / "site.yml")
        if (REPO / ".cache").is_dir():  # else the first build computes the analyses (minutes)
            shutil.copytree(REPO / ".cache", tmp / "cache", symlinks=True)
        return root
    (root / "content").mkdir()
    shutil.copytree(REPO / "content" / "sample", root / "content" / "sample")
    index = root / "content" / "sample" / "index.md"
    # The sample's free-form `models:` note is not a bring-your-own model spec (the analysis stage rejects
    # it); no sample figure reads it, so drop it to measure rendering.
    index.write_text(re.sub(r"^models:\n(?:[ \t]+.*\n)+", "", index.read_text(encoding="utf-8"), flags=re.M),
                     encoding="utf-8")
    (root / "site.yml").write_text(textwrap.dedent("""\
        title: Build speed
        description: The sample article alone.
        site_url: https://example.org/bench/
        articles:
          - sample
        """), encoding="utf-8")
    return root


def articles(root: Path) -> list[Path]:
    """The site's Markdown files, in site.yml order."""
    names = re.findall(r"^\s*-\s*(\S+)", (root / "site.yml").read_text(encoding="utf-8").split("articles:")[1]
                       .split("\n\S", 1)[0], re.M)
    return [root / "content" / n / "index.md" for n in names]


def make_mkdocs(tmp: Path, sources: list[Path]) -> Path:
    proj = tmp / "mk"
    (proj / "docs").mkdir(parents=True)
    for source in sources:
        shutil.copy(source, proj / "docs" / f"{source.parent.name}.md")
    (proj / "mkdocs.yml").write_text("site_name: Build speed\ntheme:\n  name: mkdocs\n", encoding="utf-8")
    return proj


def timed(cmd: list[str], cwd: Path, env: dict[str, str] | None = None,
          output: list[str] | None = None) -> tuple[float, float]:
    """(wall s, child user+sys CPU s) of one command; raises with its output when it fails. ``output``: its
    stdout is appended there."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    done = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode:
        raise SystemExit(f"failed: {' '.join(cmd)}\n{done.stdout}{done.stderr}")
    if output is not None:
        output.append(done.stdout)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def edit(index: Path, i: int) -> None:
    """A content-only edit: the sample's marker word, or a sentence at the end of any other article."""
    text = index.read_text(encoding="utf-8")
    if MARKER.search(text):
        text = MARKER.sub(f"This r{i} page exercises", text, 1)
    else:
        text = re.sub(r"\n\nEdited in round \d+\.\n\Z", "\n", text) + f"\nEdited in round {i}.\n"
    index.write_text(text, encoding="utf-8")


def med(xs: list[float]) -> float:
    return statistics.median(xs)


def rebuild(rounds: int, site: str, bytecode: bool = True) -> None:
    env = dict(os.environ)
    env.pop("VW_CACHE_DIR", None)
    if bytecode:  # Python's default: the project's modules load from __pycache__ as mkdocs' do from site-packages
        env.pop("PYTHONDONTWRITEBYTECODE", None)  # (this VM sets it; then every run compiles our ~50 modules)
    with tempfile.TemporaryDirectory(prefix="vw-bench-") as tmpname:
        tmp = Path(tmpname)
        root = make_project(tmp, site)
        sources = articles(root)
        index = root / "content" / (MAIN if site == "default" else "sample") / "index.md"
        mk = make_mkdocs(tmp, sources)
        mk_index = mk / "docs" / f"{index.parent.name}.md"
        build = [sys.executable, "build.py", "--cache-dir", str(tmp / "cache")]
        first, _ = timed(build, root, env)  # fills the render cache (altair, vl-convert): not a rebuild
        timed([sys.executable, "-m", "mkdocs", "build", "-q"], mk, env)
        rows: dict[str, list[tuple[float, float]]] = {"a": [], "b": [], "c": []}
        for i in range(rounds):
            edit(index, i)
            edit(mk_index, i)
            rows["a"].append(timed(build, root, env))
            rows["b"].append(timed([sys.executable, "-c", FLOOR, str(tmp)] + [str(s) for s in sources], root, env))
            rows["c"].append(timed([sys.executable, "-m", "mkdocs", "build", "-q"], mk, env))
        warm = subprocess.run([sys.executable, "-c", WARM, str(rounds), str(index), str(tmp / "cache")], cwd=root,
                              env=dict(env, VW_CACHE_DIR=str(tmp / "cache")), capture_output=True, text=True)
        if warm.returncode:
            raise SystemExit("in-process rebuild failed:\n" + warm.stderr)
        w = json.loads(warm.stdout.strip().splitlines()[-1])

    wall = {k: med([x[0] for x in v]) for k, v in rows.items()}
    cpu = {k: med([x[1] for x in v]) for k, v in rows.items()}
    what = f"the default site ({len(sources)} articles, {MAIN} edited)" if site == "default" else "the sample site"
    print(f"# content-only rebuild of {what}, median of {rounds} (load avg {os.getloadavg()[0]:.1f}, "
          f"{os.cpu_count()} cores; first build with an empty render cache: {first:.2f} s)")
    print("| what | wall (s) | CPU user+sys (s) |")
    print("|---|---:|---:|")
    print(f"| (a) `python build.py` | {wall['a']:.2f} | {cpu['a']:.2f} |")
    print(f"| (a') rebuild in a warm process (`build.py serve`) | {med(w['times']):.2f} | {med(w['cpu']):.2f} |")
    print(f"| (b) floor: python + jinja2 + markdown | {wall['b']:.2f} | {cpu['b']:.2f} |")
    print(f"| (c) `mkdocs build` | {wall['c']:.2f} | {cpu['c']:.2f} |")
    print(f"ratios: a/b wall {wall['a'] / wall['b']:.2f}x, CPU {cpu['a'] / cpu['b']:.2f}x (target <= 2x); "
          f"a/c wall {wall['a'] / wall['c']:.2f}x, CPU {cpu['a'] / cpu['c']:.2f}x (target <= 1); "
          f"a <= 1 s: {'yes' if wall['a'] <= 1 else 'NO'}; torch imported in (a'): {w['torch']}")


RUSAGE_WRAPPER = """
import json, resource, subprocess, sys
done = subprocess.run(sys.argv[2:], timeout=float(sys.argv[1]), capture_output=True, text=True)
u = resource.getrusage(resource.RUSAGE_CHILDREN)  # this wrapper ran one build: its whole process tree
print(json.dumps({"rc": done.returncode, "cpu": u.ru_utime + u.ru_stime, "rss_mb": u.ru_maxrss / 1024,
                  "tail": (done.stdout + done.stderr).strip().splitlines()[-3:]}))
"""


def cold_once(cmd: list[str], cwd: Path, cache: Path, timeout: float) -> dict:
    """Run one build from an empty cache in a wrapper process, so peak RSS covers this build only."""
    env = dict(os.environ)
    env.pop("VW_CACHE_DIR", None)
    t0 = time.perf_counter()
    try:
        done = subprocess.run([sys.executable, "-c", RUSAGE_WRAPPER, str(timeout)] + cmd, cwd=cwd, env=env,
                              capture_output=True, text=True, timeout=timeout + 60)
        out = json.loads(done.stdout.strip().splitlines()[-1])
        out["status"] = "ok" if out["rc"] == 0 else "FAILED"
    except (subprocess.TimeoutExpired, IndexError, ValueError):
        out = {"status": f"TIMEOUT/crash after {timeout:.0f} s", "cpu": float("nan"), "rss_mb": float("nan"), "tail": []}
    out["wall"] = time.perf_counter() - t0
    out["cache_mb"] = sum(f.stat().st_size for f in cache.rglob("*") if f.is_file()) / 1e6 if cache.exists() else 0.0
    return out


def cold(timeout: float, baseline: str | None = None) -> None:
    """From an empty cache: the default site (this repo's site.yml and content/), and the sample article alone;
    with `baseline`, first the default site of that git revision, in the same run (machines differ about 2x)."""
    results = []
    with tempfile.TemporaryDirectory(prefix="vw-cold-") as tmpname:
        tmp = Path(tmpname)
        if baseline:
            old = tmp / "baseline"
            old.mkdir()
            archive = subprocess.run(["git", "archive", baseline], cwd=REPO, capture_output=True, check=True).stdout
            subprocess.run(["tar", "-x", "-C", str(old)], input=archive, check=True)
            results.append((f"default site at {baseline}", cold_once(
                [sys.executable, "build.py", "--cache-dir", str(tmp / "c0"), "--site-dir", str(tmp / "s0" / "site")],
                old, tmp / "c0", timeout)))
        articles = ", ".join(str(a) for a in re.findall(r"^\s*-\s*(\S+)", (REPO / "site.yml").read_text().split("articles:")[-1], re.M))
        results.append((f"default site ({articles})", cold_once(
            [sys.executable, "build.py", "--cache-dir", str(tmp / "c1"), "--site-dir", str(tmp / "s1" / "site")],
            REPO, tmp / "c1", timeout)))
        results.append(("sample article alone", cold_once([sys.executable, "build.py", "--cache-dir", str(tmp / "c2")],
                                                          make_project(tmp), tmp / "c2", timeout)))
    print(f"# cold build from an empty cache dir (load avg {os.getloadavg()[0]:.1f}, {os.cpu_count()} cores)")
    print("| what | status | wall (s) | CPU user+sys (s) | peak RSS (MB) | cache (MB) |")
    print("|---|---|---:|---:|---:|---:|")
    for name, r in results:
        print(f"| {name} | {r['status']} | {r['wall']:.1f} | {r['cpu']:.1f} | {r['rss_mb']:.0f} | {r['cache_mb']:.1f} |")
    for name, r in results:
        if r["status"] != "ok":
            print(f"{name}: " + " / ".join(r["tail"]))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=9, help="rebuilds per contender (median)")
    ap.add_argument("--site", choices=["default", "sample"], default="default",
                    help="rebuild the whole default site (main article edited) or the sample article alone")
    ap.add_argument("--no-bytecode", action="store_true",
                    help="keep PYTHONDONTWRITEBYTECODE from the environment (our modules compiled on every run)")
    ap.add_argument("--cold", action="store_true", help="instead: cold build of the default site (time, peak RSS)")
    ap.add_argument("--timeout", type=float, default=7200, help="--cold: give up after this many seconds")
    ap.add_argument("--baseline", help="--cold: also build this git revision first, in the same run")
    args = ap.parse_args()
    if args.cold:
        cold(args.timeout, args.baseline)
    else:
        rebuild(args.rounds, args.site, not args.no_bytecode)


if __name__ == "__main__":
    main()
