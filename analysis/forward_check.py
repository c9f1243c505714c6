"""Does a network run at the image size its front matter declares? One forward pass, before any analysis.

`run_forward` is the one place the build calls a brought model's forward() on its own (a time limit for author code
wraps it from outside); `check_image_size` turns what it finds into one line at the front matter's `image_size`.
"""
from __future__ import annotations

import traceback
from pathlib import Path

import torch
from torch import nn
from torch.overrides import TorchFunctionMode

from analysis.core.errors import AnalysisError

_TORCH_DIR = str(Path(torch.__file__).resolve().parent)


class TooSmall(Exception):
    """A conv whose input, padding included, is smaller than its (dilated) kernel."""


class _WatchConvs(TorchFunctionMode):
    """Checks every 2-D convolution's padded input against its kernel before torch runs it: torch's own message
    ("Kernel size can't be greater than actual input size") names no layer."""

    def __init__(self, names: dict[int, str]):
        super().__init__()
        self.names = names

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if getattr(func, "__name__", "") == "conv2d":
            self._check(*args, **kwargs)
        return func(*args, **kwargs)

    def _check(self, input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
        if isinstance(padding, str) or not isinstance(input, torch.Tensor) or input.dim() < 3:
            return  # "same" keeps the size; "valid" is padding 0 (torch says so itself)
        pad = (padding, padding) if isinstance(padding, int) else tuple(padding)
        dil = (dilation, dilation) if isinstance(dilation, int) else tuple(dilation)
        size = tuple(int(s) + 2 * int(p) for s, p in zip(input.shape[-2:], pad))
        kernel = tuple(d * (int(k) - 1) + 1 for d, k in zip(dil, weight.shape[-2:]))
        if size[0] < kernel[0] or size[1] < kernel[1]:
            name = self.names.get(id(weight), "a conv")
            got = "x".join(map(str, input.shape[-2:]))
            padded = f", {'x'.join(map(str, size))} with its padding" if any(pad) else ""
            raise TooSmall(f"{name} gets a {got} input{padded}, smaller than its {'x'.join(map(str, kernel))} kernel")


def run_forward(model: nn.Module, image_size: int, channels: int) -> None:
    """model(x) once for x of shape [1, channels, image_size, image_size], without gradients; raises what it raises
    (TooSmall for a conv whose padded input is smaller than its kernel)."""
    names = {id(m.weight): n for n, m in model.named_modules() if isinstance(m, nn.Conv2d)}
    x = torch.full((1, channels, image_size, image_size), 0.5)
    with torch.no_grad(), _WatchConvs(names):
        model(x)


def check_image_size(model: nn.Module, image_size: int, channels: int, factory: str = "") -> None:
    """An AnalysisError at the front matter's `image_size` when the network does not run at that size."""
    shape = f"1x{channels}x{image_size}x{image_size}"
    try:
        run_forward(model, image_size, channels)
    except TooSmall as exc:
        raise AnalysisError(f"image_size {image_size}: {exc}; the network needs larger images",
                            field="image_size") from exc
    except (KeyboardInterrupt, AnalysisError):
        raise
    except SystemExit as exc:  # user code: a failed build, not the process's exit status
        raise AnalysisError(f"image_size {image_size}: {_where(exc)}the model's forward() called sys.exit({exc.code!r}) "
                            f"on a {shape} input (model factory {factory!r})", field="image_size") from None
    except Exception as exc:
        text = " ".join(str(exc).split())[:300]
        raise AnalysisError(f"image_size {image_size}: the model's forward() fails on a {shape} input: {_where(exc)}"
                            f"{type(exc).__name__}: {text}", field="image_size") from exc


def _where(exc: BaseException) -> str:
    """'file:line: ' of the innermost frame outside torch and this module (the model's own code), or ''."""
    frames = [f for f in traceback.extract_tb(exc.__traceback__)
              if not f.filename.startswith(_TORCH_DIR) and f.filename != __file__]
    return f"{frames[-1].filename}:{frames[-1].lineno}: " if frames else ""
