"""Fault injection: a build killed with SIGKILL at any point leaves nothing that the next build trips over.

One build root (a tiny bring-your-own model + the sample article, so there are analyses, charts and
images) is built from nothing once as the reference. Then builds are killed during the analysis stage (as soon
as the first analysis result is written) and during rendering (while the `.site-tmp-*` folder exists); the
next plain build must succeed on its own, verify every cached file, and produce the reference site exactly.
"""
from __future__ import annotations

import json
import shutil
import signal
import subprocess
from pathlib import Path

import pytest

from hardening_util import (TINY_ANALYSIS, build_cmd, build_env, check_ok, make_root, run_build, tree_diff,
                            tree_files, wait_for)

pytestmark = pytest.mark.slow  # builds many sites or kills builds: the full suite's tier (conftest.py)


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> tuple[Path, dict[str, str]]:
    """(build root, tree_files of its site built from nothing); the site and cache are in root/../ref-*."""
    base = tmp_path_factory.mktemp("faults").resolve()
    root = make_root(base / "root", ["sample", "tiny"], TINY_ANALYSIS, tiny=("tiny",))
    check_ok(run_build(root, base / "ref-site", base / "ref-cache"))
    return root, tree_files(base / "ref-site")


def previous_build(root: Path, folder: Path) -> tuple[Path, Path]:
    """(site, cache) in `folder`: copies of the reference build, as if it had been built there."""
    site, cache = folder / "site", folder / "cache"
    shutil.copytree(root.parent / "ref-site", site)
    shutil.copytree(root.parent / "ref-cache", cache)
    return site, cache


def start(root: Path, site: Path, cache: Path, *args: str) -> subprocess.Popen:
    return subprocess.Popen(build_cmd(root, site, cache, *args), cwd=root, env=build_env(),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def kill(proc: subprocess.Popen) -> None:
    proc.send_signal(signal.SIGKILL)
    proc.communicate(timeout=60)
    assert proc.returncode == -signal.SIGKILL, f"the build ended on its own ({proc.returncode}) before the kill"


def verify_cache(cache: Path) -> None:
    """Every file the analysis manifest lists exists with its recorded sha256, and every JSON result parses."""
    import hashlib

    analysis = cache / "analysis"
    manifest = json.loads((analysis / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["files"], "the manifest lists no files"
    for entry in manifest["files"]:
        path = analysis / entry["path"]
        assert path.is_file(), f"manifest lists a missing file {path}"
        assert hashlib.sha256(path.read_bytes()).hexdigest() == entry["sha256"], f"{path} does not match the manifest"
    for path in analysis.rglob("*.json"):
        json.loads(path.read_text(encoding="utf-8"))


def assert_same_site(site: Path, expected: dict[str, str]) -> None:
    got = tree_files(site)
    assert got == expected, "site differs from the reference build: " + tree_diff(expected, got)


def test_kill_during_analysis_then_rebuild(reference, tmp_path):
    root, expected = reference
    site, cache = tmp_path / "site", tmp_path / "cache"
    proc = start(root, site, cache)
    # The first analysis result on disk: the stage is under way, with more entries still to write.
    first = wait_for(lambda: next((cache / "analysis").rglob("*.json"), None) if (cache / "analysis").exists()
                     else None, proc, timeout=300)
    kill(proc)
    assert not (cache / "analysis" / "manifest.json").exists(), f"the analysis had already finished ({first})"
    assert not site.exists(), "a killed build must not have published a site"

    proc2 = check_ok(run_build(root, site, cache))
    assert "analysis: no results cached yet" in proc2.stdout  # the killed run never wrote a manifest
    verify_cache(cache)
    assert_same_site(site, expected)
    assert not list(tmp_path.glob(".site-*")), "temp folders left behind"


def test_kill_during_render_keeps_previous_site(reference, tmp_path):
    root, expected = reference
    site, cache = previous_build(root, tmp_path)
    assert_same_site(site, expected)

    # --debug bypasses the render cache, so every figure is drawn again: rendering takes long enough to hit.
    proc = start(root, site, cache, "--debug")
    tmp = wait_for(lambda: next(tmp_path.glob(".site-tmp-*"), None), proc, timeout=120)
    wait_for(lambda: any(p.is_file() for p in tmp.rglob("*")) or not tmp.exists(), proc, timeout=30)
    kill(proc)
    assert tmp.exists(), "the temp folder vanished: the build finished before the kill"
    assert_same_site(site, expected)  # the previous site is untouched by the killed build

    check_ok(run_build(root, site, cache))
    assert not tmp.exists(), "the next build must remove a killed build's temp folder"
    assert not list(tmp_path.glob(".site-*"))
    verify_cache(cache)
    assert_same_site(site, expected)


def test_kill_between_the_two_renames_of_the_swap(reference, tmp_path):
    """The swap renames site -> .site-old-<pid>, then .site-tmp-<pid> -> site: a kill in between leaves no site/."""
    root, expected = reference
    site, cache = previous_build(root, tmp_path)
    site.rename(tmp_path / ".site-old-99999")
    (tmp_path / ".site-tmp-99998" / "sample").mkdir(parents=True)
    (tmp_path / ".site-tmp-99998" / "sample" / "index.html").write_text("<p>half a page")
    check_ok(run_build(root, site, cache))
    assert not list(tmp_path.glob(".site-*"))
    assert_same_site(site, expected)


def test_half_written_temp_files_in_the_cache_are_ignored(reference, tmp_path):
    """Atomic writes leave `.<name>.<random>.tmp` siblings when killed; they are never read as results."""
    root, expected = reference
    site, cache = previous_build(root, tmp_path)
    folder = json.loads((cache / "analysis" / "manifest.json").read_text())["models"]["tinynet"]["folder"]
    tensors = cache / "analysis" / folder / "tensors"
    (tensors / ".conv2.json.abc123.tmp").write_text('{"truncated": ')
    (cache / "render" / "deadbeef.tmp").write_text("{")
    proc = check_ok(run_build(root, site, cache))
    assert "analysis:" not in proc.stdout  # stray temp files do not invalidate fresh results
    verify_cache(cache)
    assert_same_site(site, expected)


# --------------------------------------------------------------------------- concurrent builds into one site


@pytest.fixture(scope="module")
def render_root(tmp_path_factory) -> tuple[Path, dict[str, str]]:
    """A render-only build root (the sample article: no torch) and its reference site."""
    base = tmp_path_factory.mktemp("concurrent").resolve()
    root = make_root(base / "root", ["sample"])
    check_ok(run_build(root, base / "ref-site", base / "ref-cache"))
    return root, tree_files(base / "ref-site")


def test_concurrent_builds_into_one_site(render_root, tmp_path):
    """Three real builds at once into one site/: each touches only its own `.site-tmp-<pid>`, the swaps take
    turns, all succeed, and the site that remains is a complete one."""
    root, expected = render_root
    site, cache = tmp_path / "site", tmp_path / "cache"
    check_ok(run_build(root, site, cache))  # a previous site to replace
    for _ in range(2):  # --debug re-renders every figure: long renders overlap
        procs = [start(root, site, cache, "--debug") for _ in range(3)]
        outs = [p.communicate(timeout=300) for p in procs]
        for p, (out, err) in zip(procs, outs):
            assert p.returncode == 0, f"a concurrent build failed ({p.returncode}):\n{out}\n{err}"
        assert_same_site(site, expected)
        assert not list(tmp_path.glob(".site-*")), "temp folders left behind"


def test_a_live_builds_temp_folder_is_never_deleted(render_root, tmp_path):
    """A `.site-tmp-<pid>` of a running process stays; one of a dead process is cleaned up."""
    import sys

    root, expected = render_root
    site, cache = tmp_path / "site", tmp_path / "cache"
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    try:
        live = tmp_path / f".site-tmp-{sleeper.pid}"
        (live / "sample").mkdir(parents=True)
        (live / "sample" / "half.html").write_text("another build is writing this")
        dead = subprocess.Popen([sys.executable, "-c", "pass"])
        dead.wait()
        stale = tmp_path / f".site-tmp-{dead.pid}"
        stale.mkdir()
        check_ok(run_build(root, site, cache))
        assert (live / "sample" / "half.html").is_file(), "a running build's temp folder was deleted"
        assert not stale.exists(), "a dead build's temp folder was left behind"
        assert_same_site(site, expected)
    finally:
        sleeper.kill()
        sleeper.wait()
