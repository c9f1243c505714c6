"""Pretrained zoo models: EfficientNet-Lite0 from its wheel, GoogLeNet from a local file only (never downloaded)."""
import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from analysis import models
from analysis.core import data
from analysis.core.errors import ModelUnavailable, WeightsError
from analysis.models import efficientnet, googlenet

REFERENCE = Path(__file__).parent / "data" / "torchvision-state-dicts.json"  # read off torchvision 0.29.1


def _square_224(photo: np.ndarray) -> torch.Tensor:
    """Centre square crop, antialiased resize: [1, 3, 224, 224] in [0, 1]."""
    h, w, _ = photo.shape
    s = min(h, w)
    crop = np.array(photo[(h - s) // 2 : (h - s) // 2 + s, (w - s) // 2 : (w - s) // 2 + s])
    t = torch.from_numpy(crop).permute(2, 0, 1)[None]
    return F.interpolate(t, size=(224, 224), mode="bilinear", antialias=True, align_corners=False).clamp(0, 1)


@pytest.fixture(autouse=True)
def no_googlenet_anywhere(tmp_path, monkeypatch):
    """Hermetic: no real hub cache or env var leaks into these tests."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch-home"))
    for var in googlenet.WEIGHTS.env_vars:
        monkeypatch.delenv(var, raising=False)


# ---------------------------------------------------------------------------------------------
# EfficientNet-Lite0


@pytest.fixture(scope="module")
def lite0():
    return models.load("efficientnet-lite0")


def test_lite0_keys_match_checkpoint_exactly(lite0):
    ckpt = torch.load(efficientnet.weights_path(), weights_only=True, map_location="cpu")
    assert list(lite0.state_dict()) == list(ckpt)
    assert torch.equal(lite0.state_dict()["_blocks.15._project_conv.weight"], ckpt["_blocks.15._project_conv.weight"])
    assert not lite0.training
    assert list(lite0.named_children())[0][0] == "normalize"
    assert all(m.eps == 1e-3 for m in lite0.modules() if isinstance(m, torch.nn.BatchNorm2d))


def test_lite0_classifies_bundled_photos(lite0):
    x = torch.cat([_square_224(data.load_photo(n)) for n in ("chelsea", "coffee", "motorcycle")])
    with torch.no_grad():
        top5 = lite0(x).topk(5, dim=1).indices.tolist()
    assert top5[0][0] in range(281, 286)  # tabby / tiger cat / Persian / Siamese / Egyptian cat
    assert top5[1][0] in (967, 968, 504)  # espresso / cup / coffee mug
    assert top5[2][0] in (665, 670)  # moped / motor scooter


def test_lite0_preprocessing_choice_beats_alternatives():
    """The TF-Lite scaling ([-1, 1]) is what the checkpoint expects: it is more confident on the right classes."""
    x = torch.cat([_square_224(data.load_photo(n)) for n in ("chelsea", "coffee", "motorcycle")])
    right = [list(range(281, 286)), [967, 968, 504], [665, 670]]

    def score(model):
        with torch.no_grad():
            p = model(x).softmax(1)
        return float(np.mean([np.log(p[i, c].sum().item()) for i, c in enumerate(right)]))

    ours = score(efficientnet.load_efficientnet_lite0())
    imagenet = score(efficientnet.load_efficientnet_lite0(mean=efficientnet.IMAGENET_MEAN, std=efficientnet.IMAGENET_STD))
    assert ours > imagenet + 0.05


def test_lite0_tf_same_padding_is_asymmetric():
    conv = efficientnet.SameConv2d(1, 1, 3, stride=2, bias=False)
    conv.weight.data.zero_()
    conv.weight.data[0, 0, 0, 0] = 1.0  # picks the top-left tap
    x = torch.arange(1.0, 17.0).reshape(1, 1, 4, 4)
    # TF SAME on 4 -> 2 pads 0 before, 1 after: the first output reads x[0, 0] itself (no padding on top/left)
    assert conv(x)[0, 0].tolist() == [[1.0, 3.0], [9.0, 11.0]]


def test_lite0_describe():
    facts = models.describe("efficientnet-lite0")
    json.dumps(facts)
    assert facts["sha256"].startswith("57934424")
    assert facts["input_size"] == [224, 224]
    layers = facts["conv_layers"]
    assert layers[0] == {"name": "_conv_stem", "shape": [32, 3, 3, 3], "kind": "conv"}
    assert layers[-1] == {"name": "_conv_head", "shape": [1280, 320, 1, 1], "kind": "pointwise"}
    kinds = [c["kind"] for c in layers]
    assert kinds.count("depthwise") == 16 and kinds.count("pointwise") == 15 + 16 + 1
    assert layers[1]["name"] == "_blocks.0._depthwise_conv" and layers[1]["shape"] == [32, 1, 3, 3]
    assert facts["parameter_count"] == sum(
        v.numel() for k, v in torch.load(facts["weights"], weights_only=True).items() if "running" not in k and "num_batches" not in k
    )


# ---------------------------------------------------------------------------------------------
# GoogLeNet / InceptionV1


def test_googlenet_keys_and_shapes_match_torchvision_reference():
    state_dict = json.loads(REFERENCE.read_text())["models"]["googlenet"]["state_dict"]
    ref = {k: tuple(v) for k, v in state_dict.items() if not k.startswith("aux")}
    ours = googlenet.expected_shapes()
    assert list(ours) == list(ref)  # same names, same order (forward order)
    assert ours == ref


def test_googlenet_normalize_equals_imagenet_norm_plus_transform_input():
    x = torch.rand(2, 3, 8, 8)
    mean, std = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1), torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
    z = (x - mean) / std
    tv = z * std / 0.5 + (mean - 0.5) / 0.5  # torchvision GoogLeNet._transform_input
    assert torch.allclose(googlenet.GoogLeNet().normalize(x), tv, atol=1e-6)


@pytest.fixture
def fake_checkpoint(tmp_path):
    """A randomly initialised GoogLeNet saved like an old torchvision file: aux* keys, no num_batches_tracked."""
    torch.manual_seed(0)
    model = googlenet.GoogLeNet().eval()
    with torch.no_grad():  # non-trivial BN statistics so a mis-load would show in the outputs
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.uniform_(-0.1, 0.1)
                m.running_var.uniform_(0.5, 1.5)
    state = {k: v for k, v in model.state_dict().items() if not k.endswith("num_batches_tracked")}
    state["aux1.fc2.weight"] = torch.zeros(1000, 1024)
    state["aux2.conv.conv.weight"] = torch.zeros(128, 528, 1, 1)
    path = tmp_path / "my-googlenet.pth"
    torch.save(state, path)
    return model, path, hashlib.sha256(path.read_bytes()).hexdigest()[:8]


def test_googlenet_loads_a_local_file_with_its_hash(fake_checkpoint):
    model, path, prefix = fake_checkpoint
    loaded = googlenet.load_googlenet(path, expected_sha256_prefix=prefix)
    assert not loaded.training
    x = torch.rand(1, 3, 64, 64)
    with torch.no_grad():
        assert torch.allclose(loaded(x), model(x))


def test_googlenet_refuses_wrong_hash_and_wrong_shapes(fake_checkpoint, tmp_path):
    _, path, prefix = fake_checkpoint
    with pytest.raises(WeightsError, match="my-googlenet.pth.*sha256"):
        googlenet.load_googlenet(path)  # default prefix 1378be20 is torchvision's, not ours
    wrong = ("0" if prefix[0] != "0" else "1") + prefix[1:]
    with pytest.raises(WeightsError, match="sha256"):
        googlenet.load_googlenet(path, expected_sha256_prefix=wrong)
    state = torch.load(path, weights_only=True)
    state["fc.weight"] = torch.zeros(10, 1024)
    del state["inception5b.branch1.conv.weight"]
    torch.save(state, tmp_path / "bad.pth")
    with pytest.raises(WeightsError, match=r"bad\.pth.*missing key\(s\): inception5b\.branch1\.conv\.weight.*fc\.weight"):
        googlenet.load_googlenet(tmp_path / "bad.pth", expected_sha256_prefix=None)


def test_googlenet_absent_is_unavailable_with_instructions():
    assert "inceptionv1" not in models.available()
    with pytest.raises(ModelUnavailable) as e:
        models.load("inceptionv1")
    msg = str(e.value)
    assert "VW_WEIGHTS_GOOGLENET" in msg and "googlenet-1378be20.pth" in msg and "never downloaded" in msg
    assert str(googlenet.hub_checkpoint_path()) in msg


def test_googlenet_file_is_checked_against_the_prefix_in_its_own_name(fake_checkpoint, monkeypatch, tmp_path):
    """As torchvision's loader does: googlenet-<8 hex>.pth must hash to those digits (a test's random weights named
    after their own hash load; the same bytes under another prefix do not), and such a file is never called
    torchvision's in the model's facts."""
    model, path, prefix = fake_checkpoint
    named = tmp_path / f"googlenet-{prefix}.pth"
    named.write_bytes(path.read_bytes())
    monkeypatch.setenv(googlenet.ENV_VAR, str(named))
    loaded = models.load("inceptionv1")
    x = torch.rand(1, 3, 64, 64)
    with torch.no_grad():
        assert torch.allclose(loaded(x), model(x))
    facts = models.describe("inceptionv1")
    assert named.name in facts["source"] and "not torchvision's googlenet-1378be20.pth" in facts["source"]
    wrong = tmp_path / f"googlenet-{'0' if prefix[0] != '0' else '1'}{prefix[1:]}.pth"
    wrong.write_bytes(path.read_bytes())
    monkeypatch.setenv(googlenet.ENV_VAR, str(wrong))
    with pytest.raises(WeightsError, match="sha256"):
        models.load("inceptionv1")


def test_googlenet_found_through_env_and_hub_cache(fake_checkpoint, monkeypatch, tmp_path):
    _, path, _ = fake_checkpoint
    monkeypatch.setenv(googlenet.ENV_VAR, str(path))
    assert "inceptionv1" in models.available()
    with pytest.raises(WeightsError, match="sha256"):  # found, but it is not torchvision's file
        models.load("inceptionv1")
    monkeypatch.setenv(googlenet.ENV_VAR, str(tmp_path / "typo.pth"))
    assert "inceptionv1" not in models.available()
    with pytest.raises(ModelUnavailable, match="typo.pth"):
        googlenet.load_googlenet()
    monkeypatch.delenv(googlenet.ENV_VAR)
    hub = googlenet.hub_checkpoint_path()
    assert hub == tmp_path / "torch-home" / "hub" / "checkpoints" / "googlenet-1378be20.pth"
    hub.parent.mkdir(parents=True)
    hub.write_bytes(path.read_bytes())
    assert googlenet.find_weights() == hub and "inceptionv1" in models.available()
