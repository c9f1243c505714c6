"""Residual skips, read off the traced graph: does a layer's output reach a later one unchanged, by an identity path?

After linearization (analysis/expanded.py) a ReLU-like, dropout or nn.Identity is the identity, and an addition passes
each operand through. So the expanded weights from `lower` to `upper` hold an identity term, weight 1 from each
channel to itself at the centre, exactly when one path of such nodes leads from `lower` to `upper`. That is the
skip of a MobileNetV2 stride-1 inverted residual or a ResNet block without downsample, and also of a span over
several such blocks: (I + F2)(I + F1) = I + (F1 + F2 + F2 F1). A block whose skip goes through a 1x1 conv, batch
norm or pooling (a downsample) has a *projection* skip, which is not an identity and stays in the weights.

`between` names the skip ("identity", "projection", "none"); `identity_at` (analysis.expanded) confirms it numerically.
"""
from __future__ import annotations

import operator

import torch
from torch import fx, nn

from analysis.expanded import _IDENTITY

IDENTITY, PROJECTION, NONE = "identity", "projection", "none"
# Modules that the linearized model runs as the identity (their functional forms are in expanded._IDENTITY).
_PASS_MODULES = (
    nn.Identity, nn.ReLU, nn.ReLU6, nn.LeakyReLU, nn.ELU, nn.SELU, nn.CELU, nn.GELU, nn.SiLU, nn.Hardswish,
    nn.Hardtanh, nn.Mish, nn.PReLU, nn.RReLU, nn.Softplus, nn.Dropout, nn.Dropout1d, nn.Dropout2d, nn.Dropout3d,
    nn.AlphaDropout, nn.FeatureAlphaDropout,
)  # fmt: skip
_PASS_FUNCTIONS = _IDENTITY | {"contiguous", "clone"}
_ADD_FUNCTIONS = frozenset({operator.add, operator.iadd, torch.add})


def between(gm: nn.Module, lower: str, upper: str) -> str | None:
    """The skip from module `lower`'s output to module `upper`'s output of a traced model (an fx.GraphModule whose
    graph calls both as modules, e.g. the block markers of analysis.blocks): "identity" when exactly one identity path
    joins them, "projection" when an addition on the way adds `lower` through 1x1 convs, batch norm or pooling (a
    downsample) and no identity path reaches it, "none" otherwise; None when the graph does not show both (an
    untraced model, a module inside another's call)."""
    graph = getattr(gm, "graph", None)
    if not isinstance(graph, fx.Graph):
        return None
    nodes = {n.target: n for n in graph.nodes if n.op == "call_module"}
    if lower not in nodes or upper not in nodes:
        return None
    modules = dict(gm.named_modules())
    paths, additions = _identity_paths(nodes[upper], nodes[lower], modules)
    if paths == 1:
        return IDENTITY
    if paths == 0 and any(_projects(a, nodes[lower], modules) for add in additions for a in add.all_input_nodes):
        return PROJECTION
    return NONE


def _identity_paths(start: fx.Node, target: fx.Node, modules: dict[str, nn.Module]) -> tuple[int, list[fx.Node]]:
    """(number of identity paths from `target` to `start`, the additions the walk back from `start` met)."""
    memo: dict[fx.Node, int] = {}
    additions: list[fx.Node] = []

    def count(node: fx.Node) -> int:
        if node is target:
            return 1
        if node in memo:
            return memo[node]
        memo[node] = 0  # a graph has no cycles; this only guards the recursion
        if _is_add(node):
            additions.append(node)
            memo[node] = sum(count(a) for a in node.all_input_nodes)
        elif _passes(node, modules) and node.all_input_nodes:
            memo[node] = count(node.all_input_nodes[0])
        return memo[node]

    return count(start), additions


def _projects(node: fx.Node, target: fx.Node, modules: dict[str, nn.Module], limit: int = 32) -> bool:
    """`node` is `target` transformed without looking at space: a chain of one-input nodes (1x1 convs, batch norm,
    pooling, activations) back to it, as a downsample is; a residual branch has a kxk conv on the way."""
    for _ in range(limit):
        if node is target:
            return True
        if len(node.all_input_nodes) != 1:
            return False
        mod = modules.get(node.target) if node.op == "call_module" else None
        if isinstance(mod, nn.Conv2d) and tuple(mod.kernel_size) != (1, 1):
            return False
        node = node.all_input_nodes[0]
    return False


def _is_add(node: fx.Node) -> bool:
    if node.op == "call_function" and node.target in _ADD_FUNCTIONS:
        return node.kwargs.get("alpha", 1) == 1
    return node.op == "call_method" and node.target in ("add", "add_") and node.kwargs.get("alpha", 1) == 1


def _passes(node: fx.Node, modules: dict[str, nn.Module]) -> bool:
    """A node the linearized model runs as the identity on its first tensor input."""
    if node.op == "call_module":
        return isinstance(modules.get(node.target), _PASS_MODULES)
    if node.op in ("call_function", "call_method"):
        return getattr(node.target, "__name__", node.target) in _PASS_FUNCTIONS
    return False
