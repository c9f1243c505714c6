"""Shared helpers of the hardening tests: throw-away build roots, a tiny bring-your-own model, tree digests.

A build root holds a copy of build.py, a real content/ folder (so a test may break an article without touching
the repository), site.yml, and symlinks to the repository's article/, analysis/ and templates/ (the code under
test is the repository's). `python build.py --site-dir ... --cache-dir ...` runs in a subprocess, as a user would.
"""
from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Callable

import yaml

REPO = Path(__file__).resolve().parents[1]
LINKED = ("templates", "article", "analysis")

# A 2-conv network: seconds to analyse, yet it has a first layer, a context pair and feature visualizations.
TINY_FACTORY = '''"""A tiny bring-your-own model written by the hardening tests."""
import torch
from torch import nn


class TinyNet(nn.Module):
    def __init__(self, width: int = 4):
        super().__init__()
        self.conv1 = nn.Conv2d(3, width, 3, padding=1)
        self.conv2 = nn.Conv2d(width, width, 3, padding=1)
        self.head = nn.Linear(width, 2)

    def forward(self, x):
        x = torch.relu(self.conv1(x))
        x = torch.relu(self.conv2(x))
        return self.head(x.mean(dim=(2, 3)))


def make():
    return TinyNet()
'''

TINY_ARTICLE = """---
title: Tiny
description: A tiny bring-your-own model.
date: 2025-01-01
authors: [{name: Test Author}]
models:
  tinynet: {factory: "tinynet:make", weights: tiny.pt, image_size: 16}
---

A tiny model, analysed from its front matter.

::: figure id=tiny-first kind=first_layer models=tinynet
First-layer filters of the tiny model.
:::
"""

# Quality settings that keep a bring-your-own analysis to seconds.
# examples: a few photos are enough to exercise the dataset-examples pass (all 222 cost every analysed case seconds)
TINY_ANALYSIS: dict[str, Any] = {"models": [], "n_jobs": 1, "featureviz": {"size": 16, "steps": 2},
                                 "examples": {"count": 6}}


def tiny_state_dict(seed: int = 0, width: int = 4) -> dict:
    """The tiny model's state dict {key: Tensor}, initialised from `seed` (imports torch)."""
    import torch
    from torch import nn

    torch.manual_seed(seed)
    conv1, conv2, head = nn.Conv2d(3, width, 3, padding=1), nn.Conv2d(width, width, 3, padding=1), nn.Linear(width, 2)
    return {f"{name}.{k}": v.detach().clone() for name, m in (("conv1", conv1), ("conv2", conv2), ("head", head))
            for k, v in m.state_dict().items()}


def write_tiny_article(folder: Path, seed: int = 0) -> Path:
    """content/<slug>/ with index.md, tinynet.py (factory `tinynet:make`) and tiny.pt; returns the folder."""
    import torch

    folder.mkdir(parents=True, exist_ok=True)
    (folder / "index.md").write_text(TINY_ARTICLE, encoding="utf-8")
    (folder / "tinynet.py").write_text(TINY_FACTORY, encoding="utf-8")
    torch.save(tiny_state_dict(seed), folder / "tiny.pt")
    return folder


def write_site_yml(root: Path, articles: list[str], analysis: dict[str, Any] | None = None) -> None:
    config: dict[str, Any] = {"title": "Hardening", "description": "A throw-away site of the hardening tests.",
                              "site_url": "https://example.org/vw/", "articles": list(articles)}
    if analysis is not None:
        config["analysis"] = analysis
    (root / "site.yml").write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")


def make_root(root: Path, articles: list[str], analysis: dict[str, Any] | None = None,
              tiny: tuple[str, ...] = ()) -> Path:
    """A build root at `root`: build.py copy, symlinked code and templates, content/ copied from the repo for
    every slug of `articles` not in `tiny`, a tiny bring-your-own article for each slug of `tiny`."""
    root.mkdir(parents=True, exist_ok=True)
    for name in LINKED:
        (root / name).symlink_to(REPO / name, target_is_directory=True)
    shutil.copy2(REPO / "build.py", root / "build.py")
    (root / "content").mkdir()
    for slug in articles:
        if slug in tiny:
            write_tiny_article(root / "content" / slug)
        else:
            shutil.copytree(REPO / "content" / slug, root / "content" / slug)
    write_site_yml(root, articles, analysis)
    return root


def build_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("VW_")}  # no stray cache/site/jobs overrides
    env.update(extra)
    return env


def build_cmd(root: Path, site: Path, cache: Path, *args: str) -> list[str]:
    return [sys.executable, str(root / "build.py"), "--site-dir", str(site), "--cache-dir", str(cache), *args]


def run_build(root: Path, site: Path, cache: Path, *args: str, env: dict[str, str] | None = None,
              timeout: float = 600) -> subprocess.CompletedProcess:
    """`python build.py --site-dir site --cache-dir cache *args` in `root`; never raises on failure."""
    return subprocess.run(build_cmd(root, site, cache, *args), cwd=root, env=env or build_env(),
                          capture_output=True, text=True, timeout=timeout)


def check_ok(proc: subprocess.CompletedProcess) -> subprocess.CompletedProcess:
    assert proc.returncode == 0, f"build failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}"
    return proc


def tree_files(folder: Path) -> dict[str, str]:
    """{relative path: sha256} of every file and symlink under `folder`; empty folders as 'dir'."""
    out: dict[str, str] = {}
    for dirpath, dirnames, filenames in os.walk(folder):
        base = Path(dirpath)
        if not dirnames and not filenames and base != Path(folder):
            out[base.relative_to(folder).as_posix() + "/"] = "dir"
        for name in filenames:
            path = base / name
            rel = path.relative_to(folder).as_posix()
            if path.is_symlink():
                out[rel] = "link:" + os.readlink(path)
            elif not path.is_file():  # a FIFO or device planted by a test: reading it would block
                out[rel] = "special"
            elif path.stat().st_size > 1 << 28:  # a huge (sparse) file planted by a test: by size and time
                out[rel] = f"big:{path.stat().st_size}:{path.stat().st_mtime_ns}"
            else:
                out[rel] = hashlib.sha256(path.read_bytes()).hexdigest()
    return dict(sorted(out.items()))


def tree_digest(folder: Path) -> str:
    """One sha256 over every path and content under `folder` (byte-for-byte comparisons of whole trees)."""
    return hashlib.sha256(repr(sorted(tree_files(folder).items())).encode()).hexdigest()


def tree_diff(a: dict[str, str], b: dict[str, str], limit: int = 8) -> str:
    """Human summary of how two tree_files() differ (for assertion messages)."""
    only_a = sorted(set(a) - set(b))
    only_b = sorted(set(b) - set(a))
    changed = sorted(k for k in set(a) & set(b) if a[k] != b[k])
    return f"missing {only_a[:limit]}, extra {only_b[:limit]}, changed {changed[:limit]}"


def wait_for(condition: Callable[[], Any], proc: subprocess.Popen, timeout: float = 300, poll: float = 0.005) -> Any:
    """Poll `condition()` until it is truthy; fail when `proc` exits first or `timeout` passes."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        value = condition()
        if value:
            return value
        if proc.poll() is not None:
            out, err = proc.communicate()
            raise AssertionError(f"build exited ({proc.returncode}) before the condition held:\n{out}\n{err}")
        time.sleep(poll)
    raise AssertionError(f"condition not met within {timeout} s")
