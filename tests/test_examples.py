"""Dataset examples are the true top activators (checked by brute force) and their crops hold the receptive field."""
from __future__ import annotations

from collections import OrderedDict

import numpy as np
import pytest
import torch
from torch import nn

from analysis.errors import AnalysisError
from analysis.examples import dataset_examples, receptive_field, resize_photo


def two_conv_net(channels_in: int = 3, stride: int = 1) -> nn.Module:
    """conv3x3 -> relu -> conv3x3: receptive field 5 (stride 1) or 7 (stride 2 in the first conv)."""
    g = torch.Generator().manual_seed(7)
    net = nn.Sequential(OrderedDict(
        conv1=nn.Conv2d(channels_in, 6, 3, padding=1, stride=stride), relu1=nn.ReLU(),
        conv2=nn.Conv2d(6, 4, 3, padding=1)))
    with torch.no_grad():
        for p in net.parameters():
            p.copy_(torch.randn(p.shape, generator=g) * 0.5)
    return net.eval()


@pytest.fixture(scope="module")
def photos() -> list[tuple[str, np.ndarray]]:
    rng = np.random.default_rng(11)
    return [(f"p{i}", rng.random(shape, dtype=np.float32))
            for i, shape in enumerate([(20, 20, 3), (20, 20, 3), (24, 18, 3), (16, 30, 3)])]


def brute_force(net: nn.Module, photos, channel: int) -> list[tuple[float, str, int, int]]:
    """Every photo's best (activation, name, y, x), one photo at a time, sorted best first."""
    best = []
    for name, p in photos:
        with torch.no_grad():
            act = net(torch.from_numpy(p).permute(2, 0, 1)[None])[0, channel].numpy()
        scores = [(-float(act[y, x]), name, y, x) for y in range(act.shape[0]) for x in range(act.shape[1])]
        best.append(min(scores))
    return [(-s, n, y, x) for s, n, y, x in sorted(best)]


def test_examples_are_the_brute_force_top_activators(photos):
    net = two_conv_net()
    result = dataset_examples(net, "conv2", [0, 3, 1], photos, crop=5, top=3)
    assert len(result) == 3
    for channel, examples in zip([0, 3, 1], result):
        expected = brute_force(net, photos, channel)[:3]
        got = [(e.activation, e.photo, e.fy, e.fx) for e in examples]
        assert [g[1:] for g in got] == [e[1:] for e in expected]
        np.testing.assert_allclose([g[0] for g in got], [e[0] for e in expected], rtol=1e-5, atol=1e-6)


def test_crop_is_the_receptive_field_of_the_position(photos):
    net = two_conv_net()
    examples = [e for chan in dataset_examples(net, "conv2", range(4), photos, crop=5, top=4) for e in chan]
    photo = dict(photos)
    checked = 0
    for channel, e in zip(np.repeat(range(4), 4), examples):
        assert e.crop.shape == (5, 5, 3) and e.crop.dtype == np.float32
        h, w = photo[e.photo].shape[:2]
        if 2 <= e.fy < h - 2 and 2 <= e.fx < w - 2:  # interior: no zero padding in the receptive field
            assert (e.y, e.x) == (e.fy - 2, e.fx - 2)
            np.testing.assert_array_equal(e.crop, photo[e.photo][e.y:e.y + 5, e.x:e.x + 5])
            with torch.no_grad():  # the crop alone reproduces the activation at its centre
                alone = net(torch.from_numpy(e.crop).permute(2, 0, 1)[None])[0, channel, 2, 2].item()
            assert alone == pytest.approx(e.activation, rel=1e-5, abs=1e-6)
            checked += 1
    assert checked >= 4


def test_per_photo_limit_and_separation(photos):
    net = two_conv_net()
    (examples,) = dataset_examples(net, "conv2", [2], photos, crop=5, top=8, per_photo=2)
    assert len(examples) == 8
    acts = [e.activation for e in examples]
    assert acts == sorted(acts, reverse=True)
    by_photo: dict[str, list] = {}
    for e in examples:
        by_photo.setdefault(e.photo, []).append(e)
    assert all(len(v) <= 2 for v in by_photo.values())
    for v in by_photo.values():
        if len(v) == 2:
            assert max(abs(v[0].fy - v[1].fy), abs(v[0].fx - v[1].fx)) > 2.5  # more than half a crop apart
    # with one per photo, each photo's best position only
    (single,) = dataset_examples(net, "conv2", [2], photos, crop=5, top=8)
    assert len(single) == len(photos) and len({e.photo for e in single}) == len(photos)


def test_strided_layer_maps_positions_back_and_default_crop_is_receptive_field():
    net = two_conv_net(stride=2)
    rng = np.random.default_rng(5)
    photos = [(f"big{i}", rng.random((40, 40, 3), dtype=np.float32)) for i in range(4)]
    rf = receptive_field(net, "conv2", size=32)
    # conv1 (k3, s2, pad 1) centres output f on input 2f; conv2 adds one conv1 cell either side: 2f-3 .. 2f+3
    assert rf.size == 7 and rf.stride == (2.0, 2.0) and rf.offset == (0.0, 0.0)
    assert receptive_field(net, "conv1", size=32).size == 3
    examples = [e for c in dataset_examples(net, "conv2", range(4), photos, top=4) for e in c]
    checked = 0
    for channel, e in zip(np.repeat(range(4), 4), examples):
        assert e.crop.shape == (7, 7, 3)
        p = dict(photos)[e.photo]
        if 3 <= 2 * e.fy < p.shape[0] - 3 and 3 <= 2 * e.fx < p.shape[1] - 3:
            assert (e.y, e.x) == (2 * e.fy - 3, 2 * e.fx - 3)
            # pasted into noise where position (4, 4) looks (input 5..11), the crop alone sets the activation
            canvas = np.random.default_rng(0).random((16, 16, 3), dtype=np.float32)
            canvas[5:12, 5:12] = e.crop
            with torch.no_grad():
                alone = net(torch.from_numpy(canvas).permute(2, 0, 1)[None])[0, channel, 4, 4].item()
            assert alone == pytest.approx(e.activation, rel=1e-5, abs=1e-6)
            checked += 1
    assert checked >= 4


def test_deterministic_gray_and_resized(photos):
    net = two_conv_net(channels_in=1)
    a = dataset_examples(net, "conv2", [0, 1], photos, crop=5, top=4, channels_in=1, photo_size=12)
    b = dataset_examples(net, "conv2", [0, 1], photos, crop=5, top=4, channels_in=1, photo_size=12)
    assert [(e.photo, e.y, e.x, e.activation) for c in a for e in c] == \
        [(e.photo, e.y, e.x, e.activation) for c in b for e in c]
    assert all(np.array_equal(e.crop, f.crop) for c, d in zip(a, b) for e, f in zip(c, d))
    assert a[0][0].crop.shape == (5, 5, 3)  # crops stay RGB for display
    assert resize_photo(photos[3][1], 12).shape == (12, 22, 3)


def test_crops_near_small_photos_are_padded():
    net = two_conv_net()
    tiny = [("tiny", np.ones((3, 3, 3), np.float32))]
    (examples,) = dataset_examples(net, "conv2", [0], tiny, crop=5, top=1)
    crop = examples[0].crop
    assert crop.shape == (5, 5, 3) and (crop[1:4, 1:4] == 1).all() and (crop[0] == 0.5).all()


def test_bad_inputs():
    net = two_conv_net()
    with pytest.raises(AnalysisError, match="p0"):
        dataset_examples(net, "conv2", [0], [("p0", np.zeros((4, 4)))])
    with pytest.raises(ValueError, match="channels must be in"):
        dataset_examples(net, "conv2", [4], [("p", np.zeros((8, 8, 3), np.float32))], crop=5)
