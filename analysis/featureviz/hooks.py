"""Capture one named module's output with a forward hook, optionally stopping the forward pass there."""
from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch
from torch import nn


class _StopForward(Exception):
    """Raised inside the hook to skip the layers above the target: they cannot change its activation."""


def find_module(model: nn.Module, layer: str) -> nn.Module:
    """The submodule named `layer` as in model.named_modules(); clear error listing some valid names."""
    modules = dict(model.named_modules())
    if layer not in modules:
        names = [n for n in modules if n]
        raise KeyError(f"no layer {layer!r} in {type(model).__name__}; some layers: {names[:20]}")
    return modules[layer]


def layer_activations(model: nn.Module, layer: str, x: torch.Tensor) -> torch.Tensor:
    """Run `model` on x up to `layer` and return that layer's output (gradients flow if x requires them)."""
    module = find_module(model, layer)
    captured: list[torch.Tensor] = []

    def hook(_m: nn.Module, _inp: object, out: torch.Tensor) -> None:
        captured.append(out)
        raise _StopForward

    handle = module.register_forward_hook(hook)
    try:
        model(x)
    except _StopForward:
        pass
    finally:
        handle.remove()
    if not captured:
        raise RuntimeError(f"layer {layer!r} was not reached by the forward pass")
    out = captured[0]
    if not isinstance(out, torch.Tensor):
        raise TypeError(f"layer {layer!r} outputs {type(out).__name__}, not a tensor")
    return out


@contextlib.contextmanager
def frozen(model: nn.Module) -> Iterator[None]:
    """Eval mode and no parameter gradients for the duration; the model's own flags are restored afterwards.

    Eval mode matters for batching: batch-norm in training mode would mix the images of a batch.
    """
    flags = [(p, p.requires_grad) for p in model.parameters()]
    modes = [(m, m.training) for m in model.modules()]
    model.eval()
    for p, _ in flags:
        p.requires_grad_(False)
    try:
        yield
    finally:
        for p, flag in flags:
            p.requires_grad_(flag)
        for m, mode in modes:
            m.training = mode


@contextlib.contextmanager
def deterministic(num_threads: int | None, device: str = "cpu") -> Iterator[None]:
    """torch deterministic algorithms and a fixed thread count for the duration; previous settings restored.

    Deterministic mode would also NaN-fill every new tensor (a debugging aid that cost ~25% of the run time
    here); that fill is turned off, since no kernel we use reads uninitialised memory. On CUDA some kernels
    (grid_sample's backward) have no deterministic version: there it only warns, and results match the CPU's within
    a tolerance rather than bit for bit.
    """
    import torch.utils.deterministic as det

    prev_det = torch.are_deterministic_algorithms_enabled()
    prev_fill = det.fill_uninitialized_memory
    prev_threads = torch.get_num_threads()
    torch.use_deterministic_algorithms(True, warn_only=str(device) != "cpu")
    det.fill_uninitialized_memory = False
    if num_threads is not None:
        torch.set_num_threads(num_threads)
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(prev_det)
        det.fill_uninitialized_memory = prev_fill
        torch.set_num_threads(prev_threads)
