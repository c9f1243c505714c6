"""The explorer's fields in a tensor record (norm, per-neuron NMF error, top input kernels, top outputs) and the
manifest entry helpers summary() and link_next()."""
from __future__ import annotations

import numpy as np
import pytest

from analysis.nmf import reconstruction_error
from analysis.recipes import auto_recipe
from analysis.per_tensor import tensor_report
from analysis.tensor_report import link_next, summary
from analysis.tensor_stage import tensor_of
from test_blocks import TinyInception, TinyMobileNet, TinyResNet


def _weight(shape=(16, 8, 3, 3), seed=0):
    return np.random.default_rng(seed).normal(size=shape).astype(np.float32)


def test_explorer_fields_match_the_weight():
    w = _weight()
    w[5] *= 10  # neuron 5 is the strongest
    w[:, 2] *= 20  # input channel 2 feeds everyone most
    r = tensor_report(w)
    assert np.allclose(r["norm"], np.linalg.norm(w.reshape(16, -1), axis=1), rtol=1e-5)
    assert int(np.argmax(r["norm"])) == 5
    ti = r["top_inputs"]
    assert ti["kernel"].shape == (16, 8, 3, 3)
    for o in (0, 5, 15):
        assert ti["index"][o][0] == 2
        for k in range(8):
            assert np.array_equal(ti["kernel"][o, k], w[o, ti["index"][o, k]])  # signed, not abs
    to = r["top_outputs"]
    assert to["index"].shape == (8, 8) and to["strength"].shape == (8, 8)
    assert all(to["index"][i][0] == 5 for i in range(8))  # every channel feeds neuron 5 hardest
    assert np.all(np.diff(to["strength"], axis=1) <= 0)
    assert np.isclose(to["strength"][3, 0], np.linalg.norm(w[5, 3]), rtol=1e-5)
    ne = r["nmf"]["neuron_error"]
    assert ne.shape == (16,) and np.all((ne >= 0) & (ne <= 1))
    assert np.allclose(ne, reconstruction_error(w, r["nmf"]["spatial"], r["nmf"]["channels"], per_neuron=True))


def test_summary_has_the_table_columns():
    r = tensor_report(_weight((4, 3, 5, 5)), init=_weight((4, 3, 5, 5), seed=1))
    s = summary(r)
    assert s["parameters"] == 4 * 3 * 25 and s["shape"] == [4, 3, 5, 5]
    assert s["R_baseline"] == r["banding"]["baseline_R"] == 4 / 24
    assert s["nmf_error"] == r["nmf"]["error"] and "R_delta" in s and "C_delta" in s


def test_link_next_follows_blocks_and_kernels():
    blocks = [{"id": "a->b", "kind": "block", "layer": "b", "source": "a", "shape": [4, 3, 3, 3]},
              {"id": "b->c", "kind": "block", "layer": "c", "source": "b", "shape": [5, 4, 3, 3]},
              {"id": "a->c", "kind": "span", "layer": "c", "source": "a", "shape": [5, 3, 5, 5]},
              {"id": "c->d", "kind": "block", "layer": "d", "source": "c", "shape": [6, 5, 3, 3]}]
    link_next(blocks)
    assert [e["next"] for e in blocks] == ["b->c", "c->d", "c->d", None]
    convs = [{"id": f"conv{i}", "kind": "kernel", "layer": f"conv{i}", "source": None, "shape": s}
             for i, s in enumerate([[8, 3, 3, 3], [16, 8, 3, 3], [16, 99, 3, 3], [32, 16, 3, 3]])]
    link_next(convs)
    assert [e["next"] for e in convs] == ["conv1", "conv3", "conv3", None]


def _traced_entries(model):
    """The manifest entries analyse_tensors() links, for a traced model: ids, kinds and the real tensors' shapes."""
    recipe = auto_recipe(model.eval(), 32)
    entries = [{"id": j.id, "kind": j.kind, "layer": j.layer, "source": j.source,
                "shape": list(tensor_of(model, j, recipe).shape)} for j in recipe.tensors]
    link_next(entries, recipe.blocks_json())
    return {e["id"]: e for e in entries}


def test_a_blocks_last_kernel_feeds_the_block_tensor_read_from_that_block():
    # MobileNetV2's stem kernel features.0.0 is block features.0: its outputs are what features.0->features.1 reads.
    mnv2 = _traced_entries(TinyMobileNet())
    assert mnv2["features.0.0"]["next"] == "features.0->features.1"
    assert mnv2["features.0->features.1"]["shape"][1] == mnv2["features.0.0"]["shape"][0] == 8
    # A residual block's last conv (inside layer1.0) feeds layer1.0->layer1.1; its first conv is not the block's
    # output and keeps the next kernel that reads its channels.
    resnet = _traced_entries(TinyResNet())
    assert resnet["conv1"]["next"] == "conv1->layer1.0"
    assert resnet["layer1.0.conv2"]["next"] == "layer1.0->layer1.1"
    assert resnet["layer1.0.conv1"]["next"] == "layer1.0.conv2"
    # A concatenation's branch is a slice of its block's output, never linked to the block tensor as if it were all.
    inception = _traced_entries(TinyInception())
    assert inception["stem"]["next"] == "stem->mixed3a"
    assert inception["mixed3a.branch2.2"]["next"] != "mixed3a->mixed3b"


def test_per_tensor_analyses_register_themselves_once():
    from analysis import per_tensor

    names = per_tensor.registered()
    assert {"banding", "nmf", "views"} <= set(names)
    with pytest.raises(ValueError, match="registered twice"):
        per_tensor.register("nmf")(lambda weight, facts: {})
    assert per_tensor.registered()["nmf"] is names["nmf"]


def test_two_analyses_may_not_write_one_field():
    from analysis import per_tensor

    assert per_tensor.merge([{"total": {"banding": 1}}, {"total": {"norm": 2}}]) == {"total": {"banding": 1, "norm": 2}}
    for parts in ([{"a": 1}, {"a": 2}], [{"total": {"norm": 1}}, {"total": {"norm": 2}}], [{"shape": [1]}]):
        with pytest.raises(ValueError):
            per_tensor.merge(parts)
