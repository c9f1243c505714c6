"""The published networks' banding: one score (R and C of NMF pictures) computed the same way on the Distill
article's own pictures (bench/published_banding.py, read from a git repository) and on this build's."""
from __future__ import annotations

import base64
import importlib.util
import io
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from analysis.core.banding import banding_scores, picture_banding
from analysis.core.errors import AnalysisError
from analysis.per_tensor import tensor_report
from analysis.tensor_report import nmf_banding

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "bench" / "published_banding.py"
SEVEN = {"InceptionV1 mixed5b": 0.95, "ResNet50 block4": 0.89, "VGG19 conv5": 0.92, "AlexNet conv5": 0.57,
         "simplified net 5b": 0.97, "simplified net, rotated inputs": 0.02, "simplified net, no GAP": 0.51}


def test_picture_banding_scores_rows_columns_and_random():
    rows = np.zeros((4, 3, 3, 3))
    rows[:, 0, :, 0] = 1.0  # red on the top row only: perfect horizontal bands
    assert picture_banding(rows)["R_layer"] == pytest.approx(1.0)
    assert picture_banding(rows.transpose(0, 2, 1, 3))["C_layer"] == pytest.approx(1.0)
    noise = np.random.default_rng(0).random((2000, 5, 5, 3))
    scores = picture_banding(noise)
    assert scores["baseline_R"] == pytest.approx(4 / 24)
    assert scores["R_layer"] == pytest.approx(4 / 24, abs=0.01)  # random pictures: the random baseline
    # The same as banding_scores with the colours as channels: one definition for weights and pictures.
    assert scores["R_layer"] == banding_scores(noise.transpose(0, 3, 1, 2))["R_layer"]
    with pytest.raises(AnalysisError, match=r"\[out, h, w, 3\]"):
        picture_banding(np.zeros((2, 3, 3)))


def test_the_manifest_score_is_the_pictures_score():
    w = np.random.default_rng(1).standard_normal((6, 4, 3, 3)).astype(np.float32)
    w[:, :, 0, :] += 3.0  # a strong top row in every neuron
    report = tensor_report(w, init=np.zeros_like(w))
    scores = nmf_banding(report)
    assert scores["R_nmf"] == picture_banding(report["nmf"]["rgb"])["R_layer"] > 0.5
    assert scores["C_nmf_delta"] == picture_banding(report["nmf_delta"]["rgb"])["C_layer"]


def _figure_json(pictures: np.ndarray, name: str) -> str:
    """A reduced-weights figure file as the Distill repository stores it: a grid of base64 PNG <img> tags."""
    cells = []
    for pic in pictures:
        buf = io.BytesIO()
        Image.fromarray(pic.astype(np.uint8), "RGB").save(buf, format="PNG")
        cells.append(f'<img src="data:image/PNG;base64,{base64.b64encode(buf.getvalue()).decode()}" '
                     'style="image-rendering: pixelated;width: 32px;">')
    grid = [cells[i:i + 4] for i in range(0, len(cells), 4)]
    return json.dumps({"model_name": name, "layer": "w", "reduced_weights": grid})


def _load(path: Path) -> dict:
    spec = importlib.util.spec_from_file_location("published_data_under_test", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.PUBLISHED


def _git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True, text=True,
                          env={**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.org",
                               "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@example.org"}).stdout


def test_the_bench_script_measures_the_pictures_in_a_git_repository(tmp_path):
    spec = importlib.util.spec_from_file_location("published_banding_script", SCRIPT)
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    repo = tmp_path / "post--weight-banding"
    folder = repo / bench.FOLDER
    folder.mkdir(parents=True)
    rng = np.random.default_rng(2)
    expected = {}
    for k, (name, _, file) in enumerate(bench.NETWORKS):
        pics = rng.integers(0, 256, size=(8, 3 + 2 * (k % 2), 3 + 2 * (k % 2), 3))
        if k % 3 == 0:
            pics[:] = pics[:, :, :1]  # every column equal: perfect horizontal bands
        (folder / file).write_text(_figure_json(pics, name), encoding="utf-8")
        expected[name] = picture_banding(pics)
    _git(repo, "init", "-q")
    _git(repo, "add", ".")
    _git(repo, "commit", "-q", "-m", "pictures")
    out = tmp_path / "published_data.py"
    proc = subprocess.run([sys.executable, str(SCRIPT), "--repo", str(repo), "--out", str(out)],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    data = _load(out)
    assert data["commit"] == _git(repo, "rev-parse", "HEAD").strip()
    assert [n["network"] for n in data["networks"]] == [n for n, _, _ in bench.NETWORKS]
    for row in data["networks"]:
        want = expected[row["network"]]
        assert row["R"] == pytest.approx(want["R_layer"], abs=1e-4)
        assert row["C"] == pytest.approx(want["C_layer"], abs=1e-4)
        assert row["neurons"] == 8 and row["file"].startswith(bench.FOLDER)
    assert data["networks"][0]["R"] == pytest.approx(1.0)
    check = [sys.executable, str(SCRIPT), "--repo", str(repo), "--out", str(out), "--check"]
    assert subprocess.run(check, capture_output=True, timeout=120).returncode == 0
    out.write_text(out.read_text().replace("'R': 1.0", "'R': 0.99"), encoding="utf-8")
    proc = subprocess.run(check, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1 and proc.stderr.strip().count("\n") == 0 and "differs" in proc.stderr
    (folder / bench.NETWORKS[1][2]).unlink()  # a repository without one of the files: one line, no traceback
    _git(repo, "commit", "-q", "-am", "drop one")
    proc = subprocess.run([sys.executable, str(SCRIPT), "--repo", str(repo), "--out", str(tmp_path / "x.py")],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr and len(proc.stderr.strip().splitlines()) == 1


def test_the_committed_values_are_the_seven_the_page_shows_with_their_provenance():
    from article.figures.published_data import PUBLISHED

    assert re.fullmatch(r"[0-9a-f]{40}", PUBLISHED["commit"])
    assert PUBLISHED["repository"] == "https://github.com/distillpub/post--weight-banding"
    got = {n["network"]: round(n["R"], 2) for n in PUBLISHED["networks"]}
    assert got == SEVEN
    rotated = next(n for n in PUBLISHED["networks"] if n["network"] == "simplified net, rotated inputs")
    assert round(rotated["C"], 2) == 0.97
    for n in PUBLISHED["networks"]:
        assert n["file"].startswith("public/diagrams/reduced_weights/") and n["file"].endswith(".json")
        assert n["neurons"] >= 128 and n["kernel"] in ("3x3", "5x5")
        assert n["baseline_R"] == pytest.approx({"3x3": 0.25, "5x5": 1 / 6}[n["kernel"]], abs=1e-4)
    roles = {n["network"]: n["role"] for n in PUBLISHED["networks"]}
    assert roles["AlexNet conv5"] == roles["simplified net, no GAP"] == "control"


@pytest.mark.skipif(not os.environ.get("VW_WEIGHT_BANDING_REPO"),
                    reason="set VW_WEIGHT_BANDING_REPO to a clone of distillpub/post--weight-banding")
def test_the_committed_values_match_the_distill_repository():
    proc = subprocess.run([sys.executable, str(SCRIPT), "--repo", os.environ["VW_WEIGHT_BANDING_REPO"], "--check"],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_a_network_is_called_torchvisions_only_with_torchvisions_own_file():
    from article.figures.prose_numbers import network

    def entry(weights: str) -> dict:
        return {"tensors": [], "info": {"weights": weights, "torchvision_arch": "googlenet"}, "featured_nmf": []}

    assert network(entry("/runner/.cache/torch/hub/checkpoints/googlenet-1378be20.pth"))["weights_official"]
    other = network(entry("/tmp/googlenet-460555bf.pth"))
    assert not other["weights_official"] and other["weights_file"] == "googlenet-460555bf.pth"
