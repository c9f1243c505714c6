"""Graph-derived blocks and automatic recipes on small networks the tests build (analysis.blocks, analysis.recipes)."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from analysis.blocks import find_blocks
from analysis.core.errors import AnalysisError
from analysis.expanded import expanded_weights
from analysis.recipes import RecipeSpec, auto_recipe


def cbr(cin, cout, k=3, stride=1, groups=1):
    return nn.Sequential(nn.Conv2d(cin, cout, k, stride, k // 2, groups=groups, bias=False), nn.BatchNorm2d(cout),
                         nn.ReLU6())


class InvertedResidual(nn.Module):
    """torchvision MobileNetV2 layout: conv.0 expand, conv.1 depthwise, conv.2 project, conv.3 batch norm."""

    def __init__(self, cin, cout, stride=1, expand=4):
        super().__init__()
        mid = cin * expand
        self.skip = stride == 1 and cin == cout
        layers = [cbr(cin, mid, 1)] if expand != 1 else []  # like torchvision: no expansion when t = 1
        self.conv = nn.Sequential(*layers, cbr(mid, mid, 3, stride, groups=mid), nn.Conv2d(mid, cout, 1, bias=False),
                                  nn.BatchNorm2d(cout))

    def forward(self, x):
        return x + self.conv(x) if self.skip else self.conv(x)


class TinyMobileNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(cbr(3, 8, 3, 2), InvertedResidual(8, 8, 1, 1), InvertedResidual(8, 12, 2),
                                      InvertedResidual(12, 12), cbr(12, 32, 1))
        self.classifier = nn.Linear(32, 5)

    def forward(self, x):
        x = self.features(x)
        return self.classifier(torch.flatten(nn.functional.adaptive_avg_pool2d(x, 1), 1))


class Basic(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.conv1, self.bn1 = nn.Conv2d(c, c, 3, padding=1, bias=False), nn.BatchNorm2d(c)
        self.conv2, self.bn2 = nn.Conv2d(c, c, 3, padding=1, bias=False), nn.BatchNorm2d(c)
        self.relu = nn.ReLU()

    def forward(self, x):
        out = self.relu(self.bn1(self.conv1(x)))
        return self.relu(self.bn2(self.conv2(out)) + x)  # torchvision reuses one ReLU module twice


class Bottleneck(nn.Module):
    def __init__(self, c, mid):
        super().__init__()
        self.conv1, self.conv2, self.conv3 = nn.Conv2d(c, mid, 1), nn.Conv2d(mid, mid, 3, padding=1), nn.Conv2d(mid, c, 1)

    def forward(self, x):
        return torch.relu(self.conv3(torch.relu(self.conv2(torch.relu(self.conv1(x))))) + x)


class TinyResNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 8, 5, 2, 2)
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        self.layer1 = nn.Sequential(Basic(8), Bottleneck(8, 4))
        self.fc = nn.Linear(8, 3)

    def forward(self, x):
        x = self.layer1(self.maxpool(torch.relu(self.conv1(x))))
        return self.fc(x.mean((2, 3)))


class Mixed(nn.Module):
    def __init__(self, cin):
        super().__init__()
        self.branch1 = nn.Conv2d(cin, 4, 1)
        self.branch2 = nn.Sequential(nn.Conv2d(cin, 4, 1), nn.ReLU(), nn.Conv2d(4, 6, 3, padding=1))
        self.branch3 = nn.Sequential(nn.MaxPool2d(3, 1, 1), nn.Conv2d(cin, 2, 1))

    def forward(self, x):
        return torch.cat([self.branch1(x), self.branch2(x), self.branch3(x)], 1)


class TinyInception(nn.Module):
    def __init__(self):
        super().__init__()
        self.stem = nn.Conv2d(3, 6, 3, padding=1)
        self.mixed3a, self.mixed3b = Mixed(6), Mixed(12)

    def forward(self, x):
        return self.mixed3b(self.mixed3a(torch.relu(self.stem(x)))).mean((2, 3))


class Separable(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 4, 3, padding=1)  # gray input: a complete block on its own
        self.dw = nn.Conv2d(4, 4, 3, padding=1, groups=4)
        self.pw = nn.Conv2d(4, 8, 1)

    def forward(self, x):
        return self.pw(torch.relu(self.dw(torch.relu(self.conv(x))))).mean((2, 3))


class Untraceable(nn.Module):
    def __init__(self):
        super().__init__()
        self.a, self.b = nn.Conv2d(3, 4, 3, padding=1), nn.Conv2d(4, 4, 3, padding=1)

    def forward(self, x):
        if x.sum() > 0:  # data-dependent control flow: torch.fx cannot trace this
            x = x * 1.0
        return self.b(torch.relu(self.a(x))).mean((2, 3))


def summary(model):
    return [(b.name, b.kind, b.convs) for b in find_blocks(model.eval()).blocks]


def test_inverted_residuals_are_blocks_and_the_head_conv_joins_the_last():
    blocks = summary(TinyMobileNet())
    assert [(n, k) for n, k, _ in blocks] == [
        ("features.0", "conv"), ("features.1", "separable"), ("features.2", "inverted residual"),
        ("features.3+features.4", "inverted residual")]
    assert blocks[3][2] == ("features.3.conv.0.0", "features.3.conv.1.0", "features.3.conv.2", "features.4.0")


def test_residual_and_bottleneck_blocks_cover_their_skip():
    assert summary(TinyResNet()) == [
        ("conv1", "conv", ("conv1",)),
        ("layer1.0", "residual", ("layer1.0.conv1", "layer1.0.conv2")),
        ("layer1.1", "bottleneck", ("layer1.1.conv1", "layer1.1.conv2", "layer1.1.conv3"))]


def test_concatenations_are_blocks():
    assert [(n, k) for n, k, _ in summary(TinyInception())] == [
        ("stem", "conv"), ("mixed3a", "concatenation"), ("mixed3b", "concatenation")]


def test_depthwise_separable_pair_is_one_block():
    assert [(n, k) for n, k, _ in summary(Separable())] == [("conv", "conv"), ("dw+pw", "separable")]


def test_untraceable_model_falls_back_to_module_order_and_says_why():
    graph = find_blocks(Untraceable().eval())
    assert not graph.traced and "could not trace" in graph.note and "module order" in graph.note
    assert [b.name for b in graph.blocks] == ["a", "b"]


@pytest.mark.parametrize("make", [TinyMobileNet, TinyResNet, TinyInception, Separable])
def test_probed_model_computes_the_same_function(make):
    torch.manual_seed(0)
    model = make().eval()
    x = torch.rand(2, 1 if make is Separable else 3, 32, 32)
    probed = find_blocks(model).model
    assert torch.allclose(model(x), probed(x), atol=1e-6)


def test_block_expansion_equals_expansion_between_the_same_modules():
    """Block markers sit where torchvision's own modules end: the expanded weights agree exactly."""
    torch.manual_seed(1)
    model = TinyMobileNet().eval()
    graph = find_blocks(model)
    via_blocks = expanded_weights(graph.model, graph.hook("features.1"), graph.hook("features.2"))
    via_modules = expanded_weights(model, "features.1", "features.2")
    assert via_blocks.shape == via_modules.shape == (12, 8, 3, 3)  # one 3x3 depthwise between two 1x1s
    np.testing.assert_allclose(via_blocks, via_modules, rtol=1e-9, atol=1e-12)


def test_auto_recipe_never_shows_a_1x1_or_depthwise_kernel_alone():
    model = TinyMobileNet().eval()
    recipe = auto_recipe(model, 32)
    own = [t.layer for t in recipe.tensors if t.source is None]
    assert own == ["features.0.0"]  # the stem; every 1x1 and depthwise conv is inside a block expansion
    assert [t.id for t in recipe.tensors if t.source] == [
        "features.0->features.1", "features.1->features.2", "features.2->features.3+features.4"]
    assert recipe.first_layer == "features.0.0"
    assert [(c.lower, c.upper) for c in recipe.context] == [("features.1", "features.2")]  # a third of the way up


def test_recipe_spec_overrides_and_validates_names():
    model = TinyResNet().eval()
    spec = RecipeSpec.from_json({"layers": ["layer1.0.conv2"], "expansions": ["conv1 -> layer1.1"],
                                 "context": [{"weights": "conv1 -> layer1.1", "outputs": 4, "neurons": [1, 2]}],
                                 "featureviz": {"size": 32}})
    recipe = auto_recipe(model, 32, spec)
    assert [t.id for t in recipe.tensors] == ["layer1.0.conv2", "conv1->layer1.1"]
    assert recipe.context[0].neurons == (1, 2) and recipe.context[0].n_out == 4
    assert recipe.featureviz == {"size": 32}
    with pytest.raises(AnalysisError, match="neither a block nor a module"):
        auto_recipe(model, 32, RecipeSpec.from_json({"expansions": ["conv1 -> layer9"]}))
    with pytest.raises(AnalysisError, match="1x1 or depthwise"):
        auto_recipe(model, 32, RecipeSpec.from_json({"layers": ["layer1.1.conv1"]}))
    with pytest.raises(AnalysisError, match="not among the analysed tensors"):
        auto_recipe(model, 32, RecipeSpec.from_json({"layers": ["conv1"], "context": [{"weights": "layer1.0.conv2"}]}))


def test_block_graph_survives_a_trip_to_a_joblib_worker():
    """Worker processes get the recipe by cloudpickle; the probed GraphModule is re-derived there."""
    import cloudpickle  # what joblib's loky backend pickles tasks with

    graph = find_blocks(TinyResNet().eval())
    again = cloudpickle.loads(cloudpickle.dumps(graph))
    assert [b.name for b in again.blocks] == [b.name for b in graph.blocks]
    x = torch.rand(1, 3, 32, 32)
    assert torch.equal(again.model(x), graph.model(x))


def test_a_trailing_1x1_is_composed_exactly_through_the_inner_boundary():
    """The last block's expanded weights via its inner boundary equal the direct computation (chain rule)."""
    from analysis.expanded import expanded_weights_via

    torch.manual_seed(2)
    model = TinyMobileNet().eval()
    recipe = auto_recipe(model, 32)
    last = recipe.tensors[-1]
    assert last.id == "features.2->features.3+features.4" and last.via == "vw_block_3_inner"
    net = recipe.network(model)
    direct = expanded_weights(net, recipe.hook(last.source), recipe.hook(last.layer))
    composed = expanded_weights_via(net, recipe.hook(last.source), last.via, recipe.hook(last.layer))
    assert composed.shape == direct.shape == (32, 12, 3, 3)
    np.testing.assert_allclose(composed, direct, rtol=1e-9, atol=1e-12)


def test_float32_expanded_weights_agree_with_float64_far_below_what_figures_show():
    """The pipeline expands in float32 (3-4x faster on the CPU): its relative error stays near 1e-6."""
    torch.manual_seed(3)
    model = TinyResNet().eval()
    graph = find_blocks(model)
    exact = expanded_weights(graph.model, graph.hook("conv1"), graph.hook("layer1.1"))
    fast = expanded_weights(graph.model, graph.hook("conv1"), graph.hook("layer1.1"), dtype=torch.float32)
    assert fast.dtype == np.float32 and exact.dtype == np.float64
    assert np.abs(fast - exact).max() <= 1e-5 * np.abs(exact).max()


class FeaturesToo(nn.Module):
    """Returns pooled logits and an early feature map, as many research models do."""

    def __init__(self):
        super().__init__()
        self.a, self.b, self.c = (nn.Conv2d(3, 8, 3, padding=1), nn.Conv2d(8, 8, 3, padding=1),
                                  nn.Conv2d(8, 8, 3, padding=1))

    def forward(self, x):
        f = torch.relu(self.a(x))
        g = torch.relu(self.b(f))
        return (self.c(g) + g).mean((2, 3)), f


def test_a_second_returned_tensor_does_not_hide_the_blocks():
    graph = find_blocks(FeaturesToo().eval())
    assert [(b.name, b.kind) for b in graph.blocks] == [("a", "conv"), ("b", "conv"), ("c", "residual")]
    assert expanded_weights(graph.model, graph.hook("b"), graph.hook("c")).shape == (8, 8, 3, 3)


def test_a_module_named_input_does_not_take_the_network_inputs_name():
    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.input, self.pw = nn.Conv2d(3, 8, 3, padding=1), nn.Conv2d(8, 16, 1)
            self.dw, self.proj = nn.Conv2d(16, 16, 3, padding=1, groups=16), nn.Conv2d(16, 8, 1)

        def forward(self, x):
            return self.proj(self.dw(self.pw(torch.relu(self.input(x))))).mean((2, 3))

    recipe = auto_recipe(Net().eval(), 32)
    assert [b.name for b in recipe.graph.blocks] == ["input'", "pw+dw+proj"]
    job = next(t for t in recipe.tensors if t.source)
    assert (job.source, job.kind) == ("input'", "block")
    assert expanded_weights(recipe.network(Net().eval()), recipe.hook(job.source), recipe.hook(job.layer)).shape[1] == 8
