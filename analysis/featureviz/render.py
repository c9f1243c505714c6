"""The optimisation loop: many neurons per pass, one image per neuron (batch dimension = neurons)."""
from __future__ import annotations

import copy
import queue
from collections.abc import Callable, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from analysis.core.spec import DEFAULT_QUALITY, QUALITY_PRESETS

from . import objectives, param, transform
from .fold import folded
from .hooks import deterministic, frozen, layer_activations

SIZE, STEPS, LR = (QUALITY_PRESETS[DEFAULT_QUALITY][k] for k in ("size", "steps", "lr"))  # the site's default look

# With a `view`, one step in PLAIN_EVERY sees the picture at its own scale, the others enlarged to the view: on
# EfficientNet-Lite0 `_blocks.4` (72 px, enlarged to 224) one in 2 kept 0.69x Lucent's activation enlarged, one in 4
# 0.89x (1.14x at its own size), one in 8 0.97x (0.97x at its own size) at 128 steps and 1.00x (1.01x) at 160
# (bench/README.md).
PLAIN_EVERY = 8
# The last eighth of the steps see the picture as it is shown, without the random jitter, scale and rotation: the
# transforms keep it from fitting one pixel grid (no checkerboard), and the last steps then raise the activation of the
# picture itself. On EfficientNet-Lite0 `_blocks.10` and `_blocks.4` at 128 steps: 1.07x Lucent's activation at the
# picture's size and 1.10x enlarged to 224 px, against 0.99x / 0.97x at 192 steps without; the high-frequency share
# did not rise (bench/README.md).
POLISH = 1 / 8

ScoreFn = Callable[[torch.Tensor, slice], torch.Tensor]  # (activations of a chunk, chunk slice) -> scores [n]


def optimize(model: nn.Module, layer: str, score: ScoreFn, keys: Sequence[int], *, size: int = SIZE,
             steps: int = STEPS, lr: float = LR, seed: int = 0, batch: int = 32, channels_in: int = 3,
             num_threads: int | None = 2, robust: bool = True, device: str = "cpu",
             view: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Maximise score() for len(keys) images in chunks of `batch`.

    keys[i] names image i's random streams (with `seed`), so an image does not depend on its batch-mates' RNG.
    Returns (images float32 [n, size, size, channels_in] in [0, 1], final scores float32 [n] on the
    untransformed images). On `device` "cuda" a copy of the model runs there; the random streams stay on the CPU,
    so both devices start from the same images (equal within bench/README.md's tolerance).
    channels_in=1 renders a gray picture; a model whose first conv takes RGB (one trained on gray images repeated
    to RGB, like the banding lab's) sees it repeated to three channels.
    view: the model's input side (e.g. 224). A picture smaller than that is also optimised as the model sees it
    enlarged (bilinear) to that side, on 7 steps in 8 (PLAIN_EVERY): it then works at its own scale and enlarged
    (as readers see it), where a picture optimised at its own scale only lost 0.6x of its activation enlarged.
    robust: random transforms on every step but the last POLISH share of them.
    """
    if channels_in not in (1, 3):
        raise ValueError(f"channels_in must be 1 (gray) or 3 (RGB), got {channels_in}")
    repeat = model_channels(model, channels_in) // channels_in
    if size < 8 or steps < 0 or batch < 1:
        raise ValueError(f"bad parameters: size={size} steps={steps} batch={batch}")
    decorrelate = channels_in == 3
    enlarge = view is not None and view > size
    spec = transform.TransformSpec.standard(size)
    scale = param.spectrum_scale(size, size).to(device)
    # The same function with its batch norms folded into the convs (fold.py): 0.66x the CPU on MobileNetV2
    # (bench/README.md).
    probe = torch.rand((1, model_channels(model, channels_in), size, size), generator=torch.Generator().manual_seed(0))
    model = _on(folded(model, layer, probe), device)
    # On the CPU, `num_threads` threads each optimise their own share of the images with one torch thread and their
    # own copy of the model (hooks are per module): 0.83x the CPU of one optimisation on two torch threads, whose
    # small convs kept the second thread spinning (bench/README.md). An image depends only on its own random streams,
    # so its picture does not depend on `num_threads` beyond the rounding of batch-size-dependent kernels.
    # A model with hooks of its own on its forward (a bring-your-own model's time limit, analysis/core/deadline.py,
    # keeps process-wide state) runs on one thread: its hooks were not written for two forwards at once.
    hooked = bool(model._forward_pre_hooks or model._forward_hooks)
    workers = max(1, min(num_threads or 1, len(keys))) if str(device) == "cpu" and not hooked else 1
    rounds = -(-len(keys) // (workers * batch))  # chunks of at most `batch` images, as even as the workers allow
    per = max(1, -(-len(keys) // (workers * max(rounds, 1))))
    chunks = [slice(start, min(start + per, len(keys))) for start in range(0, len(keys), per)]

    def run(chunk: slice, net: nn.Module) -> tuple[np.ndarray, np.ndarray]:
        seeds = [(seed, int(k)) for k in keys[chunk]]
        spectrum = param.init_spectrum(seeds, channels_in, size).to(device).requires_grad_(True)
        rngs = transform.transform_rngs(seeds)
        opt = torch.optim.Adam([spectrum], lr=lr)
        polish_from = steps - int(steps * POLISH)
        for step in range(steps):
            img = param.spectrum_to_image(spectrum, scale, decorrelate)
            if robust and step < polish_from:
                img = transform.apply(img, transform.sample_affines(rngs, spec, size).to(device), spec)
            if enlarge and step % PLAIN_EVERY:
                img = F.interpolate(img, scale_factor=view / size, mode="bilinear", align_corners=False)
            # channels-last runs oneDNN's convs (depthwise ones especially) 1.1-1.6x faster on CPU
            img = img.expand(-1, channels_in * repeat, -1, -1).contiguous(memory_format=torch.channels_last)
            loss = -score(layer_activations(net, layer, img), chunk).sum()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        with torch.no_grad():
            img = param.spectrum_to_image(spectrum, scale, decorrelate)
            seen = img.expand(-1, channels_in * repeat, -1, -1)
            scores = score(layer_activations(net, layer, seen), chunk).cpu().numpy()
        return img.permute(0, 2, 3, 1).cpu().numpy(), scores

    with deterministic(1 if workers > 1 else num_threads, device), frozen(model):
        copies = _copies(model, workers - 1) if workers > 1 and len(chunks) > 1 else []
        if copies:
            from concurrent.futures import ThreadPoolExecutor

            free: queue.SimpleQueue = queue.SimpleQueue()  # a copy of the model is used by one thread at a time
            for net in [model, *copies]:
                free.put(net)

            def task(chunk: slice) -> tuple[np.ndarray, np.ndarray]:
                net = free.get()
                try:
                    return run(chunk, net)
                finally:
                    free.put(net)

            with ThreadPoolExecutor(workers) as pool:
                done = list(pool.map(task, chunks))
        else:
            done = [run(chunk, model) for chunk in chunks]
    images, scores = [d[0] for d in done], [d[1] for d in done]
    empty = np.zeros((0, size, size, channels_in), np.float32)
    return (np.concatenate(images).astype(np.float32) if images else empty,
            np.concatenate(scores).astype(np.float32) if scores else np.zeros(0, np.float32))


def _copies(model: nn.Module, n: int) -> list[nn.Module]:
    """n copies of the model for the other threads; none when it cannot be copied (an author's model holding a lock
    or an open file): then its images are optimised one chunk after another on one thread, the same pictures."""
    try:
        return [copy.deepcopy(model) for _ in range(n)]
    except Exception:  # noqa: BLE001 - any failure to copy means: do without copies
        return []


def visualize(model: nn.Module, layer: str, channels: Sequence[int], *, size: int = SIZE, steps: int = STEPS,
              lr: float = LR, seed: int = 0, batch: int = 32, channels_in: int = 3,
              num_threads: int | None = 2, device: str = "cpu", view: int | None = None) -> np.ndarray:
    """Feature visualizations of `channels` of `layer` -> float32 [n, size, size, channels_in] in [0, 1].

    Objective: mean activation of the channel over all positions (Lucid's `channel` objective). `view`: see
    optimize().
    """
    chans = torch.as_tensor(list(channels), dtype=torch.long)
    out = _layer_width(model, layer, size, channels_in)
    if len(chans) and (chans.min() < 0 or chans.max() >= out):
        raise ValueError(f"channels must be in [0, {out}) for layer {layer!r}, got {chans.tolist()}")
    targets = chans.to(device)
    images, _ = optimize(model, layer, lambda act, sl: objectives.channel(act, targets[sl]), chans.tolist(),
                         size=size, steps=steps, lr=lr, seed=seed, batch=batch, channels_in=channels_in,
                         num_threads=num_threads, device=device, view=view)
    return images


def visualize_directions(model: nn.Module, layer: str, directions: np.ndarray, *, position: str = "mean",
                         size: int = SIZE, steps: int = STEPS, lr: float = LR, seed: int = 0, batch: int = 32,
                         channels_in: int = 3, num_threads: int | None = 2, device: str = "cpu",
                         view: int | None = None) -> np.ndarray:
    """Feature visualizations of directions [n, C_layer] in `layer`'s activation space -> [n, size, size, C_in].

    E.g. directions = W[:, :, ky, kx].T of the next layer's kernel shows what an input-channel vector of that
    weight "looks for". Image i's random streams are keyed by its row index i.
    """
    dirs = torch.as_tensor(np.asarray(directions, dtype=np.float32))
    out = _layer_width(model, layer, size, channels_in)
    if dirs.dim() != 2 or dirs.shape[1] != out:
        raise ValueError(f"directions must be [n, {out}] for layer {layer!r}, got {tuple(dirs.shape)}")
    if position not in objectives.POSITIONS:
        raise ValueError(f"position must be one of {objectives.POSITIONS}, got {position!r}")
    targets = dirs.to(device)
    images, _ = optimize(model, layer, lambda act, sl: objectives.direction(act, targets[sl], position),
                         list(range(len(dirs))), size=size, steps=steps, lr=lr, seed=seed, batch=batch,
                         channels_in=channels_in, num_threads=num_threads, device=device, view=view)
    return images


def _on(model: nn.Module, device: str) -> nn.Module:
    """The model on `device`: itself on the CPU, a copy elsewhere (the caller's model is left where it is)."""
    if str(device) == "cpu":
        return model
    import copy

    return copy.deepcopy(model).to(device)


def model_channels(model: nn.Module, channels_in: int) -> int:
    """Channels the model's input takes: 3 for a gray picture (channels_in=1) whose model's first conv takes RGB
    (it is repeated), else `channels_in` (the forward pass says so if that is wrong)."""
    first = next((m for m in model.modules() if isinstance(m, nn.Conv2d)), None)
    return 3 if channels_in == 1 and first is not None and first.in_channels == 3 else channels_in


def _layer_width(model: nn.Module, layer: str, size: int, channels_in: int) -> int:
    """Number of channels of `layer`'s output, from one no-grad probe forward pass."""
    with torch.no_grad(), frozen(model):
        act = layer_activations(model, layer, torch.full((1, model_channels(model, channels_in), size, size), 0.5))
    return objectives.as_nchw(act).shape[1]
