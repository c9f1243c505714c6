"""InceptionV1 end to end without its real weights: a random GoogLeNet saved by the test stands in for the user's
googlenet-1378be20.pth, so the recipe (layer names, expanded weights, context) is exercised exactly as it would be."""
from __future__ import annotations

import functools
import hashlib
from pathlib import Path

import pytest
import torch

from analysis import jsonio
from analysis.models import googlenet


@pytest.fixture()
def fake_inception(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    torch.manual_seed(0)
    path = tmp_path / "googlenet-test.pth"
    torch.save(googlenet.GoogLeNet().state_dict(), path)
    prefix = hashlib.sha256(path.read_bytes()).hexdigest()[:8]
    monkeypatch.setenv("VW_GOOGLENET_WEIGHTS", str(path))
    # Only the hash differs from a real checkpoint: everything else goes through the real loader.
    monkeypatch.setattr(googlenet, "load_googlenet",
                        functools.partial(googlenet.load_googlenet, expected_sha256_prefix=prefix))
    return path


def test_inceptionv1_recipe_runs_and_matches_published_supports(fake_inception: Path, tmp_path: Path):
    from analysis.pipeline import AnalysisConfig, ModelSpec, run

    cache = tmp_path / "cache"
    manifest_path = run(AnalysisConfig(models=[ModelSpec("inceptionv1")], cache_dir=cache, n_jobs=1,
                                       featureviz={"size": 32, "steps": 2},
                                       examples={"count": 4}), progress=False)  # 4 photos: the pass, not its cost
    manifest = jsonio.read_json(manifest_path)
    assert "inceptionv1" in manifest["models"], manifest.get("unavailable")
    entry = manifest["models"]["inceptionv1"]
    shapes = {t["id"]: t["shape"] for t in entry["tensors"]}
    assert shapes["conv1.conv"] == [64, 3, 7, 7]
    # mixed3a -> mixed3b: every branch of 3b reaches 3x3 of 3a's output (the published 3x3 support).
    assert shapes["inception3a->inception3b"] == [480, 256, 3, 3]
    # one more 3x3 stage below (3a itself): 3 + (3 - 1) * 1 = 5.
    assert shapes["maxpool2->inception3b"] == [480, 192, 5, 5]
    first = jsonio.read_json(cache / "analysis" / entry["first_layer"]["file"])
    assert len(first["rgb"]) == 64 and len(first["rgb"][0]) == 7
    assert (cache / "analysis" / entry["first_layer"]["image"]).is_file()
    context = jsonio.read_json(cache / "analysis" / entry["context"][0]["file"])
    assert context["kernel"] == [3, 3] and len(context["featureviz"]["upper"]) == len(context["outs"])
    for rel in context["featureviz"]["lower"] + context["featureviz"]["upper"]:
        assert (cache / rel).is_file()
