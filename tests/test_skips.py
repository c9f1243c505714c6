"""Residual skips separated from expanded weights (analysis.skips, expanded.identity_at, tensor_stage.shown_tensor):
a block with an identity skip is shown as its own contribution, exactly total minus the identity; a projection skip
is left in; a span over several identity-skip blocks loses the one identity their product holds."""
from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from analysis import skips
from analysis.core import jsonio
from analysis.blocks import find_blocks
from analysis.cache import entry_key
from analysis.expanded import expanded_weights, expanded_weights_split, identity_at
from analysis.recipes import RecipeSpec, auto_recipe
from analysis.core.spec import Subject, Workspace
from analysis.per_tensor import tensor_report, with_identity
from analysis.tensor_report import summary
from analysis.tensor_stage import analyse_tensors, shown_tensor, tensor_path
from test_expanded import _composed, _one_torch_thread  # noqa: F401 - the independent composition; one thread

C = 4


class Residual(nn.Module):
    """x + conv(x), ReLU after the addition (identity once linearized), like a ResNet block without downsample."""

    def __init__(self, c: int = C):
        super().__init__()
        self.conv = nn.Conv2d(c, c, 3, padding=1, bias=False)

    def forward(self, x):
        return F.relu(x + self.conv(x))


class Projected(nn.Module):
    """conv(x) + proj(x) with a 1x1 projection on the skip (a downsample without the stride)."""

    def __init__(self, c: int = C):
        super().__init__()
        self.conv = nn.Conv2d(c, c, 3, padding=1, bias=False)
        self.proj = nn.Conv2d(c, c, 1, bias=False)

    def forward(self, x):
        return F.relu(self.conv(x) + self.proj(x))


class Plain(nn.Module):
    def __init__(self, c: int = C):
        super().__init__()
        self.conv = nn.Conv2d(c, c, 3, padding=1, bias=False)

    def forward(self, x):
        return F.relu(self.conv(x))


class Net(nn.Module):
    def __init__(self, *blocks: nn.Module):
        super().__init__()
        torch.manual_seed(0)
        self.stem = nn.Conv2d(3, C, 3, padding=1)
        self.blocks = nn.Sequential(*blocks)
        with torch.no_grad():
            for m in self.modules():
                if isinstance(m, nn.Conv2d):
                    m.weight.normal_(0, 0.3)

    def forward(self, x):
        return self.blocks(torch.relu(self.stem(x))).mean((2, 3))


def _shown(model: nn.Module, upper: int = -1):
    """shown_tensor of the expanded weights from the stem's output to block `upper`'s (blocks as the graph names
    them: a lone residual block is "blocks", two are "blocks.0" and "blocks.1")."""
    names = [b.name for b in find_blocks(model.eval()).blocks]
    recipe = auto_recipe(model.eval(), 32, RecipeSpec(expansions=(("stem", names[upper]),)))
    job = next(t for t in recipe.tensors if t.source is not None)
    return shown_tensor(model, job, recipe), recipe, job


def _k(conv: nn.Conv2d) -> np.ndarray:
    return conv.weight.detach().double().numpy()


def _pad(k: np.ndarray, size: int) -> np.ndarray:
    p = (size - k.shape[-1]) // 2
    return np.pad(k, ((0, 0), (0, 0), (p, p), (p, p)))


def test_a_residual_blocks_own_weights_are_total_minus_the_identity_exactly():
    model = Net(Residual())
    (own, facts), recipe, job = _shown(model)
    assert facts == {"identity": "removed", "identity_at": [1, 1]}
    # The block's own contribution is its conv kernel, nothing else: the skip is gone.
    np.testing.assert_allclose(own, _k(model.blocks[0].conv), atol=2e-6)
    total = expanded_weights(recipe.network(model), recipe.hook(job.source), recipe.hook(job.layer))
    assert np.abs(total[np.arange(C), np.arange(C), 1, 1] - own[np.arange(C), np.arange(C), 1, 1]).min() > 0.999
    np.testing.assert_allclose(with_identity(own, facts["identity_at"]), total, atol=2e-6)  # the total, one step away
    split, at = expanded_weights_split(recipe.network(model), recipe.hook(job.source), recipe.hook(job.layer))
    assert at == identity_at(recipe.network(model), recipe.hook(job.source), recipe.hook(job.layer)) == (1, 1)
    np.testing.assert_array_equal(split, total)  # one linearized copy and size search for both
    assert [b.skip for b in find_blocks(model.eval()).blocks] == ["none", "identity"]


def test_a_projection_skip_is_left_in_and_said():
    model = Net(Projected())
    (shown, facts), recipe, job = _shown(model)
    assert facts == {"identity": "projection"}
    expected = _k(model.blocks[0].conv).copy()
    expected[:, :, 1, 1] += _k(model.blocks[0].proj)[:, :, 0, 0]  # the projection stays in the weights
    np.testing.assert_allclose(shown, expected, atol=2e-6)
    net = recipe.network(model)
    assert identity_at(net, recipe.hook(job.source), recipe.hook(job.layer)) is None  # and it is no identity
    assert [b.skip for b in find_blocks(model.eval()).blocks] == ["none", "projection"]


def test_a_span_over_two_residual_blocks_loses_one_identity():
    """(I + F2)(I + F1) = I + F1 + F2 + F2 F1: the shown span is the last three, composed independently here."""
    model = Net(Residual(), Residual())
    (own, facts), _, _ = _shown(model)
    assert facts == {"identity": "removed", "identity_at": [2, 2]}
    k1, k2 = _k(model.blocks[0].conv), _k(model.blocks[1].conv)
    expected = _pad(k1, 5) + _pad(k2, 5) + _composed(k1, k2)
    assert own.shape == (C, C, 5, 5)
    np.testing.assert_allclose(own, expected, atol=5e-6)


def test_a_span_through_a_block_without_skip_keeps_everything():
    """(I + F2) F1 has no identity term: nothing is removed, and the graph says there was no identity path."""
    model = Net(Plain(), Residual())
    (shown, facts), recipe, job = _shown(model)
    assert facts == {"identity": "none"}
    total = expanded_weights(recipe.network(model), recipe.hook(job.source), recipe.hook(job.layer))
    np.testing.assert_allclose(shown, total, atol=2e-6)


def test_resnet18_blocks_say_which_skip_they_have():
    from analysis.models import tv_resnet

    graph = find_blocks(tv_resnet.resnet18().eval())
    skip = {b.name: b.skip for b in graph.blocks}
    assert skip["layer1.1"] == skip["layer2.1"] == skip["layer4.1"] == "identity"
    assert skip["layer2.0"] == skip["layer3.0"] == skip["layer4.0"] == "projection"  # 1x1 conv downsample
    assert skips.between(graph.model, graph.hook("layer2.0"), graph.hook("layer2.1")) == "identity"
    assert skips.between(graph.model, graph.hook("layer1.1"), graph.hook("layer2.1")) == "projection"


def test_the_report_shows_own_weights_and_carries_the_totals_views():
    rng = np.random.default_rng(0)
    own = rng.normal(0, 0.1, size=(6, 6, 3, 3)).astype(np.float32)
    r = tensor_report(own, skip={"identity": "removed", "identity_at": [1, 1]})
    total = with_identity(own, [1, 1])
    assert r["identity"] == "removed" and r["identity_at"] == [1, 1]
    np.testing.assert_allclose(r["weight"], own)
    assert np.asarray(r["top_inputs"]["index"])[:, 0].tolist() != list(range(6))  # own: no skip ranking first
    assert np.asarray(r["total"]["top_inputs"]["index"])[:, 0].tolist() == list(range(6))  # total: the skip does
    np.testing.assert_allclose(r["total"]["norm"], np.sqrt((total.astype(np.float64) ** 2).sum((1, 2, 3))), rtol=1e-6)
    np.testing.assert_allclose(r["total"]["banding"]["R"], tensor_report(total)["banding"]["R"], rtol=1e-6)
    assert "total" not in tensor_report(own) and tensor_report(own)["identity"] == "none"


def test_a_record_computed_before_skips_were_separated_is_not_served(tmp_path):
    """The tensor record's key changed: a record of the total under the old key is recomputed, not shown as own."""
    model = Net(Residual()).eval()
    recipe = auto_recipe(model, 32, RecipeSpec(expansions=(("stem", "blocks"),), layers=()))
    info = {"weights_sha256": "abc"}
    s = Subject("net", model, info, recipe)
    ws = Workspace(cache_dir=tmp_path, root=tmp_path / "analysis", n_jobs=1, featureviz={}, progress=False)
    job = recipe.tensors[0]
    path = tensor_path(s, ws, job.id)
    total = expanded_weights(recipe.network(model), recipe.hook(job.source), recipe.hook(job.layer))
    old = {"model": "net", "id": job.id, "layer": job.layer, "source": job.source, "label": job.label,
           "schema": "vw-analysis/1", "key": entry_key("abc", "tensor", job.id), **tensor_report(total)}
    jsonio.write_json(path, old)
    analyse_tensors(s, ws)
    record = jsonio.read_json(path)
    assert record["key"] != old["key"] and record["identity"] == "removed" and summary(record)["identity"] == "removed"
    np.testing.assert_allclose(record["weight"], _k(model.blocks[0].conv), atol=2e-6)
