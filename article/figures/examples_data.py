"""Dataset examples as the render side reads them (torch-free): the per-model records of the analysis
(`<cache>/analysis/<model>/examples/`, analysis/SCHEMA.md) and pictures of single examples cut from them.

    from article.figures import examples_data as exd

    index = exd.model_index(cache_dir, "mobilenet-v2")          # None when the model has no examples
    layer = exd.layer(cache_dir, "mobilenet-v2", "features.4")   # every channel of that layer
    for ex in layer.top(17, 4):                                  # channel 17's four strongest, strongest first
        ex.activation, ex.image_label, ex.rf, ex.box             # boxes (x, y, w, h) in the source image's pixels
        png = layer.crop_png(ex, 96)                             # the context crop at 96 px, receptive field outlined

A figure passes `load=ctx.load_json` so that the render cache tracks the records it read (each record lists its
pictures' sha256s, so a changed picture changes the record). Layers are named as the tensor records name them
(`layer`, or a tensor's `source`): a block (`features.4`) or a module (`_conv_stem`).
"""
from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from analysis.core.paths import inside

from ..structure.errors import BuildError
from ..structure.jsonio import read_record

OUTLINE = (255, 204, 0)  # the receptive field's outline: yellow with a dark rim reads on light and dark photos
RIM = (20, 20, 20)
PAD = 128  # outside the source image


@dataclass(frozen=True)
class Example:
    """One example of one channel: `rf` and `box` (the context square shown around it) are (x, y, w, h) in the
    pixels of the source image; `at` and `rf_at` are the same boxes in the pixels of `picture` (a file relative to
    the cache folder's analysis/ folder)."""

    channel: int
    rank: int
    activation: float
    image_id: str
    image_label: str
    scale: int  # the shorter side, in pixels, the image was looked at when this example was found
    rf: tuple[float, float, float, float]
    box: tuple[float, float, float, float]
    picture: str
    picture_size: tuple[int, int]  # (width, height)
    at: tuple[float, float, float, float]
    rf_at: tuple[float, float, float, float]


def _reader(cache_dir: Path, load: Callable[[str], Any] | None) -> Callable[[str], Any]:
    if load is not None:
        return load

    def read(rel: str) -> Any:
        path = inside(Path(cache_dir), rel)  # names come from records: never outside the cache
        if path is None:
            raise BuildError(f"an analysis record names {str(rel)[:200]!r}, outside the cache folder; run "
                             "`python build.py --clean`", Path(cache_dir) / "analysis" / "manifest.json")
        return read_record(path)

    return read


def model_index(cache_dir: Path, model: str, load: Callable[[str], Any] | None = None) -> dict | None:
    """The model's examples index (dataset, how far the pass got, layers with their record files), or None."""
    read = _reader(cache_dir, load)
    entry = (read("analysis/manifest.json").get("models") or {}).get(model) or {}
    ref = entry.get("examples")
    if not isinstance(ref, dict) or not ref.get("file"):
        return None
    return read(f"analysis/{ref['file']}")


class LayerExamples:
    """Every channel's examples of one layer (a record `<model>/examples/<layer>.json`)."""

    def __init__(self, cache_dir: Path, record: dict, index: dict):
        self.cache_dir = Path(cache_dir)
        self.record = record
        self.index = index
        self.layer: str = record["layer"]
        self.channels: int = int(record["channels"])
        self.gray: bool = bool(record.get("gray"))
        self._pictures: dict[str, Any] = {}

    def top(self, channel: int, k: int | None = None) -> list[Example]:
        """Channel's examples, strongest first (at most k)."""
        rows = self.record["examples"]
        if not 0 <= channel < len(rows):
            raise IndexError(f"layer {self.layer} has {len(rows)} channels, not {channel + 1}")
        out = []
        for e in rows[channel][:k]:
            image, pic = self.record["images"][e["image"]], self.record["pictures"][e["picture"]]
            out.append(Example(channel, int(e["rank"]), float(e["activation"]), image["id"], image["label"],
                               int(e["scale"]), tuple(e["rf"]), tuple(e["box"]), pic["file"],
                               (int(pic["width"]), int(pic["height"])), tuple(e["at"]), tuple(e["rf_at"])))
        return out

    def picture_bytes(self, rel: str) -> bytes:
        path = inside(self.cache_dir / "analysis", rel)  # a name read from a record: never outside the cache
        if path is None:
            raise BuildError(f"a dataset-example record names {str(rel)[:200]!r}, outside the cache folder; run "
                             "`python build.py --clean`", self.cache_dir / "analysis")
        try:
            return path.read_bytes()
        except OSError:
            raise BuildError("dataset-example picture is missing (run `python build.py --clean`)", path) from None

    def crop(self, ex: Example, size: int = 96, outline: bool = True):
        """The example's context square as a PIL image of size x size (gray where it reaches past the image), its
        receptive field outlined (yellow, 2 px, on a dark 1 px rim)."""
        from PIL import Image, ImageDraw

        if ex.picture not in self._pictures:
            with Image.open(io.BytesIO(self.picture_bytes(ex.picture))) as im:
                self._pictures[ex.picture] = im.convert("L" if im.mode in ("L", "LA") else "RGB")
        pic = self._pictures[ex.picture]
        x, y, w, h = ex.at
        ix, iy, cw, ch = round(x), round(y), max(1, round(w)), max(1, round(h))
        canvas = Image.new(pic.mode, (cw, ch), PAD if pic.mode == "L" else (PAD,) * 3)
        sx0, sy0, sx1, sy1 = max(0, ix), max(0, iy), min(pic.width, ix + cw), min(pic.height, iy + ch)
        if sx1 > sx0 and sy1 > sy0:
            canvas.paste(pic.crop((sx0, sy0, sx1, sy1)), (sx0 - ix, sy0 - iy))
        out = canvas.resize((size, size), Image.Resampling.LANCZOS if w > size else Image.Resampling.BICUBIC)
        if not outline:
            return out
        out = out.convert("RGB")
        f = size / w
        rx, ry, rw, rh = ex.rf_at
        # A deep layer's field can be larger than the context square: outline the part inside it (the whole square
        # when the field covers it), not a box beyond the edges.
        box = [max(0.0, (rx - x) * f), max(0.0, (ry - y) * f), min(size - 1.0, (rx - x + rw) * f - 1),
               min(size - 1.0, (ry - y + rh) * f - 1)]
        draw = ImageDraw.Draw(out)
        draw.rectangle([box[0] - 1, box[1] - 1, box[2] + 1, box[3] + 1], outline=RIM, width=1)
        draw.rectangle(box, outline=OUTLINE, width=2)
        draw.rectangle([box[0] + 2, box[1] + 2, box[2] - 2, box[3] - 2], outline=RIM, width=1)
        return out

    def crop_png(self, ex: Example, size: int = 96, outline: bool = True) -> bytes:
        buf = io.BytesIO()
        self.crop(ex, size, outline).save(buf, format="PNG", optimize=True)
        return buf.getvalue()


def layer(cache_dir: Path, model: str, layer_name: str, load: Callable[[str], Any] | None = None) -> LayerExamples:
    """Every channel's examples of `layer_name` of `model`; BuildError when the model or layer has none."""
    read = _reader(cache_dir, load)
    index = model_index(cache_dir, model, load)
    if index is None:
        raise BuildError(f"model '{model}' has no dataset examples in the analysis results")
    entry = (index.get("layers") or {}).get(layer_name)
    if entry is None:
        raise BuildError(f"model '{model}' has no dataset examples for layer '{layer_name}' "
                         f"(have: {', '.join(index.get('layers') or {})})")
    return LayerExamples(cache_dir, read(f"analysis/{entry['file']}"), index)
