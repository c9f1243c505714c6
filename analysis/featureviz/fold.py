"""Batch norms folded into the convolutions that feed them, for the optimisation loop only.

In eval mode a BatchNorm2d that reads a Conv2d's output is an affine map per channel, so it can be folded into that
conv's weight and bias (what every inference runtime does). The optimisation loop runs the network forward and
backward on every step: on MobileNetV2 up to `features.10` the batch norms' forward and backward were 27% of a
step's CPU time (torch profiler, bench/README.md). The folded network computes the same function up to float
rounding; the caller's model is left as it is.

Pairs are found by running the network once with hooks (a batch norm whose input is the very tensor a conv returned),
not from module names or the order of registration, so any architecture works; the folded copy is then checked
against the original at the layer being visualized and not used where they differ (a conv output read by something
else besides its batch norm would be changed by the fold).
"""
from __future__ import annotations

import copy
import weakref

import torch
from torch import nn
from torch.nn.utils.fusion import fuse_conv_bn_weights

from .hooks import frozen, layer_activations

RTOL = 1e-4  # largest difference at the layer, relative to its largest activation, that counts as the same function

_MEMO: "weakref.WeakKeyDictionary[nn.Module, tuple]" = weakref.WeakKeyDictionary()


def folded(model: nn.Module, layer: str, probe: torch.Tensor) -> nn.Module:
    """`model` with the conv -> batch-norm pairs that `layer`'s output depends on folded (a copy), or `model` itself
    when there are none or the copy's output at `layer` for `probe` differs from the model's. Memoised per model
    object, state of its tensors and layer."""
    state = _state(model)
    memo = _MEMO.get(model)
    if memo is None or memo[0] != state:
        memo = (state, {})
        _MEMO[model] = memo
    key = (layer, tuple(probe.shape))
    if key not in memo[1]:
        copy_ = _fold(model, conv_bn_pairs(model, layer, probe))
        memo[1][key] = copy_ if copy_ is not None and _same(model, copy_, layer, probe) else None
    return memo[1][key] or model


def _state(model: nn.Module) -> tuple:
    """Changes when any parameter or buffer is replaced or changed in place (torch's version counters)."""
    return tuple((id(t), t._version) for t in (*model.parameters(), *model.buffers()))


def _fold(model: nn.Module, pairs: list[tuple[str, str]]) -> nn.Module | None:
    if not pairs:
        return None
    try:
        out = copy.deepcopy(model).eval()
    except Exception:  # noqa: BLE001 -- a network that cannot be copied is used as it is
        return None
    modules = dict(out.named_modules())
    for conv_name, bn_name in pairs:
        conv, bn = modules[conv_name], modules[bn_name]
        with torch.no_grad():
            w, b = fuse_conv_bn_weights(conv.weight, conv.bias, bn.running_mean, bn.running_var, bn.eps, bn.weight,
                                        bn.bias)
        conv.weight, conv.bias = nn.Parameter(w, requires_grad=False), nn.Parameter(b, requires_grad=False)
        parent, _, attr = bn_name.rpartition(".")
        setattr(modules[parent] if parent else out, attr, nn.Identity())
    return out


def conv_bn_pairs(model: nn.Module, layer: str, probe: torch.Tensor) -> list[tuple[str, str]]:
    """(conv, batch norm) module names, up to `layer`, where the batch norm reads exactly the conv's output (the same
    tensor object), found by one forward pass of `probe`; batch norms that use batch statistics in eval mode, and
    modules called more than once (shared weights), are left out."""
    convs = {m: n for n, m in model.named_modules() if isinstance(m, nn.Conv2d)}
    bns = {m: n for n, m in model.named_modules()
           if isinstance(m, nn.BatchNorm2d) and m.track_running_stats and m.running_mean is not None}
    if not convs or not bns:
        return []
    produced: dict[int, tuple[nn.Module, torch.Tensor]] = {}  # the tensors are held so their ids stay unique
    found: list[tuple[nn.Module, nn.Module]] = []
    calls: dict[nn.Module, int] = {}

    def after_conv(m, _inp, out):
        calls[m] = calls.get(m, 0) + 1
        produced[id(out)] = (m, out)

    def before_bn(m, inp):
        calls[m] = calls.get(m, 0) + 1
        if id(inp[0]) in produced and produced[id(inp[0])][1] is inp[0]:
            found.append((produced[id(inp[0])][0], m))

    handles = [m.register_forward_hook(after_conv) for m in convs] + [m.register_forward_pre_hook(before_bn)
                                                                      for m in bns]
    try:
        with torch.no_grad(), frozen(model):
            layer_activations(model, layer, probe)
    except Exception:  # noqa: BLE001 -- a network that cannot run on this probe is simply not folded
        return []
    finally:
        for h in handles:
            h.remove()
    return [(convs[c], bns[b]) for c, b in dict.fromkeys(found) if calls[c] == 1 and calls[b] == 1]


def _same(model: nn.Module, copy_: nn.Module, layer: str, probe: torch.Tensor) -> bool:
    try:
        with torch.no_grad(), frozen(model), frozen(copy_):
            a = layer_activations(model, layer, probe)
            b = layer_activations(copy_, layer, probe)
    except Exception:  # noqa: BLE001 -- e.g. a layer the copy cannot reach: use the model as it is
        return False
    scale = float(a.abs().max())
    return a.shape == b.shape and float((a - b).abs().max()) <= RTOL * max(scale, 1e-12)
