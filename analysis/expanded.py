"""Expanded weights (Voss et al. 2021): the effective linear kernel from one layer's output to a later one's.

The model is linearized (ReLU-like activations -> identity, max-pool -> average-pool with the same
kernel/stride/padding, batch norm in eval mode, dropout off), which makes the map from `from_layer`'s output
to `to_layer`'s output affine. Its kernel is read off as the gradient of the centre position of each
`to_layer` channel with respect to `from_layer`'s output, cropped to the support: every path through the
model (residual additions, concatenated branches) contributes, so skip connections appear naturally. `identity_at`
finds where an identity skip puts its weight 1 in that kernel, so the analyses can show a block's own contribution,
total minus the identity (analysis/skips.py, analysis/tensor_stage.py).

Linearization intercepts torch functions (a TorchFunctionMode), so it also covers activations called
functionally inside `forward` (F.relu, x.relu_(), ...), not only nn.ReLU modules. Multiplicative gates
(sigmoid/tanh attention, squeeze-excitation) are not linear and are left as they are.

Longer than 300 lines on purpose: the linearization mode, the support search and the two expansion entry points
share their private helpers; split, each half would import the other's internals.
"""
from __future__ import annotations

import copy
from typing import Any, Callable

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.overrides import TorchFunctionMode

from analysis.core.errors import AnalysisError

# Functions replaced by identity: ReLU-like activations (gradient ~1 where they pass) and dropout.
_IDENTITY = frozenset(
    {
        "relu", "relu_", "relu6", "hardtanh", "hardtanh_", "leaky_relu", "leaky_relu_", "gelu", "silu",
        "silu_", "hardswish", "hardswish_", "mish", "mish_", "elu", "elu_", "selu", "selu_", "celu", "celu_",
        "softplus", "prelu", "rrelu", "rrelu_",
        "dropout", "dropout_", "dropout1d", "dropout2d", "dropout3d", "alpha_dropout", "feature_alpha_dropout",
    }
)  # fmt: skip


def _max_pool_args(input, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False, return_indices=False):
    return input, kernel_size, stride, padding, dilation, ceil_mode, return_indices


def _adaptive_max_args(input, output_size, return_indices=False):
    return input, output_size, return_indices


class _Linearized(TorchFunctionMode):
    """Inside this mode ReLU-likes are identity and max-pooling is average-pooling (count_include_pad, so
    every window position has the same weight 1/k^2 and the map stays translation-invariant)."""

    def __torch_function__(self, func: Callable, types: Any, args: tuple = (), kwargs: dict | None = None):
        kwargs = kwargs or {}
        name = getattr(func, "__name__", "")
        if name in _IDENTITY:
            return args[0] if args else kwargs["input"]
        if name == "max_pool2d_with_indices":
            raise AnalysisError("expanded_weights: max_pool2d with return_indices has no average-pool twin")
        if name == "max_pool2d":
            x, k, stride, pad, dil, ceil, ret = _max_pool_args(*args, **kwargs)
            dil = (dil, dil) if isinstance(dil, int) else tuple(dil)
            if ret or dil != (1, 1):
                raise AnalysisError(
                    "expanded_weights: max_pool2d with return_indices or dilation has no average-pool twin"
                )
            stride = None if stride is None or (not isinstance(stride, int) and len(stride) == 0) else stride
            return F.avg_pool2d(x, k, stride, pad, ceil_mode=ceil, count_include_pad=True)
        if name == "adaptive_max_pool2d":
            x, size, ret = _adaptive_max_args(*args, **kwargs)
            if ret:
                raise AnalysisError("expanded_weights: adaptive_max_pool2d with return_indices is not supported")
            return F.adaptive_avg_pool2d(x, size)
        return func(*args, **kwargs)


class _Stop(Exception):
    """Raised by the to_layer hook: nothing after to_layer needs computing."""


def _first_conv_channels(model: nn.Module) -> int:
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            return int(m.in_channels)
    raise AnalysisError("expanded_weights: model has no Conv2d to infer the input channels from; pass input_channels")


def _support_copy(lin: nn.Module) -> nn.Module:
    """Copy whose every path from input to output has positive weight, so nothing cancels and the
    gradient is non-zero exactly on the architectural support. Uniform 1/fan_in weights keep
    activations O(1) through any depth."""
    sup = copy.deepcopy(lin)
    with torch.no_grad():
        for m in sup.modules():
            if isinstance(m, (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.Linear)):
                m.weight.fill_(1.0 / m.weight[0].numel())
                if m.bias is not None:
                    m.bias.zero_()
            elif isinstance(m, nn.modules.batchnorm._BatchNorm):
                if m.weight is not None:
                    m.weight.fill_(1.0)
                    m.bias.zero_()
                if m.running_mean is not None:
                    m.running_mean.zero_()
                    m.running_var.fill_(1.0)
            else:
                for p in m.parameters(recurse=False):
                    p.abs_().add_(1e-3)
    return sup


def _centre_gradients(
    model: nn.Module, from_mod: nn.Module, to_mod: nn.Module, c_in: int, size: int, channels: torch.Tensor | None,
    mix: torch.Tensor | None = None,
) -> torch.Tensor:
    """d to_out[b, c_b, centre] / d from_out[b] for each of B = len(channels) batch items -> [B, C_from, Hf, Wf].

    channels None: one item, summed over all channels (for the support), each weighted by `mix` if given. The input
    is all zeros (the linearized map is affine, so its gradient does not depend on it). Everything up to from_layer runs
    once and from_layer's output is repeated B times; if the model mixes that batch-1 prefix with the
    batch-B part in a way that fails (e.g. concatenating a skip tensor from before from_layer), the
    whole model is rerun at batch B.
    """
    batch = 1 if channels is None else len(channels)
    try:
        x = torch.zeros(1, c_in, size, size, dtype=_dtype(model), device=_device(model))
        return _centre_gradients_at(model, from_mod, to_mod, x, channels, batch, mix)
    except RuntimeError:
        if batch == 1:
            raise
    x = torch.zeros(batch, c_in, size, size, dtype=_dtype(model), device=_device(model))
    return _centre_gradients_at(model, from_mod, to_mod, x, channels, batch, mix)


def _centre_gradients_at(
    model: nn.Module, from_mod: nn.Module, to_mod: nn.Module, x: torch.Tensor, channels: torch.Tensor | None,
    batch: int, mix: torch.Tensor | None = None,
) -> torch.Tensor:
    state: dict[str, Any] = {"calls": 0}

    def from_hook(_m, _inp, out):
        state["calls"] += 1
        if state["calls"] > 1:
            raise AnalysisError(
                "expanded_weights: from_layer is called more than once per forward; pick a module used once"
            )
        if not isinstance(out, torch.Tensor) or out.dim() != 4:
            raise AnalysisError("expanded_weights: from_layer must output a [B, C, H, W] tensor")
        leaf = out.detach()
        if leaf.shape[0] != batch:
            leaf = leaf.expand(batch, *leaf.shape[1:])
        leaf = leaf.clone().requires_grad_(True)
        state["leaf"] = leaf
        return leaf.clone()  # a non-leaf copy, so later in-place ops stay legal

    def to_hook(_m, _inp, out):
        if not isinstance(out, torch.Tensor) or out.dim() != 4:
            raise AnalysisError("expanded_weights: to_layer must output a [B, C, H, W] tensor")
        state["out"] = out
        raise _Stop

    handles = [from_mod.register_forward_hook(from_hook), to_mod.register_forward_hook(to_hook)]
    try:
        with torch.enable_grad(), _Linearized():
            try:
                model(x)
            except _Stop:
                pass
    finally:
        for h in handles:
            h.remove()
    if "out" not in state:
        raise AnalysisError("expanded_weights: to_layer did not run in the forward pass")
    if "leaf" not in state:
        raise AnalysisError("expanded_weights: to_layer ran before from_layer, so it does not depend on it")
    out, leaf = state["out"], state["leaf"]
    if out.shape[0] != batch:
        raise RuntimeError("to_layer output lost the batch dimension")  # -> rerun at full batch
    hc, wc = out.shape[2] // 2, out.shape[3] // 2
    centre = out[:, :, hc, wc]
    rows = torch.arange(batch, device=centre.device)
    if channels is None:
        target = centre.sum() if mix is None else (centre * mix.to(centre)).sum()
    else:
        target = centre[rows, channels.to(centre.device)].sum()
    if not target.requires_grad:
        raise AnalysisError("expanded_weights: to_layer does not depend on from_layer (is it downstream?)")
    (grad,) = torch.autograd.grad(target, leaf, allow_unused=True)
    if grad is None:
        raise AnalysisError("expanded_weights: to_layer does not depend on from_layer (is it downstream?)")
    return grad


def _support_box(sup: nn.Module, from_mod: nn.Module, to_mod: nn.Module, c_in: int, size: int):
    """(row0, row1, col0, col1) inclusive of the non-zero region, and whether it touches the map border."""
    g = _centre_gradients(sup, from_mod, to_mod, c_in, size, None)[0].abs().sum(0)
    rows = torch.nonzero(g.sum(1) > 0).flatten()
    cols = torch.nonzero(g.sum(0) > 0).flatten()
    if len(rows) == 0:
        raise AnalysisError("expanded_weights: to_layer does not depend on from_layer (is it downstream?)")
    box = (int(rows[0]), int(rows[-1]), int(cols[0]), int(cols[-1]))
    clipped = box[0] == 0 or box[2] == 0 or box[1] == g.shape[0] - 1 or box[3] == g.shape[1] - 1
    return box, clipped


def expanded_weights(
    model: nn.Module,
    from_layer: str,
    to_layer: str,
    *,
    input_size: int | None = None,
    input_channels: int | None = None,
    chunk_size: int = 64,
    max_input_size: int = 1024,
    dtype: torch.dtype = torch.float64,
    device: str | torch.device = "cpu",
) -> np.ndarray:
    """Expanded weights from `from_layer`'s output to `to_layer`'s output: [C_to, C_from, kh, kw] in `dtype`.

    Layer names are those of model.named_modules(). The caller's model is not modified (a deep copy is
    linearized, put in eval mode and converted to `dtype`; float32 is 3-4x faster on the CPU with a relative error
    near 1e-6, below what figures show, see bench/README.md). The crop is the architectural support around
    the centre position (e.g. k_lower + (k_upper - 1) * stride_lower for two convs), found with a copy
    whose weights are all positive. With input_size None, square inputs of 16, 32, 64, ... pixels are
    tried until the support is away from the borders of from_layer's map and unchanged at twice the size;
    an explicit input_size whose support touches a border raises AnalysisError. The input has
    `input_channels` channels (default: in_channels of the model's first Conv2d). Output channels are
    batched, `chunk_size` per backward pass. The copies run on `device` (e.g. "cuda", see analysis/device.py);
    the result is always a CPU array.
    """
    plan = _plan(model, from_layer, to_layer, input_size, input_channels, max_input_size, dtype, device)
    return _expand(plan, from_layer, to_layer, chunk_size)


def expanded_weights_split(model: nn.Module, from_layer: str, to_layer: str, **kwargs: Any
                           ) -> tuple[np.ndarray, tuple[int, int] | None]:
    """(expanded_weights, identity_at) for the same arguments, sharing the linearized copy and the size search,
    which cost as much as the expansion of a small block."""
    chunk_size = kwargs.pop("chunk_size", 64)
    kwargs = {"input_size": None, "input_channels": None, "max_input_size": 1024, "dtype": torch.float64,
              "device": "cpu", **kwargs}
    plan = _plan(model, from_layer, to_layer, **kwargs)
    weight = _expand(plan, from_layer, to_layer, chunk_size)
    return weight, _identity(plan, from_layer, to_layer) if weight.shape[0] == weight.shape[1] else None


def _expand(plan: tuple, from_layer: str, to_layer: str, chunk_size: int) -> np.ndarray:
    lin, c_in, size, box = plan
    lin_mods = dict(lin.named_modules())
    r0, r1, c0, c1 = box
    from_mod, to_mod = lin_mods[from_layer], lin_mods[to_layer]
    c_to = _to_channels(lin, to_mod, c_in, size)
    parts = []
    for start in range(0, c_to, chunk_size):
        chans = torch.arange(start, min(start + chunk_size, c_to))
        g = _centre_gradients(lin, from_mod, to_mod, c_in, size, chans)
        parts.append(g[:, :, r0 : r1 + 1, c0 : c1 + 1].cpu().numpy())
    return np.concatenate(parts, axis=0)


def _plan(model: nn.Module, from_layer: str, to_layer: str, input_size: int | None, input_channels: int | None,
          max_input_size: int, dtype: torch.dtype, device: str | torch.device):
    """(linearized copy, input channels, input size, support box): what every expansion between the two layers
    starts from (see expanded_weights for the size search)."""
    modules = dict(model.named_modules())
    for name in (from_layer, to_layer):
        if name not in modules or name == "":
            some = [n for n in modules if n][:8]
            raise AnalysisError(f"expanded_weights: no layer named {name!r} in the model (e.g. {some})")
    c_in = int(input_channels) if input_channels is not None else _first_conv_channels(model)
    lin = copy.deepcopy(model).eval().to(dtype=dtype, device=device)
    for p in lin.parameters():
        p.requires_grad_(False)
    sup = _support_copy(lin)
    sup_mods = dict(sup.named_modules())

    def probe(size: int):
        return _support_box(sup, sup_mods[from_layer], sup_mods[to_layer], c_in, size)

    if input_size is not None:
        size = int(input_size)
        try:
            box, clipped = probe(size)
        except RuntimeError as exc:
            raise AnalysisError(f"expanded_weights: the model fails at input_size {size}: {exc}") from exc
        if clipped:
            raise AnalysisError(
                f"expanded_weights: input_size {size} clips the support of {from_layer} -> {to_layer}; "
                "use a larger one"
            )
    else:
        size, box, found, last, failure = 16, None, False, None, None
        while size <= max_input_size:
            try:
                cur, clipped = probe(size)
            except RuntimeError as exc:  # usually: input too small for some layer on the way
                cur, clipped, failure = None, True, exc
            if not clipped and last is not None and _box_shape(cur) == _box_shape(last[1]):
                size, box, found = last[0], last[1], True
                break
            last = None if clipped else (size, cur)
            size *= 2
        if not found:
            raise AnalysisError(
                f"expanded_weights: no input size up to {max_input_size} leaves the support of "
                f"{from_layer} -> {to_layer} unclipped" + (f" (last model error: {failure})" if failure else "")
            )
    return lin, c_in, size, box


def _dtype(model: nn.Module) -> torch.dtype:
    return next((p.dtype for p in model.parameters()), torch.float64)


def _device(model: nn.Module) -> torch.device:
    return next((p.device for p in model.parameters()), torch.device("cpu"))


def _box_shape(box: tuple[int, int, int, int]) -> tuple[int, int]:
    return box[1] - box[0], box[3] - box[2]


def _to_channels(model: nn.Module, to_mod: nn.Module, c_in: int, size: int) -> int:
    seen: dict[str, int] = {}

    def hook(_m, _inp, out):
        seen["c"] = int(out.shape[1])
        raise _Stop

    h = to_mod.register_forward_hook(hook)
    try:
        with torch.no_grad(), _Linearized():
            try:
                model(torch.zeros(1, c_in, size, size, dtype=_dtype(model), device=_device(model)))
            except _Stop:
                pass
    finally:
        h.remove()
    if "c" not in seen:
        raise AnalysisError("expanded_weights: to_layer did not run in the forward pass")
    return seen["c"]



def expanded_weights_via(model: nn.Module, from_layer: str, via: str, to_layer: str, **kwargs: Any) -> np.ndarray:
    """Expanded weights from `from_layer` to `to_layer` through `via`, a module every path passes through.

    When the part from `via` to `to_layer` is pointwise (its expanded weights are 1x1, e.g. a network's final 1x1
    convolution), the whole is that channel matrix times the expanded weights up to `via`, by the chain rule for
    the linearized model: exact, and much cheaper when `to_layer` has many more channels than `via` (backward
    passes are batched over output channels). Otherwise it is computed directly.
    """
    # A pointwise tail is light past `via`: a few large batches beat re-running the network prefix per chunk.
    tail = expanded_weights(model, via, to_layer, **{"chunk_size": 512, **kwargs})
    if tail.shape[2:] != (1, 1):
        return expanded_weights(model, from_layer, to_layer, **kwargs)
    head = expanded_weights(model, from_layer, via, **kwargs)
    return np.einsum("om,mihw->oihw", tail[:, :, 0, 0], head)


def identity_at(
    model: nn.Module,
    from_layer: str,
    to_layer: str,
    *,
    input_size: int | None = None,
    input_channels: int | None = None,
    max_input_size: int = 1024,
    dtype: torch.dtype = torch.float64,
    device: str | torch.device = "cpu",
) -> tuple[int, int] | None:
    """Where, in the kernel expanded_weights returns for the same arguments, an identity skip puts its weight:
    (y, x) when the part of the linearized map that passes through no convolution (or linear layer) is exactly
    the identity, weight 1 from each channel to itself at that one position; None otherwise (no skip, a skip
    through a projection, a scaled or permuted one).

    That part is what is left with every conv and linear weight set to zero. One backward pass reads it: the
    centre outputs are summed with distinct weights 1 + c / C, so only the identity gives each input channel its
    own weight back at a single position. Cheap next to the expansion itself (one pass instead of C_to).
    """
    plan = _plan(model, from_layer, to_layer, input_size, input_channels, max_input_size, dtype, device)
    return _identity(plan, from_layer, to_layer)


def _identity(plan: tuple, from_layer: str, to_layer: str) -> tuple[int, int] | None:
    """identity_at on a plan; zeroes the weights of the plan's linearized copy (its last use)."""
    lin, c_in, size, box = plan
    dtype = _dtype(lin)
    mods = dict(lin.named_modules())
    c_to = _to_channels(lin, mods[to_layer], c_in, size)
    with torch.no_grad():
        for m in lin.modules():
            if isinstance(m, (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.Linear)):
                m.weight.zero_()
    mix = 1.0 + torch.arange(c_to, dtype=dtype) / c_to
    try:
        g = _centre_gradients(lin, mods[from_layer], mods[to_layer], c_in, size, None, mix)[0].cpu()
    except AnalysisError:
        return None
    r0, r1, c0, c1 = box
    if g.shape[0] != c_to or not torch.isfinite(g).all():
        return None
    hit = torch.nonzero(g.abs().sum(0) > 1e-3 * c_to).tolist()
    if len(hit) != 1:
        return None
    (y, x), = hit
    if not (r0 <= y <= r1 and c0 <= x <= c1):
        return None
    rest = g.clone()
    rest[:, y, x] = 0
    tol = 1e-5 if dtype == torch.float64 else 1e-4
    if not torch.allclose(g[:, y, x], mix.to(g), rtol=tol, atol=tol) or rest.abs().max() > tol:
        return None
    return y - r0, x - c0
