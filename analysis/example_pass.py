"""One pass over a set of images gives the dataset examples of every channel of every analysed layer at once.

Each image is run through the network once per scale, whole (fully convolutionally: every position of the feature
map is a window of the image), with a forward hook on every analysed layer. For each channel, the few strongest local
peaks of its map at each scale are candidates; of those, at most `per_image` are kept per image, their receptive
fields in the source image overlapping by at most MAX_OVERLAP of the smaller one (so one image gives no near
duplicates), and merged into a running top-k per channel. The top-k of a union is the top-k of the parts' top-ks, so
the running state is exact however the images are split between builds.

Pure functions on arrays plus `RunningTopK`; the stage (analysis/examples_stage.py) feeds it and writes the records.
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from analysis.examples import PAD_VALUE, ReceptiveField

MAX_OVERLAP = 0.25  # two examples from one image may share at most this fraction of the smaller receptive field
PEAKS = 4  # local peaks per channel, image and scale offered to the spread selection, times per_image
CONTEXT_MIN = 32  # a small receptive field is shown inside at least this much context (input pixels)
CONTEXT_MARGIN = 64  # and at most this much wider than the field
ENLARGE = 4  # an image smaller than the model's input is enlarged at most this many times
PROBES = 2  # random images a receptive field is measured on (the union of their gradients' support)
WIDE = 4  # a field cut off by the probe's border is measured again on one image up to this many times wider


def context_side(rf_size: int) -> int:
    """Side of the context crop around a receptive field of `rf_size` pixels: twice the field while that is small,
    the field plus CONTEXT_MARGIN when it is large, never under CONTEXT_MIN."""
    return max(CONTEXT_MIN, min(2 * int(rf_size), int(rf_size) + CONTEXT_MARGIN))


@dataclass(frozen=True)
class Layer:
    name: str  # the analysed layer: a block or module name as the recipe and the tensor records call it
    hook: str  # the module whose output is its activation (a block's boundary marker)
    rf: ReceptiveField  # in input pixels
    channels: int


class _Captured(Exception):
    """Raised by the last hook: the layers above the analysed ones cannot change their activations."""


def capture(net: nn.Module, hooks: Sequence[str], x: torch.Tensor) -> dict[str, torch.Tensor]:
    """One forward pass of `x`; the output of every module named in `hooks` (the first call of each)."""
    modules = dict(net.named_modules())
    wanted = list(dict.fromkeys(hooks))
    out: dict[str, torch.Tensor] = {}

    def make(name: str):
        def hook(_m, _inp, value):
            if name not in out:
                out[name] = value
            if len(out) == len(wanted):
                raise _Captured

        return hook

    handles = [modules[h].register_forward_hook(make(h)) for h in wanted]
    try:
        net(x)
    except _Captured:
        pass
    finally:
        for h in handles:
            h.remove()
    missing = [h for h in wanted if h not in out]
    if missing:
        raise RuntimeError(f"layers {missing} were not reached by the forward pass")
    return out


def receptive_fields(net: nn.Module, hooks: Sequence[str], size: int,
                     channels_in: int = 3) -> dict[str, tuple[ReceptiveField, int]]:
    """Every hooked layer's (receptive field, channels): the bounding box of the nonzero input gradient of the central
    position, the stride from its diagonal neighbour's; one forward pass, and one partial backward pass per layer.
    A field the probe's border cuts off (deep layers: MobileNetV2's last is 491 px on a 224-px probe) is measured
    again on longer images (_wide_extents)."""
    # Images 0-1 measure the central position, 2-3 its diagonal neighbour: one backward pass per layer gives both,
    # since each image's gradient depends on its own activations only (eval mode: no batch statistics). Two images
    # each, not more: the graph of every layer is kept for the backward passes (EfficientNet at 224 px: ~115 MB an
    # image).
    rng = np.random.Generator(np.random.PCG64(0))
    x = torch.from_numpy(rng.random((2 * PROBES, channels_in, size, size), dtype=np.float32)).requires_grad_(True)
    acts = capture(net, hooks, x)

    def supports(act: torch.Tensor, y: int, x_: int) -> tuple[np.ndarray | None, np.ndarray | None]:
        """(lo, hi) rows/columns of the input pixels that position (y, x_) and (y + 1, x_ + 1) depend on (union over
        PROBES random images, so a dead ReLU does not hide inputs), or None (dead, or off the map)."""
        target = act[:PROBES, :, y, x_].sum()
        if y + 1 < act.shape[2] and x_ + 1 < act.shape[3]:
            target = target + act[PROBES:, :, y + 1, x_ + 1].sum()
        (grad,) = torch.autograd.grad(target, x, retain_graph=True, allow_unused=True)
        out = []
        for part in (slice(0, PROBES), slice(PROBES, 2 * PROBES)):
            found = np.argwhere(grad[part].abs().sum(dim=(0, 1)).numpy() > 0) if grad is not None else []
            out.append(np.stack([found.min(0), found.max(0)]) if len(found) else None)
        return out[0], out[1]

    out = {}
    cut_off: list[str] = []  # layers whose field the probe's border cut off
    symmetric: set[str] = set()
    centres: dict[tuple[int, float], float] = {}  # (axis, stride) -> offset measured whole in a shallower layer
    for name in dict.fromkeys(hooks):
        act = acts[name]
        if act.dim() != 4:
            raise RuntimeError(f"layer {name!r} has no spatial map (shape {tuple(act.shape)})")
        cy, cx = act.shape[2] // 2, act.shape[3] // 2
        here, there = supports(act, cy, cx)
        centre = (cy, cx)
        # Where a support or its neighbour's cannot be measured whole (a field as large as the probe is cut off by
        # its border, which would shift its middle and the measured step), the longer probes below measure them;
        # until then (and where those do not reach) the step is size / map size, and the centre of a position is
        # where a shallower layer of the same step put it (stride-1 layers do not move it), else the cell's middle.
        stride = [size / act.shape[2], size / act.shape[3]]
        offset = [centres.get((axis, stride[axis]), (stride[axis] - 1) / 2) for axis in (0, 1)]
        whole = 0  # axes whose step and centre were measured here
        for axis in (0, 1):
            if here is None or _clipped(here, axis, size) or there is None or _clipped(there, axis, size):
                continue
            stride[axis] = float((there[:, axis].sum() - here[:, axis].sum()) / 2) or stride[axis]
            offset[axis] = float(here[:, axis].sum() / 2 - centre[axis] * stride[axis])
            centres[(axis, stride[axis])] = offset[axis]
            whole += 1
        extent = int((here[1] - here[0] + 1).max()) if here is not None else max(1, round(max(stride)))
        rf = ReceptiveField(extent, tuple(stride), tuple(offset))
        out[name] = (rf, int(act.shape[1]))
        if here is not None and whole < 2:
            cut_off.append(name)
            # A square map whose field looks the same along both axes is measured along one (half the cost).
            if act.shape[2] == act.shape[3] and np.array_equal(here[:, 0], here[:, 1]) and stride[0] == stride[1] \
                    and offset[0] == offset[1]:
                symmetric.add(name)
    acts = act = x = None  # free the probe's graph (the last activation holds it too): the longer probes need it
    for name, wide in _wide_extents(net, cut_off, size, channels_in, symmetric).items():
        rf = out[name][0]
        stride, offset = (tuple(float(w) if w is not None else o for w, o in zip(wide[k], getattr(rf, k)))
                          for k in ("stride", "offset"))
        out[name] = (ReceptiveField(max(wide["size"], rf.size), stride, offset), out[name][1])
    return out


def receptive_field(model: nn.Module, layer: str, *, size: int = 128, channels_in: int = 3) -> ReceptiveField:
    """`layer`'s receptive field on a size x size probe: the bounding box of the nonzero input gradient of the central
    position (union over 2 random images, so dead ReLUs do not hide inputs), the stride from its neighbour's. Measured
    rather than derived from kernel sizes, so it works for any architecture (padding, depthwise convs, pooling); a
    field larger than the probe is measured on longer images, up to WIDE times `size`."""
    from analysis.featureviz.hooks import frozen

    with frozen(model):
        return receptive_fields(model, [layer], size, channels_in)[layer][0]


def _wide_extents(net: nn.Module, names: list[str], size: int, channels_in: int,
                  symmetric: set[str] = frozenset()) -> dict[str, dict]:
    """{size, stride: per axis or None, offset: per axis or None} of the fields the size x size probe cut off.

    Measured per axis on one random image twice as long along it (then up to WIDE times, while some are still cut
    off) and `size` across, so the graph kept for the backward passes is no larger than the probe's. The first
    position's field ends inside the image at its far side, the second's one step further, the last position's
    begins inside it at its near side, (map length - 1) steps from the first, so
        stride = hi(second) - hi(first)   (size / map length is off without padding)
        extent = hi(first) - lo(last) + (n - 1) * stride + 1   (whatever the padding)
        centre of the first position = hi(first) - (extent - 1) / 2
    (a deep layer's first field of a new stride is cut off in the probe: its centre was a guess, half a step off).
    Still cut off at WIDE times: that length (a lower bound), stride and centre unknown (None). Layers in `symmetric`
    are measured along the rows only, their columns taken to be the same."""
    rng = np.random.Generator(np.random.PCG64(1))
    found: dict[str, dict] = {}
    for axis in (0, 1):
        todo, length = [n for n in names if axis == 0 or n not in symmetric], size
        while todo and length < WIDE * size:
            length *= 2
            shape = (length, size) if axis == 0 else (size, length)
            x = torch.from_numpy(rng.random((1, channels_in, *shape), dtype=np.float32)).requires_grad_(True)
            acts = capture(net, todo, x)
            left = []
            for name in todo:
                act = acts[name]
                n, mid = act.shape[2 + axis], act.shape[3 - axis] // 2
                ends = []
                for k in (0, 1, n - 1) if n > 2 else ():
                    (grad,) = torch.autograd.grad((act[0, :, k, mid] if axis == 0 else act[0, :, mid, k]).sum(), x,
                                                  retain_graph=True, allow_unused=True)
                    got = np.flatnonzero(grad[0].abs().sum(dim=(0, 2 - axis)).numpy() > 0) if grad is not None else []
                    ends.append((int(got[0]), int(got[-1])) if len(got) else None)
                if len(ends) < 3 or None in ends:
                    continue  # dead at the ends, or a map too short: keep what the probe saw
                first, second, last = ends
                if second[1] >= length - 1 or last[0] <= 0:
                    left.append(name)
                    found.setdefault(name, {"size": 0, "stride": [None, None], "offset": [None, None]})
                    found[name]["size"] = max(found[name]["size"], length)
                    continue
                step = second[1] - first[1]
                if step <= 0:
                    continue  # not a field that moves with the position: keep what the probe saw
                extent = round(first[1] - last[0] + (n - 1) * step + 1)
                got = found.setdefault(name, {"size": 0, "stride": [None, None], "offset": [None, None]})
                got["size"] = max(got["size"], int(extent))
                got["stride"][axis] = float(step)
                got["offset"][axis] = first[1] - (extent - 1) / 2  # the first position's centre (a symmetric field)
            todo = left
            del acts, x
    for name in symmetric & found.keys():
        for key in ("stride", "offset"):
            found[name][key][1] = found[name][key][0]
    return found


def _clipped(support: np.ndarray, axis: int, size: int) -> bool:
    return bool(support[0, axis] <= 0 or support[1, axis] >= size - 1)


def peaks(act: torch.Tensor, m: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """[R, h, w] maps -> the m strongest local maxima (3x3) of each, strongest first: values [R, m] (-inf where a map
    has fewer), rows and columns [R, m]. The global maximum is always among them. (The 3x3 maximum is taken as two
    1-D maxima of shifted views: torch's max_pool2d with stride 1 is ~10x slower on the CPU.)"""
    act = act.detach().float().nan_to_num(nan=float("-inf"))
    p = F.pad(act, (1, 1, 1, 1), value=float("-inf"))
    rows = torch.maximum(torch.maximum(p[:, :, :-2], p[:, :, 1:-1]), p[:, :, 2:])
    around = torch.maximum(torch.maximum(rows[:, :-2], rows[:, 1:-1]), rows[:, 2:])
    masked = act.masked_fill(act < around, float("-inf")).flatten(1)
    m = min(m, masked.shape[1])
    vals, idx = masked.topk(m, dim=1)
    w = act.shape[2]
    return vals.numpy().astype(np.float64), (idx // w).numpy(), (idx % w).numpy()


def source_boxes(rf: ReceptiveField, fy, fx, scaled_h, scaled_w, source_h, source_w) -> np.ndarray:
    """Receptive fields of feature-map positions (fy, fx) of an image resized from (source_h, source_w) to
    (scaled_h, scaled_w), as boxes [..., 4] = (x0, y0, x1, y1) in source pixels (continuous: pixel i spans [i, i+1)).
    Every argument but rf may be an array (broadcast)."""
    sy = np.asarray(source_h, dtype=np.float64) / np.asarray(scaled_h, dtype=np.float64)
    sx = np.asarray(source_w, dtype=np.float64) / np.asarray(scaled_w, dtype=np.float64)
    cy = (rf.offset[0] + np.asarray(fy) * rf.stride[0] + 0.5) * sy
    cx = (rf.offset[1] + np.asarray(fx) * rf.stride[1] + 0.5) * sx
    hy, hx = rf.size / 2 * sy, rf.size / 2 * sx
    return np.stack(np.broadcast_arrays(cx - hx, cy - hy, cx + hx, cy + hy), axis=-1)


def source_box(rf: ReceptiveField, fy: int, fx: int, scaled_h: int, scaled_w: int, source_h: int,
               source_w: int) -> tuple[float, float, float, float]:
    """source_boxes for one position, in plain Python (the records ask for tens of thousands, one at a time)."""
    sy, sx = source_h / scaled_h, source_w / scaled_w
    cy, cx = (rf.offset[0] + fy * rf.stride[0] + 0.5) * sy, (rf.offset[1] + fx * rf.stride[1] + 0.5) * sx
    hy, hx = rf.size / 2 * sy, rf.size / 2 * sx
    return cx - hx, cy - hy, cx + hx, cy + hy


def spread_picks(values: np.ndarray, boxes: np.ndarray, per_image: int,
                 max_overlap: float = MAX_OVERLAP) -> np.ndarray:
    """Greedy selection per row: values [R, N] (-inf: no candidate), boxes [R, N, 4] -> [R, per_image] candidate
    indices (-1: none), strongest first, each overlapping every earlier pick of its row by at most `max_overlap` of the
    smaller box. Ties go to the lower index."""
    v = np.array(values, dtype=np.float64)
    rows = np.arange(v.shape[0])
    out = np.full((v.shape[0], per_image), -1, dtype=np.int64)
    area = (boxes[..., 2] - boxes[..., 0]) * (boxes[..., 3] - boxes[..., 1])
    for p in range(per_image):
        j = np.argmax(v, axis=1)
        ok = np.isfinite(v[rows, j])
        out[:, p] = np.where(ok, j, -1)
        if p + 1 == per_image or not ok.any():
            break
        b = boxes[rows, j]
        ix = np.minimum(boxes[..., 2], b[:, None, 2]) - np.maximum(boxes[..., 0], b[:, None, 0])
        iy = np.minimum(boxes[..., 3], b[:, None, 3]) - np.maximum(boxes[..., 1], b[:, None, 1])
        inter = np.clip(ix, 0, None) * np.clip(iy, 0, None)
        v[inter > max_overlap * np.minimum(area, area[rows, j][:, None])] = -np.inf
        v[~ok] = -np.inf
    return out


# An entry's integer facts, in this column order: the image's position in the set's fixed order, its source height and
# width, the scaled height and width it was looked at, and the feature-map row and column.
POS, H0, W0, HS, WS, FY, FX = range(7)


class RunningTopK:
    """For every channel of one layer, its `k` strongest examples so far, strongest first: values [C, k] (-inf: an
    empty slot) and facts [C, k, 7] (columns POS..FX). Ties are broken by image position, then scale and position, so
    the result never depends on how the images were split into chunks or builds. With `crop_shape`, each entry's
    context crop is kept beside it (uint8), for sets too large to cut crops from again at the end: channel c's k crops
    live in `crops[c]`, its rank r's in slot `slot[c, r]`, so a merge moves slot numbers, not pixels."""

    def __init__(self, channels: int, k: int, crop_shape: tuple[int, ...] | None = None):
        self.vals = np.full((channels, k), -np.inf)
        self.meta = np.zeros((channels, k, 7), dtype=np.int64)
        self.crops = np.full((channels, k, *crop_shape), 128, dtype=np.uint8) if crop_shape else None
        self.slot = np.tile(np.arange(k), (channels, 1))

    @property
    def k(self) -> int:
        return self.vals.shape[1]

    @property
    def kth(self) -> np.ndarray:
        """Per channel the value a new example must beat (-inf while the channel has free slots)."""
        return self.vals[:, -1]

    def merge(self, vals: np.ndarray, meta: np.ndarray, cut=None) -> None:
        """Merge candidates vals [C, n] (-inf: none) with facts [C, n, 7]. `cut(channel, column)` gives the crop of
        candidate `column` when it gets in (crops kept only)."""
        c, k = self.vals.shape
        allv = np.concatenate([self.vals, vals], axis=1)
        allm = np.concatenate([self.meta, meta], axis=1)
        n = allv.shape[1]
        row = np.repeat(np.arange(c), n)
        flat = allm.reshape(-1, 7)
        order = np.lexsort((flat[:, FX], flat[:, FY], flat[:, WS], flat[:, HS], flat[:, POS], -allv.ravel(), row))
        idx = order.reshape(c, n)[:, :k] - (np.arange(c) * n)[:, None]
        self.vals = np.take_along_axis(allv, idx, axis=1)
        self.meta = np.take_along_axis(allm, idx[:, :, None], axis=1)
        if self.crops is not None:
            slot = np.take_along_axis(self.slot, np.minimum(idx, k - 1), axis=1)  # kept entries keep their slots
            for ch in np.flatnonzero((idx >= k).any(axis=1)):
                new = idx[ch] >= k
                free = sorted(set(range(k)) - set(slot[ch][~new].tolist()))  # the dropped entries' slots
                for r, s_ in zip(np.flatnonzero(new), free):
                    slot[ch, r] = s_
                    if np.isfinite(self.vals[ch, r]):
                        self.crops[ch, s_] = cut(int(ch), int(idx[ch, r] - k))
            self.slot = slot

    def ranked_crops(self) -> np.ndarray:
        """The crops in rank order: [C, k, cell, cell, c]."""
        return np.take_along_axis(self.crops, self.slot.reshape(*self.slot.shape, 1, 1, 1), axis=1)

    def rows(self) -> list[list[tuple]]:
        """Per channel its entries (value, facts...) strongest first, empty slots left out."""
        return [[(float(v), *map(int, m)) for v, m in zip(vs, ms) if np.isfinite(v)]
                for vs, ms in zip(self.vals, self.meta)]


def scaled_size(shape: tuple[int, int], short_side: int | None) -> tuple[int, int]:
    """The (h, w) an image of `shape` is resized to for a given shorter side (None: as it is); as resize_photo."""
    h, w = shape
    if short_side is None:
        return h, w
    f = short_side / min(h, w)
    return max(1, round(h * f)), max(1, round(w * f))


def scales_for(shape: tuple[int, int], base: int | None, factors: Sequence[float]) -> list[int | None]:
    """Shorter sides an image is looked at: base x each factor, but never enlarged beyond the base size; an image
    smaller than the base is looked at once, enlarged at most ENLARGE times (a 25-px face is not worth a 224-px
    forward pass). base None: the image as it is."""
    if base is None:
        return [None]
    short = min(shape)
    if short < base:
        return [min(base, ENLARGE * short)]
    return list(dict.fromkeys(int(round(base * f)) for f in factors if f == factors[0] or base * f <= short))


def context_box(rf_box: Sequence[float], side: float, shape: tuple[int, int]) -> tuple[float, float, float]:
    """A square (x0, y0, side) around a receptive field box (x0, y0, x1, y1), inside an image of `shape` (h, w) where
    it fits, centred on it where it does not; never wider than the image's longer side."""
    h, w = shape
    side = float(min(side, max(h, w)))
    cx, cy = (rf_box[0] + rf_box[2]) / 2, (rf_box[1] + rf_box[3]) / 2

    def place(c: float, length: int) -> float:
        start = c - side / 2
        if length >= side:
            return min(max(start, 0.0), length - side)
        return (length - side) / 2

    return place(cx, w), place(cy, h), side


def to_u8(image: np.ndarray) -> np.ndarray:
    """float [0, 1] -> uint8, as every picture is stored (round half up, clipped)."""
    return np.round(np.clip(image, 0, 1) * 255).astype(np.uint8)


def cut(image: np.ndarray, x0: float, y0: float, side: float, cell: int) -> np.ndarray:
    """image[y0:y0+side, x0:x0+side] (gray outside the image) resized to cell x cell: uint8 [cell, cell, c]. `image`
    is uint8 (to_u8; a crops pass cuts tens of thousands) or float in [0, 1]."""
    from PIL import Image

    if image.dtype != np.uint8:
        image = to_u8(image)
    xi, yi, s = int(math.floor(x0)), int(math.floor(y0)), max(1, int(round(side)))
    h, w, c = image.shape
    ya, xa, yb, xb = max(yi, 0), max(xi, 0), min(yi + s, h), min(xi + s, w)
    if (ya, xa, yb, xb) == (yi, xi, yi + s, xi + s):
        region = image[ya:yb, xa:xb]
    else:
        region = np.full((s, s, c), round(PAD_VALUE * 255), dtype=np.uint8)
        if yb > ya and xb > xa:
            region[ya - yi:yb - yi, xa - xi:xb - xi] = image[ya:yb, xa:xb]
    pic = Image.fromarray(np.ascontiguousarray(region[:, :, 0] if c == 1 else region), "L" if c == 1 else "RGB")
    if s != cell:
        pic = pic.resize((cell, cell), Image.Resampling.BILINEAR if s < cell else Image.Resampling.BOX)
    arr = np.asarray(pic)
    return arr[:, :, None] if arr.ndim == 2 else arr
