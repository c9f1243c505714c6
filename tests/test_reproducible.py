"""Reproducible builds: the same inputs built from nothing twice give byte-identical sites and lab weights.

The two builds run at the same time, from two build roots at different paths with their own fresh caches, so
neither the checkout location, the cache location, nor a concurrent build can leak into the output.
The configuration is small but complete: a tiny banding lab (3 variants x 1 seed, 5 steps) and a tiny
bring-your-own model whose article draws a first-layer figure.
"""
from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from hardening_util import build_cmd, build_env, make_root, tree_diff, tree_files

pytestmark = pytest.mark.slow  # builds many sites or kills builds: the full suite's tier (conftest.py)

TINY_LAB = {"models": ["banding-lab"], "n_jobs": 2, "featureviz": {"size": 16, "steps": 2},
            "lab": {"steps": 5, "seeds": [0], "widths": [4, 4, 4, 4, 4, 4], "n_test": 64}}


# The lab's results must reach the page, or the site comparison would not cover them.
LAB_FIGURE = """
::: figure id=lab-experiment kind=banding_experiment
Banding of the last convolution of each lab variant.
:::
"""


@pytest.fixture(scope="module")
def two_builds(tmp_path_factory) -> list[Path]:
    """Two independent builds from nothing, run concurrently; returns their folders (root/, site/, cache/)."""
    folders = [tmp_path_factory.mktemp(name).resolve() for name in ("first", "second-build")]
    procs = []
    for folder in folders:
        root = make_root(folder / "root", ["tiny"], TINY_LAB, tiny=("tiny",))
        with open(root / "content" / "tiny" / "index.md", "a", encoding="utf-8") as f:
            f.write(LAB_FIGURE)
        procs.append(subprocess.Popen(build_cmd(root, folder / "site", folder / "cache"), cwd=root,
                                      env=build_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
    for proc in procs:
        out, err = proc.communicate(timeout=900)
        assert proc.returncode == 0, f"build failed ({proc.returncode}):\n{out}\n{err}"
    return folders


def test_sites_are_byte_identical(two_builds):
    a, b = (tree_files(f / "site") for f in two_builds)
    assert any(p.startswith("tiny/") for p in a), "the bring-your-own article was not built"
    assert "tiny/data/lab-experiment.json" in a, "the lab figure was not drawn"
    assert a == b, "the two sites differ: " + tree_diff(a, b)


def test_lab_weights_are_byte_identical(two_builds):
    a, b = ({p: h for p, h in tree_files(f / "cache" / "banding-lab").items() if p.endswith(".pt")}
            for f in two_builds)
    assert len(a) >= 3, f"expected trained weights of 3 lab variants, got {sorted(a)}"  # + initial weights
    assert a == b, "trained lab weights differ: " + tree_diff(a, b)


def test_analysis_results_are_byte_identical(two_builds):
    """Every analysis result is identical but the manifest (its fingerprint names the weights file's path) and
    lab-summary.json (see below)."""
    a, b = ({p: h for p, h in tree_files(f / "cache" / "analysis").items()
             if p not in ("manifest.json", "lab-summary.json")} for f in two_builds)
    assert any(p.startswith("lab-gap-s0/") for p in a) and any(p.startswith("tinynet/") for p in a), sorted(a)[:10]
    assert a == b, "analysis results differ: " + tree_diff(a, b)
    summaries = [json.loads((f / "cache" / "analysis" / "lab-summary.json").read_text()) for f in two_builds]
    for s in summaries:
        s["config"].pop("train_seconds", None)
    assert summaries[0] == summaries[1]


def test_lab_summary_is_byte_identical(two_builds):
    a, b = ((f / "cache" / "analysis" / "lab-summary.json").read_bytes() for f in two_builds)
    assert a == b
