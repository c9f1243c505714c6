"""The render side's reader of dataset examples (article/figures/examples_data.py, torch-free), on the explorer's tiny cache:
records by model and layer, examples strongest first, and crops whose pixels are the picture's with the receptive
field outlined."""
from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from article.figures import examples_data as exd
from article.structure.errors import BuildError
from explorer_cache import EXAMPLES_K, example_activation, example_rect, make_cache


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    folder = tmp_path_factory.mktemp("examples-cache")
    make_cache(folder)
    return folder


@pytest.mark.slow
def test_records_by_model_and_layer(cache):
    index = exd.model_index(cache, "tinynet")
    assert set(index["layers"]) == {"conv1", "conv2", "conv3"}
    layer = exd.layer(cache, "tinynet", "conv3")
    assert layer.channels == 2048 and not layer.gray
    top = layer.top(1500)
    assert [e.rank for e in top] == list(range(EXAMPLES_K))
    assert [e.activation for e in top] == [example_activation("conv3", 1500, r) for r in range(EXAMPLES_K)]
    assert top[0].image_label == "test photo" and top[0].picture_size == (96, 64)
    assert (list(top[1].at), list(top[1].rf_at)) == example_rect(1500, 1)
    assert len(layer.top(1500, 2)) == 2
    with pytest.raises(BuildError, match="no dataset examples for layer 'conv9'"):
        exd.layer(cache, "tinynet", "conv9")
    assert exd.model_index(cache, "nomodel") is None


def test_a_crop_is_the_pictures_pixels_with_the_field_outlined(cache):
    layer = exd.layer(cache, "tinynet", "conv2")
    ex = layer.top(3, 1)[0]
    (x, y, w, _), (rx, ry, rw, _) = example_rect(3, 0)
    picture = np.asarray(Image.open(cache / "analysis" / ex.picture).convert("RGB"))
    plain = np.asarray(layer.crop(ex, 64, outline=False))
    f = 64 / w
    for cy, cx in [(4, 4), (60, 4), (4, 60), (60, 60)]:  # away from band edges: the picture's colour there
        sy, sx = int(y + cy / f), int(x + cx / f)
        if 0 <= sy < picture.shape[0] and 0 <= sx < picture.shape[1] and (sx % 24) not in (0, 23):
            assert np.abs(plain[cy, cx].astype(int) - picture[sy, sx]).max() <= 12
    boxed = np.asarray(Image.open(io.BytesIO(layer.crop_png(ex, 64))).convert("RGB"))
    edge_x, mid_y = round((rx - x) * f), round((ry - y + rw / 2) * f)
    assert tuple(boxed[mid_y, edge_x + 1]) == exd.OUTLINE  # the field's left edge, yellow
    assert np.array_equal(boxed[2, 2], plain[2, 2])  # outside the field: untouched


def test_a_field_larger_than_the_crop_outlines_the_crop(cache):
    """A deep layer's field (MobileNetV2's last: 491 px) can be wider than the context square around it: the outline
    is then the part of the field inside the crop (its edges), not a box beyond the crop that would not show."""
    from dataclasses import replace

    layer = exd.layer(cache, "tinynet", "conv2")
    ex = layer.top(3, 1)[0]
    x, y, w, h = ex.at
    big = replace(ex, rf_at=(x - w, y - h, 3 * w, 3 * h))
    boxed = np.asarray(layer.crop(big, 64))
    plain = np.asarray(layer.crop(big, 64, outline=False).convert("RGB"))
    for cy, cx in [(32, 0), (32, 1), (0, 32), (63, 32), (32, 63)]:
        assert tuple(boxed[cy, cx]) == exd.OUTLINE, (cy, cx)
    assert np.array_equal(boxed[32, 32], plain[32, 32])  # inside: untouched
