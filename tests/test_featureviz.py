"""Feature visualization: the optimised images really drive their neurons, runs are deterministic, the cache
and manifest behave. All on a tiny random (but fixed) convnet built here."""
from __future__ import annotations

import io
import json
from collections import OrderedDict
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

from analysis.featureviz import (cached_visualize, cached_visualize_directions, picture_channels, png_bytes,
                                 read_manifest, receptive_field, render_size, resolve_quality, visualize,
                                 visualize_directions)
from analysis.featureviz import cache as fv_cache
from analysis.featureviz import param, quality, transform
from analysis.featureviz.hooks import layer_activations

SIZE, STEPS = 32, 48
TINY = {"size": 16, "steps": 3}


def tiny_net(channels_in: int = 3) -> nn.Module:
    """conv-relu-conv(stride 2)-relu-conv, He init (keeps activations O(1)), fixed seed."""
    g = torch.Generator().manual_seed(1234)
    net = nn.Sequential(OrderedDict(
        conv1=nn.Conv2d(channels_in, 8, 3, padding=1), relu1=nn.ReLU(),
        conv2=nn.Conv2d(8, 16, 3, padding=1, stride=2), relu2=nn.ReLU(),
        conv3=nn.Conv2d(16, 8, 3, padding=1)))
    for m in net.modules():
        if isinstance(m, nn.Conv2d):
            with torch.no_grad():
                m.weight.copy_(torch.randn(m.weight.shape, generator=g) * (2.0 / m.weight[0].numel()) ** 0.5)
                m.bias.zero_()
    return net.eval()


def channel_means(net: nn.Module, layer: str, images: np.ndarray) -> np.ndarray:
    """[n, H, W, C] images -> mean activation of every channel [n, C_layer]."""
    x = torch.from_numpy(np.ascontiguousarray(images)).permute(0, 3, 1, 2)
    with torch.no_grad():
        return layer_activations(net, layer, x).mean(dim=(2, 3)).numpy()


@pytest.fixture(scope="module")
def net() -> nn.Module:
    return tiny_net()


@pytest.fixture(scope="module")
def conv3_images(net: nn.Module) -> np.ndarray:
    return visualize(net, "conv3", range(8), size=SIZE, steps=STEPS)


def test_optimized_images_drive_their_own_channel(net, conv3_images):
    assert conv3_images.shape == (8, SIZE, SIZE, 3) and conv3_images.dtype == np.float32
    assert conv3_images.min() >= 0.0 and conv3_images.max() <= 1.0
    acts = channel_means(net, "conv3", conv3_images)  # [image, channel]
    own = np.diag(acts)
    others = (acts.sum(axis=0) - own) / 7  # channel c's response to the other channels' images
    rand = np.random.default_rng(0).random((32, SIZE, SIZE, 3), dtype=np.float32)
    rand_acts = channel_means(net, "conv3", rand)
    spread = rand_acts.std(axis=0).mean()
    assert (own > rand_acts.max(axis=0)).sum() >= 7, (own, rand_acts.max(axis=0))
    assert (own > others).all(), (own, others)
    assert (own - others).mean() > 5 * spread  # a clear margin, not a tie
    beaten = (acts > own[None, :]).sum(axis=0)  # other images that drive channel c harder than its own
    assert (beaten <= 1).sum() >= 6, acts


@pytest.mark.slow
def test_runs_are_deterministic_and_seeded(net, conv3_images):
    again = visualize(net, "conv3", range(8), size=SIZE, steps=STEPS)
    assert np.array_equal(conv3_images, again)
    other_seed = visualize(net, "conv3", [0], size=SIZE, steps=STEPS, seed=1)
    assert not np.allclose(other_seed[0], conv3_images[0], atol=1e-3)


def test_image_does_not_depend_on_batch_mates(net, conv3_images):
    alone = visualize(net, "conv3", [5, 2], size=SIZE, steps=STEPS, batch=1)
    # same RNG streams, so the same picture; oneDNN's batch-size-dependent kernels leave rounding-level noise
    diff = np.abs(alone - conv3_images[[5, 2]])
    assert diff.mean() < 1e-3 and diff.max() < 0.05, (diff.mean(), diff.max())
    assert np.abs(alone[0] - conv3_images[2]).mean() > 0.05  # while different channels differ clearly


def test_pictures_do_not_depend_on_the_thread_count(net):
    """Threads share the images out, each with one torch thread: a picture is the same, up to the rounding of
    oneDNN's batch-size-dependent kernels, however many threads there are; and the same bits again on a rerun."""
    one, two, three = (visualize(net, "conv3", [0, 1, 2, 3, 4], size=SIZE, steps=STEPS, num_threads=n)
                       for n in (1, 2, 3))
    for other in (two, three):
        diff = np.abs(one - other)
        assert diff.mean() < 1e-4 and diff.max() < 1e-2, (diff.mean(), diff.max())
    assert np.array_equal(two, visualize(net, "conv3", [0, 1, 2, 3, 4], size=SIZE, steps=STEPS, num_threads=2))


def test_optimization_restores_model_state(net):
    net.train()
    flags = [p.requires_grad for p in net.parameters()]
    try:
        visualize(net, "conv1", [0], size=16, steps=2)
        assert net.training and [p.requires_grad for p in net.parameters()] == flags
    finally:
        net.eval()


def test_gray_model_gives_gray_images():
    gray = tiny_net(channels_in=1)
    # 2x the steps: the spectrum's 1/f^1.75 prior is slow to build the fine texture a random net's channel 1 wants
    imgs = visualize(gray, "conv3", [0, 1], size=SIZE, steps=2 * STEPS, lr=0.1, channels_in=1)
    assert imgs.shape == (2, SIZE, SIZE, 1)
    acts = channel_means(gray, "conv3", imgs)
    rand = channel_means(gray, "conv3", np.random.default_rng(0).random((16, SIZE, SIZE, 1), dtype=np.float32))
    assert (acts[[0, 1], [0, 1]] > rand[:, :2].max(axis=0)).all()


@pytest.mark.slow
def test_pictures_have_the_spectrum_of_photos_of_their_size(net):
    """Issue 20: Lucid's 1/f parameterization left pixel-scale stripes (a median 24% of spectral power above 0.25
    cycles/px on the site, photo crops of the same size 10%). The bench's target is at most 1.5x the photos' share;
    here on the tiny net's first and last layers at the site's smallest side, rendered with the default quality.
    (Before the fix: conv1 2.0x, conv3 1.2x the photos' 11.5%.)"""
    photos = quality.photo_high_frequency_share(SIZE)
    assert 0.05 < photos < 0.2  # real photo crops, not a degenerate reference
    q = resolve_quality(None)
    for layer in ("conv1", "conv3"):
        imgs = visualize(net, layer, range(8), size=SIZE, steps=q["steps"], lr=q["lr"])
        share = np.median([quality.high_frequency_share(im) for im in imgs])
        assert share <= 1.5 * photos, (layer, share, photos)
        gray = channel_means(net, layer, np.full((1, SIZE, SIZE, 3), 0.5, np.float32))[0]  # where it started
        assert (np.diag(channel_means(net, layer, imgs)) > gray[:8]).all()  # and the pictures still work


def test_high_frequency_share_measures_pixel_noise():
    rng = np.random.default_rng(0)
    smooth = np.cos(np.arange(32) * 2 * np.pi / 16)[None, :, None] * np.ones((32, 1, 3))
    checker = (np.indices((32, 32)).sum(axis=0) % 2)[..., None].astype(float)
    assert quality.high_frequency_share(smooth) < 1e-9 and quality.high_frequency_share(checker) == pytest.approx(1)
    assert quality.high_frequency_share(np.full((8, 8), 0.3)) == 0.0
    white = quality.high_frequency_share(rng.random((64, 64)))
    assert 0.7 < white < 0.85  # the area of the frequency square beyond radius 0.25: 1 - pi/16


def test_gray_picture_for_a_model_trained_on_gray_repeated_to_rgb():
    """The banding lab's nets take RGB but only ever saw gray digits: their pictures are gray (one channel),
    and the model sees that channel repeated. Issue 20: they were saturated colour pictures."""
    rgb_net = tiny_net(channels_in=3)
    imgs = visualize(rgb_net, "conv3", [0, 1], size=SIZE, steps=STEPS, channels_in=1)
    assert imgs.shape == (2, SIZE, SIZE, 1)
    seen = np.repeat(imgs, 3, axis=-1)
    rand = np.repeat(np.random.default_rng(0).random((16, SIZE, SIZE, 1), dtype=np.float32), 3, axis=-1)
    acts, base = channel_means(rgb_net, "conv3", seen), channel_means(rgb_net, "conv3", rand)
    assert (acts[[0, 1], [0, 1]] > base[:, :2].max(axis=0)).all()
    assert picture_channels({"input_channels": 3, "gray_input": True}) == 1
    assert picture_channels({"input_channels": 1}) == 1 and picture_channels({"input_channels": 3}) == 3


def test_render_size_covers_the_receptive_field():
    net = tiny_net()
    # 3x3 convs: 3, then 5 (stride 2), then 9 pixels; measured, so the stride comes out too
    fields = {layer: receptive_field(net, layer) for layer in ("conv1", "conv2", "conv3")}
    assert [(f.size, f.stride, f.capped) for f in fields.values()] == [(3, 1, False), (5, 2, False), (9, 2, False)]
    assert render_size(net, "conv3", minimum=8) == 16  # 9 rounded up to a multiple of 8
    assert render_size(net, "conv3") == 32  # the smallest side drawn
    deep = nn.Sequential(*[nn.Conv2d(3, 3, 9, padding=4) for _ in range(40)])  # a field of 321 px
    assert render_size(deep, "39", cap=1000) == 224 and receptive_field(deep, "39", limit=224).capped
    assert render_size(deep, "39", cap=96) == 96 and render_size(deep, "7") == 72  # 65 px, rounded up
    assert render_size(deep, "39", input_size=28) == 32  # a digit net: its input size, but at least 32


def grating_net(period: float) -> nn.Module:
    """One 9x9 Gabor filter of `period` px (vertical stripes), then ReLU: it cares about scale, in pixels."""
    y, x = np.mgrid[-4:5, -4:5]
    k = np.cos(2 * np.pi * x / period) * np.exp(-(x * x + y * y) / 18.0)
    conv = nn.Conv2d(3, 1, 9, bias=False)
    with torch.no_grad():
        conv.weight.copy_(torch.from_numpy(np.repeat((k - k.mean())[None, None], 3, axis=1).astype(np.float32)))
    return nn.Sequential(OrderedDict(conv=conv, relu=nn.ReLU())).eval()


def test_view_makes_pictures_work_enlarged_to_the_models_input_size():
    """A 32 px picture optimised with view=64 also sees itself enlarged 2x (bilinear), as a reader and an ImageNet
    net at 224 px see a small picture: enlarged, it drives its neuron harder than one optimised at its own scale
    only (issue 20: those kept 0.4x of Lucent's activation enlarged), and it still works at its own scale."""
    import torch.nn.functional as F

    net = grating_net(12.0)
    plain = visualize(net, "relu", [0], size=32, steps=128)
    viewed = visualize(net, "relu", [0], size=32, steps=128, view=64)

    def act(images, side):
        x = torch.from_numpy(images).permute(0, 3, 1, 2)
        x = F.interpolate(x, size=side, mode="bilinear", align_corners=False) if side != 32 else x
        return channel_means(net, "relu", x.permute(0, 2, 3, 1).numpy())[0, 0]

    assert act(viewed, 64) > 1.1 * act(plain, 64), (act(viewed, 64), act(plain, 64))
    assert act(viewed, 32) > 0.8 * act(plain, 32), (act(viewed, 32), act(plain, 32))
    assert np.array_equal(visualize(net, "relu", [0], size=32, steps=2, view=32),
                          visualize(net, "relu", [0], size=32, steps=2))  # no larger view: the same pictures


def test_receptive_field_grows_its_probe_and_sees_whole_input_layers():
    deep = nn.Sequential(*[nn.Conv2d(3, 3, 9, padding=4) for _ in range(12)])  # a field of 97 px
    small = receptive_field(deep, "11", limit=64)  # asked for at most 64: the 64 px probe is reached
    assert small.capped and small.probe == 64 and small.size >= 64
    assert render_size(deep, "11", cap=64) == 64
    wide = receptive_field(deep, "11", limit=224)  # a larger cap measures again on a larger probe
    assert (wide.size, wide.capped, wide.probe) == (97, False, 128)
    assert render_size(deep, "11", cap=224) == 104  # 97 rounded up to a multiple of 8
    head = nn.Sequential(OrderedDict(conv=nn.Conv2d(3, 4, 3), pool=nn.AdaptiveAvgPool2d(1), flat=nn.Flatten(),
                                     fc=nn.Linear(4, 2)))
    assert receptive_field(head, "fc").capped and render_size(head, "fc", cap=96) == 96


def test_gray_pictures_are_cached_as_gray_pngs_under_their_own_key(net, tmp_path):
    rgb = cached_visualize(net, "tiny", "ab" * 32, "conv3", [2], tmp_path, TINY)[0]
    gray = cached_visualize(net, "tiny", "ab" * 32, "conv3", [2], tmp_path, TINY, channels_in=1)[0]
    assert gray["image"] != rgb["image"]
    root = tmp_path / "featureviz"
    assert Image.open(root / gray["image"]).mode == "L" and Image.open(root / rgb["image"]).mode == "RGB"
    dirs = np.eye(8, dtype=np.float32)[:1]
    d = cached_visualize_directions(net, "tiny", "ab" * 32, "conv3", dirs, tmp_path, TINY, channels_in=1)[0]
    assert Image.open(root / d["image"]).mode == "L"


@pytest.mark.slow
@pytest.mark.parametrize("position", ["mean", "center"])
def test_direction_images_drive_their_direction(net, position):
    dirs = np.random.default_rng(3).normal(size=(4, 8)).astype(np.float32)
    imgs = visualize_directions(net, "conv3", dirs, position=position, size=SIZE, steps=2 * STEPS)
    start = np.full((1, SIZE, SIZE, 3), 0.5, np.float32)  # the optimisation starts from ~mid-gray
    x = torch.from_numpy(np.concatenate([imgs, start])).permute(0, 3, 1, 2)
    with torch.no_grad():
        act = layer_activations(net, "conv3", x)
    vec = act.mean(dim=(2, 3)) if position == "mean" else act[:, :, act.shape[2] // 2, act.shape[3] // 2]
    dots = vec.numpy() @ dirs.T  # [image (+ gray), direction]
    own = np.diag(dots[:4])
    others = (dots[:4].sum(axis=0) - own) / 3
    assert (own > others + 0.1).all() and (own > dots[4] + 0.1).all(), dots


def test_bad_inputs_raise_clear_errors(net):
    with pytest.raises(KeyError, match="nope"):
        visualize(net, "nope", [0], size=16, steps=1)
    with pytest.raises(ValueError, match="channels must be in"):
        visualize(net, "conv3", [8], size=16, steps=1)
    with pytest.raises(ValueError, match="directions must be"):
        visualize_directions(net, "conv3", np.ones((2, 5)), size=16, steps=1)
    with pytest.raises(ValueError, match="unknown quality"):
        resolve_quality({"sizes": 3})


def test_spectrum_scaling_and_colour_decorrelation():
    lucid = param.spectrum_scale(16, 16, decay_power=1.0).numpy()
    assert lucid.shape == (16, 9)
    assert lucid[0, 0] == pytest.approx(16 * 16)  # DC clamped to 1/max(h, w), times sqrt(h*w)
    assert lucid[0, 8] == pytest.approx(16 / 0.5)  # Nyquist: 1/f * sqrt(h*w)
    scale = param.spectrum_scale(16, 16).numpy()  # steeper: equal to Lucid's at the pivot, below it above
    assert scale[0, 8] == pytest.approx(lucid[0, 8] * (0.5 / param.PIVOT) ** (1 - param.DECAY_POWER))
    at_pivot = param.spectrum_scale(20, 20).numpy()[0, 2]  # 2/20 cycles/px
    assert param.PIVOT == 0.1 and at_pivot == pytest.approx(20 / 0.1)
    assert np.linalg.norm(param.COLOR_CORRELATION, axis=0).max() == pytest.approx(1.0)
    spec = param.init_spectrum([(0, 0), (0, 1)], 3, 16)
    img = param.spectrum_to_image(spec, torch.from_numpy(scale), decorrelate=True)
    assert img.shape == (2, 3, 16, 16) and 0.4 < float(img.mean()) < 0.6  # starts near mid-gray
    assert torch.equal(spec[1], param.init_spectrum([(0, 1)], 3, 16)[0])  # per-neuron stream


def test_transform_without_scale_or_rotation_is_an_integer_crop():
    spec = transform.TransformSpec(pad=2, jitter1=2, jitter2=0, scales=(1.0,), angles=(0.0,))
    img = torch.rand(3, 1, 8, 8, generator=torch.Generator().manual_seed(0))
    out = transform.apply(img, transform.sample_affines(transform.transform_rngs([(0, i) for i in range(3)]),
                                                        spec, 8), spec)
    padded = torch.nn.functional.pad(img, (2,) * 4, value=0.5)
    assert out.shape == (3, 1, 10, 10)
    for k in range(3):
        crops = [padded[k, :, oy:oy + 10, ox:ox + 10] for oy in range(3) for ox in range(3)]
        assert any(torch.allclose(out[k], c, atol=1e-5) for c in crops)


def test_transforms_shrink_with_small_pictures_but_stop_at_lucids_pixel_amounts():
    lucid = transform.TransformSpec.standard(128)
    assert (lucid.pad, lucid.jitter1, lucid.jitter2) == (12, 8, 4)
    assert transform.TransformSpec.standard(224) == lucid == transform.TransformSpec.standard(160)
    small = transform.TransformSpec.standard(64)
    assert (small.pad, small.jitter1, small.jitter2) == (6, 4, 2) and small.scales == lucid.scales


def test_png_bytes_are_deterministic_and_bare():
    img = np.random.default_rng(0).random((8, 8, 3), dtype=np.float32)
    data = png_bytes(img)
    assert data == png_bytes(img.copy())
    assert b"tIME" not in data and b"tEXt" not in data and b"iTXt" not in data
    back = np.asarray(Image.open(io.BytesIO(data)))
    assert np.abs(back / 255.0 - img).max() <= 0.5 / 255 + 1e-6
    assert Image.open(io.BytesIO(png_bytes(img[:, :, :1]))).mode == "L"


def _fail(*_a, **_k):
    raise AssertionError("cache miss: visualize was called")


def test_cache_hit_returns_same_png_and_corruption_is_recomputed(net, tmp_path, monkeypatch):
    first = cached_visualize(net, "tiny", "ab" * 32, "conv3", [2, 0], tmp_path, TINY)
    root = tmp_path / "featureviz"
    assert [e["channel"] for e in first] == [2, 0]
    pngs = {e["channel"]: (root / e["image"]).read_bytes() for e in first}
    with monkeypatch.context() as m:
        m.setattr(fv_cache, "visualize", _fail)
        second = cached_visualize(net, "tiny", "ab" * 32, "conv3", [0, 2], tmp_path, TINY)
    assert {e["channel"]: (root / e["image"]).read_bytes() for e in second} == pngs
    # corrupt one PNG: detected by its recorded sha256 and recomputed to the same bytes
    target = root / first[0]["image"]
    target.write_bytes(b"\x89PNG garbage")
    calls = []
    real = fv_cache.visualize
    monkeypatch.setattr(fv_cache, "visualize", lambda *a, **k: calls.append(a[2]) or real(*a, **k))
    cached_visualize(net, "tiny", "ab" * 32, "conv3", [0, 2], tmp_path, TINY)
    assert calls == [[2]]
    assert _pixels(target.read_bytes()) == pytest.approx(_pixels(pngs[2]), abs=2)  # rendered alone this time
    record = json.loads(target.with_suffix(".json").read_text())
    assert record["sha256"] == fv_cache.jsonio.sha256_bytes(target.read_bytes())
    # a missing PNG too
    target.unlink()
    cached_visualize(net, "tiny", "ab" * 32, "conv3", [2], tmp_path, TINY)
    assert target.is_file() and _pixels(target.read_bytes()) == pytest.approx(_pixels(pngs[2]), abs=2)
    assert not list(root.rglob("*.tmp"))


def _pixels(png: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(png)), dtype=np.int16)


def test_cache_key_covers_weights_and_quality(net, tmp_path):
    a = cached_visualize(net, "tiny", "00" * 32, "conv3", [1], tmp_path, TINY)[0]
    b = cached_visualize(net, "tiny", "11" * 32, "conv3", [1], tmp_path, TINY)[0]
    c = cached_visualize(net, "tiny", "11" * 32, "conv3", [1], tmp_path, {**TINY, "steps": 4})[0]
    assert len({a["image"], b["image"], c["image"]}) == 3


def test_manifest_lists_every_image_sorted(net, tmp_path):
    cached_visualize(net, "tiny", "ab" * 32, "conv3", [3, 1], tmp_path, TINY)
    cached_visualize(net, "tiny", "ab" * 32, "conv1", [0], tmp_path, TINY)
    cached_visualize(net, "alpha", "cd" * 32, "conv1", [0], tmp_path, TINY)
    root = tmp_path / "featureviz"
    manifest = json.loads((root / "manifest.json").read_text())
    assert manifest == read_manifest(root)
    assert [(e["model"], e["layer"], e["channel"]) for e in manifest] == [
        ("alpha", "conv1", 0), ("tiny", "conv1", 0), ("tiny", "conv3", 1), ("tiny", "conv3", 3)]
    for e in manifest:
        png = root / e["image"]
        assert not Path(e["image"]).is_absolute() and png.is_file()
        assert fv_cache.jsonio.sha256_bytes(png.read_bytes()) == e["sha256"]
        assert e["quality"] == resolve_quality(TINY)
    # retrained weights replace the entry for the same (model, layer, channel, quality)
    new = cached_visualize(net, "tiny", "ef" * 32, "conv3", [1], tmp_path, TINY)[0]
    manifest = read_manifest(root)
    assert len(manifest) == 4 and new in manifest
    # entries whose PNG was deleted drop out on the next update
    (root / manifest[0]["image"]).unlink()
    cached_visualize(net, "tiny", "ab" * 32, "conv3", [3], tmp_path, TINY)
    assert [e["model"] for e in read_manifest(root)].count("alpha") == 0


def test_cached_directions(net, tmp_path, monkeypatch):
    dirs = np.eye(8, dtype=np.float32)[:2]
    first = cached_visualize_directions(net, "tiny", "ab" * 32, "conv3", dirs, tmp_path, TINY)
    assert len(first) == 2 and first[0]["image"] != first[1]["image"]
    monkeypatch.setattr(fv_cache, "visualize_directions", _fail)
    assert cached_visualize_directions(net, "tiny", "ab" * 32, "conv3", dirs, tmp_path, TINY) == first
    assert not (tmp_path / "featureviz" / "manifest.json").exists()


class _SkipReadsConv(nn.Module):
    """conv -> bn, but the conv's output is also added back after the bn: folding would change that second read."""

    def __init__(self):
        super().__init__()
        self.conv, self.bn, self.out = nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.Conv2d(8, 4, 1)

    def forward(self, x):
        y = self.conv(x)
        return self.out(self.bn(y) + y)


def bn_net() -> nn.Module:
    """conv-bn-relu6 twice (MobileNetV2's unit), with running statistics far from the identity."""
    g = torch.Generator().manual_seed(7)
    net = nn.Sequential(OrderedDict(
        conv1=nn.Conv2d(3, 8, 3, padding=1, bias=False), bn1=nn.BatchNorm2d(8), act1=nn.ReLU6(),
        conv2=nn.Conv2d(8, 8, 3, padding=1, stride=2, groups=8, bias=False), bn2=nn.BatchNorm2d(8), act2=nn.ReLU6(),
        conv3=nn.Conv2d(8, 6, 1)))
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, nn.Conv2d):
                m.weight.copy_(torch.randn(m.weight.shape, generator=g) * (2.0 / m.weight[0].numel()) ** 0.5)
            if isinstance(m, nn.BatchNorm2d):
                for t in (m.weight, m.bias, m.running_mean):
                    t.copy_(torch.randn(t.shape, generator=g))
                m.running_var.copy_(torch.rand(m.running_var.shape, generator=g) * 3 + 0.1)
    return net.eval()


def test_batch_norms_are_folded_into_their_convs_computing_the_same_function():
    from analysis.featureviz import fold

    net = bn_net()
    probe = torch.rand(2, 3, 24, 24, generator=torch.Generator().manual_seed(0))
    assert fold.conv_bn_pairs(net, "conv3", probe) == [("conv1", "bn1"), ("conv2", "bn2")]
    assert fold.conv_bn_pairs(net, "act1", probe) == [("conv1", "bn1")]  # only what the layer depends on
    fast = fold.folded(net, "conv3", probe)
    assert fast is not net and not any(isinstance(m, nn.BatchNorm2d) for m in fast.modules())
    assert sum(isinstance(m, nn.BatchNorm2d) for m in net.modules()) == 2  # the caller's network is untouched
    x = torch.rand(3, 3, 40, 40, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        a, b = layer_activations(net, "conv3", x), layer_activations(fast, "conv3", x)
    assert torch.allclose(a, b, rtol=1e-4, atol=1e-5) and a.abs().max() > 1
    assert fold.folded(net, "conv3", probe) is fast  # memoised
    with torch.no_grad():
        net.bn1.running_mean.add_(1.0)  # the weights changed: folded again
    assert fold.folded(net, "conv3", probe) is not fast
    skip = _SkipReadsConv().eval()
    with torch.no_grad():
        skip.bn.running_mean.fill_(3.0)
    probe = torch.rand(1, 3, 16, 16)
    assert fold.conv_bn_pairs(skip, "out", probe) == [("conv", "bn")]  # looks foldable ...
    assert fold.folded(skip, "out", probe) is skip  # ... but the check at the layer refuses it


def test_a_folded_network_renders_the_pictures_of_the_network_itself(monkeypatch):
    from analysis.featureviz import render

    net = bn_net()
    fast = visualize(net, "conv3", range(6), size=24, steps=24)
    monkeypatch.setattr(render, "folded", lambda model, layer, probe: model)
    slow = visualize(net, "conv3", range(6), size=24, steps=24)
    diff = np.abs(fast - slow)
    assert diff.mean() < 1e-3 and diff.max() < 0.05, (diff.mean(), diff.max())
    assert np.abs(fast[0] - slow[1]).mean() > 0.05  # while different channels differ clearly


def test_a_model_that_cannot_be_copied_is_visualized_on_one_thread(net):
    """Threads need their own copy of the model; an author's model that refuses a copy still gets its pictures (the
    same ones, computed one chunk after another)."""
    import threading

    class Uncopyable(nn.Module):
        def __init__(self, inner):
            super().__init__()
            self.inner, self.lock = inner, threading.Lock()  # a lock cannot be deep-copied

        def forward(self, x):
            return self.inner(x)

    wrapped = Uncopyable(net)
    pictures = visualize(wrapped, "inner.conv3", [0, 1, 2], size=SIZE, steps=STEPS, num_threads=2)
    alone = visualize(net, "conv3", [0, 1, 2], size=SIZE, steps=STEPS, num_threads=1)
    assert np.abs(pictures - alone).mean() < 1e-4


def test_a_model_with_its_own_forward_hooks_runs_on_one_thread(net, monkeypatch):
    """A bring-your-own model's forward() is timed by hooks that keep process-wide state: never two at once."""
    import threading

    active, most = [0], [0]
    lock = threading.Lock()

    def pre(_m, _args):
        with lock:
            active[0] += 1
            most[0] = max(most[0], active[0])

    def post(_m, _args, _out):
        with lock:
            active[0] -= 1

    handles = [net.register_forward_pre_hook(pre), net.register_forward_hook(post, always_call=True)]
    try:
        visualize(net, "conv3", [0, 1, 2, 3], size=SIZE, steps=STEPS, num_threads=2)
    finally:
        for h in handles:
            h.remove()
    assert most[0] == 1


def test_the_last_steps_without_transforms_raise_the_pictures_own_activation(monkeypatch):
    """The last POLISH share of the steps sees the picture as shown (render.py): it drives its neuron harder than a
    picture transformed to the end (a Gabor filter gains only ~1%; EfficientNet-Lite0's neurons 10-20%, bench/), and
    stays a picture (no more high-frequency power than photos have)."""
    from analysis.featureviz import render

    net = grating_net(8.0)
    polished = visualize(net, "relu", [0], size=32, steps=64)
    monkeypatch.setattr(render, "POLISH", 0.0)
    plain = visualize(net, "relu", [0], size=32, steps=64)
    act = lambda images: channel_means(net, "relu", images)[0, 0]  # noqa: E731
    assert act(polished) > act(plain), (act(polished), act(plain))
    assert max(quality.high_frequency_share(im) for im in polished) <= 1.5 * quality.photo_high_frequency_share(32)
