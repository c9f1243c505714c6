"""A conv net's blocks, read off its computation graph (torch.fx), for block-level expanded weights.

A *block boundary* is a cut point of the graph: a tensor that every path from the input to the output passes
through (the sum after a residual addition, the concatenation after inception branches, a plain chain's
activation). Consecutive boundaries are merged until a block both sees space and mixes channels after it (a
kxk conv with several input channels, or a depthwise conv followed by a 1x1), then extended over trailing
batch norms and activations. So a ResNet basic block, an inverted residual (1x1 -> depthwise -> 1x1, with or
without its skip), an inception module and a depthwise-separable pair each become one block, and a trailing
1x1 head conv joins the block before it instead of standing alone: a 1x1 or depthwise kernel is never
analysed as if it were a spatial weight.

Real code reads shapes (`bs = x.size(0)` at the top of forward, `view(bs, -1)` at its end): edges that carry only a
shape are not data paths, so they never hide a cut. And a package's own unit of repetition (each `_blocks.N`,
`layerK.M`, `inception4d`: see `_units`) is never cut inside; where one cannot end a block, the node whose edge jumps
over its end is named in one line (`BlockGraph.note`).

The analyses hook module outputs, but a boundary is often a function (`x + y`, `torch.cat`): `find_blocks`
returns a *probed* copy of the model (an fx.GraphModule sharing the original's parameters and module names)
with one `nn.Identity` inserted at each boundary. Where tracing fails (data-dependent control flow), the blocks
come from module registration order instead and the reason is reported in one line.
"""
from __future__ import annotations

import dataclasses
import operator
from dataclasses import dataclass, field

import torch
from torch import fx, nn

from analysis import skips
from analysis.core.errors import AnalysisError

MARKER = "vw_block_{}"
INPUT_MARKER = "vw_input"

# Ops that belong to the block before them: normalization, activations, dropout.
_TRAILING_MODULES = (
    nn.modules.batchnorm._BatchNorm, nn.ReLU, nn.ReLU6, nn.LeakyReLU, nn.ELU, nn.SELU, nn.CELU, nn.GELU, nn.SiLU,
    nn.Hardswish, nn.Hardtanh, nn.Mish, nn.PReLU, nn.Softplus, nn.Dropout, nn.Dropout2d, nn.Identity,
)  # fmt: skip
_TRAILING_FUNCTIONS = frozenset({
    "relu", "relu_", "relu6", "hardtanh", "hardtanh_", "leaky_relu", "gelu", "silu", "hardswish", "mish", "elu",
    "selu", "dropout", "batch_norm", "contiguous",
})  # fmt: skip
_ADD = frozenset({operator.add, operator.iadd, torch.add})
_CAT = frozenset({torch.cat, torch.concat})


@dataclass(frozen=True)
class Block:
    name: str  # a module name covering exactly this block's convs (e.g. "features.3"), or "a+b" when merged
    output: str  # module of the probed model whose output is the block's output
    convs: tuple[str, ...]  # every Conv2d of the block, in forward order
    kind: str  # "inverted residual", "bottleneck", "residual", "concatenation", "separable", "conv", "convs"
    inner: str | None = None  # a merged block: the module whose output is where its trailing 1x1 convs begin
    # "identity": the output adds the block's input unchanged (a residual skip); "projection": its addition's other
    # operand goes through a conv (a downsample); "none": no addition (analysis.skips)
    skip: str = "none"


@dataclass
class BlockGraph:
    model: nn.Module  # the probed model: analyses hook `Block.output` here
    blocks: list[Block]
    input: str | None = None  # module whose output is the network input (for the first block's expansion)
    traced: bool = True
    note: str = ""  # why tracing was not used, if it was not
    hooks: dict[str, str] = field(default_factory=dict)  # block name -> Block.output
    feeds: dict[str, str] = field(default_factory=dict)  # conv -> the conv or block whose output it reads
    source: nn.Module | None = None  # the model it was derived from
    causes: list[str] = field(default_factory=list)  # every repeated unit that ends inside a block, and why

    def __reduce__(self):
        # A GraphModule does not survive cloudpickle (joblib workers): send the model, re-derive there.
        return (find_blocks, (self.source,))

    def hook(self, name: str) -> str:
        """The module to hook for `name`: a block's boundary marker, the input marker, or a module name as is."""
        return self.hooks.get(name, name)


class _Tracer(fx.Tracer):
    """Every Conv2d (subclasses too, e.g. TF-style 'same' padding) and batch norm stays one call_module node."""

    def is_leaf_module(self, m: nn.Module, qualname: str) -> bool:
        return isinstance(m, (nn.Conv2d, nn.modules.batchnorm._BatchNorm)) or super().is_leaf_module(m, qualname)


class BlocksError(AnalysisError):
    """Finding the blocks failed after the model was traced: a fault of this module or an unforeseen graph, never
    the author's recipe or the analyses after it (the cause stays chained for --debug)."""


def find_blocks(model: nn.Module) -> BlockGraph:
    """The blocks of `model` in forward order with a probed model to hook them (see the module docstring)."""
    try:  # GraphModule compiles code from the module names: a name with a '"' is a SyntaxError there
        graph = _Tracer().trace(model)
        gm = fx.GraphModule(model, graph)
    except Exception as exc:  # noqa: BLE001 - any tracing failure means: fall back, and say why
        first = " ".join(str(exc).split())[:160]
        return _blocks_by_module_order(model, f"torch.fx could not trace the model ({type(exc).__name__}: "
                                              f"{first}); blocks follow module order")
    try:
        return _from_graph(model, gm)
    except Exception as exc:
        raise BlocksError(f"blocks: finding the network's blocks in its torch.fx graph failed: "
                          f"{type(exc).__name__}: {' '.join(str(exc).split())[:200]} (--debug shows where)") from exc


def _from_graph(model: nn.Module, gm: fx.GraphModule) -> BlockGraph:
    modules = dict(gm.named_modules())
    nodes = _relevant_nodes(gm.graph)
    convs = {n: modules[n.target] for n in nodes if n.op == "call_module" and isinstance(modules[n.target], nn.Conv2d)}
    if not convs:
        return BlockGraph(model=model, blocks=[], traced=True, source=model)
    cuts = _cut_points(nodes)
    spans = _unit_spans(nodes, _units(model))
    notes = _uncut_units(nodes, cuts, spans)
    groups = _group(nodes, convs, _outside_units(nodes, cuts, spans), modules)
    blocks, hooks = [], {}
    for i, (boundary, members, inner) in enumerate(groups):
        marker = MARKER.format(i)
        _insert_marker(gm, boundary, marker)
        if inner is not None:
            _insert_marker(gm, inner, marker + "_inner")
        conv_names = tuple(n.target for n in members if n in convs)
        blocks.append(Block(name="", output=marker, convs=conv_names, kind=_kind(members, convs),
                            inner=marker + "_inner" if inner is not None else None))
    names = _names([b.convs for b in blocks], model)
    blocks = [dataclasses.replace(b, name=n) for n, b in zip(names, blocks)]
    placeholder = next(n for n in gm.graph.nodes if n.op == "placeholder")
    _insert_marker(gm, placeholder, INPUT_MARKER)
    gm.recompile()
    starts = [INPUT_MARKER] + [b.output for b in blocks]
    blocks = [dataclasses.replace(b, skip=skips.between(gm, start, b.output) or "none")
              for start, b in zip(starts, blocks)]
    hooks = {b.name: b.output for b in blocks} | {"input": INPUT_MARKER}
    return BlockGraph(model=gm.eval(), blocks=blocks, input=INPUT_MARKER, hooks=hooks,
                      feeds=_feeds(gm, {v: k for k, v in hooks.items()}), source=model, note=_summary(notes),
                      causes=notes)


def _feeds(gm: fx.GraphModule, named_markers: dict[str, str]) -> dict[str, str]:
    """For each conv, the nearest conv or block output upstream of it through single-input ops (pooling,
    activations, normalization), so a figure can show what its input channels are."""
    modules = dict(gm.named_modules())
    out = {}
    for node in gm.graph.nodes:
        if node.op != "call_module" or not isinstance(modules[node.target], nn.Conv2d):
            continue
        cur = node.all_input_nodes[0] if node.all_input_nodes else None
        while cur is not None:
            if cur.op == "call_module" and cur.target in named_markers:
                out.setdefault(node.target, named_markers[cur.target])  # a conv called twice: its first use
                break
            if cur.op == "call_module" and isinstance(modules[cur.target], nn.Conv2d):
                out.setdefault(node.target, cur.target)
                break
            if len(cur.all_input_nodes) != 1 or cur.op not in ("call_module", "call_function", "call_method"):
                break
            cur = cur.all_input_nodes[0]
    return out


# Nodes that read only a tensor's shape (or make a tensor from it): their values never carry the image, so an edge
# from them (`bs = x.size(0)` at the top of forward, used by `view(bs, -1)` at the end) is not a data path.
_SHAPE_METHODS = frozenset({"size", "dim", "ndimension", "numel", "nelement", "new_zeros", "new_ones", "new_empty",
                            "new_full"})
_SHAPE_ATTRIBUTES = frozenset({"shape", "ndim", "dtype", "device", "layout", "is_cuda"})
_SHAPE_FUNCTIONS = frozenset({torch.zeros_like, torch.ones_like, torch.empty_like, torch.full_like, torch.numel})


def _reads_shape_only(node: fx.Node) -> bool:
    if node.op == "call_method":
        return node.target in _SHAPE_METHODS
    if node.op == "call_function" and node.target is getattr:
        return len(node.args) > 1 and node.args[1] in _SHAPE_ATTRIBUTES
    return node.op == "call_function" and node.target in _SHAPE_FUNCTIONS


def _relevant_nodes(graph: fx.Graph) -> list[fx.Node]:
    """Nodes on a data path from the input to the output, in topological (graph) order. Constants drop out, and so
    does everything computed only from shapes (`x.size(0)`, `x.shape[2] // 2`, `torch.zeros_like(x)`)."""
    order = list(graph.nodes)
    forward: set[fx.Node] = set()
    for n in order:
        if n.op == "placeholder" and not forward:
            forward.add(n)  # the image; other placeholders are options
        elif not _reads_shape_only(n) and any(a in forward for a in n.all_input_nodes):
            forward.add(n)
    backward: set[fx.Node] = set()
    for n in reversed(order):
        if n in forward and (n.op == "output" or any(u in backward for u in n.users)):
            backward.add(n)
    return [n for n in order if n in backward]


def _cut_points(nodes: list[fx.Node]) -> set[fx.Node]:
    """Nodes that no edge jumps over: every input-to-output path passes through them."""
    pos = {n: i for i, n in enumerate(nodes)}
    cuts, reach = set(), -1
    for i, n in enumerate(nodes):
        if reach <= i:
            cuts.add(n)
        # The output node joins everything the model returns: an extra returned tensor (features beside logits)
        # must not hide the cut points before it.
        reach = max([reach] + [pos[u] for u in n.users if u in pos and u.op != "output"])
    return cuts


def _units(model: nn.Module) -> set[str]:
    """The innermost repeated units a package defines as modules (`_blocks.3`, `layer2.1`, `features.4`,
    `inception4d`): a module with its own forward (not a Sequential) holding two or more convs, whose class occurs
    more than once in the model, and no instance of whose class holds a repetition of such units itself (a stage
    of blocks is not a unit; a block holding one squeeze-excite module is)."""
    named = list(model.named_modules())
    counts: dict[type, int] = {}
    for _, m in named:
        counts[type(m)] = counts.get(type(m), 0) + 1

    def candidate(name: str, m: nn.Module) -> bool:
        forward = getattr(type(m), "forward", None)
        own = forward not in (nn.Sequential.forward, nn.Module.forward) and not type(m).__module__.startswith("torch.")
        return bool(name) and own and counts[type(m)] > 1 and sum(isinstance(c, nn.Conv2d) for c in m.modules()) > 1

    candidates = {n: m for n, m in named if candidate(n, m)}
    repeats_inside: set[type] = set()
    for name, m in candidates.items():
        inner = [type(c) for n, c in candidates.items() if n.startswith(name + ".")]
        if any(inner.count(t) > 1 for t in inner):
            repeats_inside.add(type(m))
    return {n for n, m in candidates.items() if type(m) not in repeats_inside}


def _unit_spans(nodes: list[fx.Node], units: set[str]) -> dict[str, tuple[int, int]]:
    """Each call of a unit -> (position of its first node, of its last) among `nodes` (torch.fx records the module
    stack of every node it traces; a second call of one module is its own span, keyed `name@1`)."""
    spans: dict[str, tuple[int, int]] = {}
    for i, n in enumerate(nodes):
        for key, value in (n.meta.get("nn_module_stack") or {}).items():
            path = value[0] if isinstance(value, tuple) else key.split("@")[0]
            if path in units:
                first, _ = spans.get(key, (i, i))
                spans[key] = (first, i)
    return spans


def _outside_units(nodes: list[fx.Node], cuts: set[fx.Node], spans: dict[str, tuple[int, int]]) -> set[fx.Node]:
    """The cut points that are not strictly inside a unit: a unit is never split between blocks."""
    inside = {i for first, last in spans.values() for i in range(first, last)}
    return {n for i, n in enumerate(nodes) if n in cuts and i not in inside}


def _uncut_units(nodes: list[fx.Node], cuts: set[fx.Node], spans: dict[str, tuple[int, int]]) -> list[str]:
    """Why a unit does not end a block: the edge that jumps over its end (a dense connection, or an edge that is not
    a data path but was not recognised as shape-only), one line per unit."""
    pos = {n: i for i, n in enumerate(nodes)}
    out = []
    for key, (first, last) in sorted(spans.items(), key=lambda kv: kv[1]):
        if nodes[last] in cuts:
            continue
        jumps = [(p, u) for p in nodes[:last] for u in p.users if u in pos and pos[u] > last and u.op != "output"]
        if not jumps:
            continue
        p, u = min(jumps, key=lambda e: (pos[e[0]], -pos[e[1]]))
        out.append(f"unit {key} does not end a block: node {_describe(p)} is used after it by {_describe(u)}")
    return out


def _describe(node: fx.Node) -> str:
    target = node.target if isinstance(node.target, str) else getattr(node.target, "__name__", str(node.target))
    return f"'{node.name}' ({node.op} {target})"


def _summary(causes: list[str]) -> str:
    if not causes:
        return ""
    more = f" (and {len(causes) - 1} more unit(s) like it; --debug lists them)" if len(causes) > 1 else ""
    return f"blocks: {causes[0]}{more}"


def _is_trailing(node: fx.Node, modules: dict[str, nn.Module]) -> bool:
    if node.op == "call_module":
        return isinstance(modules[node.target], _TRAILING_MODULES)
    if node.op in ("call_function", "call_method"):
        return getattr(node.target, "__name__", node.target) in _TRAILING_FUNCTIONS
    return False


def _spatial(conv: nn.Conv2d) -> bool:
    return tuple(conv.kernel_size) != (1, 1)


def _mixes(conv: nn.Conv2d) -> bool:
    """Combines its input channels (a gray image's single channel counts; a depthwise conv does not)."""
    return conv.groups == 1 or conv.in_channels // conv.groups > 1


def _complete(members: list[fx.Node], convs: dict[fx.Node, nn.Conv2d]) -> bool:
    """The block sees space (a kxk conv) and mixes channels at or after it."""
    seen_space = False
    for n in members:
        c = convs.get(n)
        if c is None:
            continue
        seen_space = seen_space or _spatial(c)
        if seen_space and _mixes(c):
            return True
    return False


def _group(nodes, convs, cuts, modules) -> list[tuple[fx.Node, list[fx.Node], fx.Node | None]]:
    """(boundary node, member nodes, inner boundary of a merged block or None) per block, in order."""
    groups: list[tuple[fx.Node, list[fx.Node]]] = []
    members: list[fx.Node] = []
    last_conv = max(i for i, n in enumerate(nodes) if n in convs)
    for i, n in enumerate(nodes):
        if n.op in ("placeholder", "output"):
            continue
        members.append(n)
        nxt = nodes[i + 1] if i + 1 < len(nodes) else None
        if n not in cuts or not any(m in convs for m in members):
            continue
        at_end = i >= last_conv and (nxt is None or not _is_trailing(nxt, modules))
        if at_end and not _complete(members, convs) and groups:
            # A trailing 1x1 (a head conv) joins the block before it.
            boundary, before, _ = groups.pop()
            groups.append((n, before + members, boundary))
            members = []
            break
        if _complete(members, convs) and (nxt is None or not _is_trailing(nxt, modules)):
            groups.append((n, members, None))
            members = []
            if i >= last_conv:
                break
    else:
        if any(m in convs for m in members):  # only pointwise/depthwise convs and nothing before: keep them
            last = next((m for m in reversed(members) if m in cuts), members[-1])
            groups.append((last, members, None))
    return groups


def _insert_marker(gm: fx.GraphModule, node: fx.Node, target: str) -> None:
    gm.add_submodule(target, nn.Identity())
    with gm.graph.inserting_after(node):
        marker = gm.graph.call_module(target, (node,))
    node.replace_all_uses_with(marker, delete_user_cb=lambda user: user is not marker)


def _kind(members: list[fx.Node], convs: dict[fx.Node, nn.Conv2d]) -> str:
    layers = [convs[n] for n in members if n in convs]
    has_add = any(n.target in _ADD or n.target in ("add", "add_") for n in members
                  if n.op in ("call_function", "call_method") and len(n.all_input_nodes) == 2)
    if any(n.op == "call_function" and n.target in _CAT for n in members):
        return "concatenation"
    depthwise = [i for i, c in enumerate(layers) if c.groups == c.in_channels and c.groups > 1]
    if depthwise:
        d = depthwise[0]
        before = any(not _spatial(c) for c in layers[:d])
        return "inverted residual" if before else "separable"
    if has_add:
        spatial = [c for c in layers if _spatial(c)]
        return "bottleneck" if len(spatial) == 1 and not _spatial(layers[0]) else "residual"
    return "conv" if len(layers) == 1 else "convs"


def _names(groups: list[tuple[str, ...]], model: nn.Module) -> list[str]:
    """Each block's name: the largest module holding its convs and no other block's; merged blocks join theirs."""
    owner = {c: i for i, convs in enumerate(groups) for c in convs}
    all_convs = [n for n, m in model.named_modules() if isinstance(m, nn.Conv2d)]

    def covering(convs: tuple[str, ...]) -> list[str]:
        # Split into runs whose names share a module that holds no other block's convs.
        out: list[str] = []
        for c in convs:
            name = c
            parts = c.split(".")
            for k in range(len(parts) - 1, 0, -1):
                prefix = ".".join(parts[:k])
                inside = [x for x in all_convs if x.startswith(prefix + ".")]
                if any(x not in convs or owner.get(x) != owner[c] for x in inside):
                    break
                name = prefix
            if name not in out:
                out.append(name)
        return out

    names, seen = [], {"input"}  # "input" names the network input in recipes
    for convs in groups:
        parts = covering(convs)
        name = "+".join(parts) if len(parts) <= 3 else f"{parts[0]}+...+{parts[-1]}"
        while name in seen:
            name += "'"
        seen.add(name)
        names.append(name)
    return names


def _blocks_by_module_order(model: nn.Module, note: str) -> BlockGraph:
    """Fallback: treat the leaf modules as a chain in registration order."""
    leaves = [(n, m) for n, m in model.named_modules() if n and not list(m.children())]
    blocks, members, convs = [], [], []
    for i, (name, m) in enumerate(leaves):
        members.append((name, m))
        if isinstance(m, nn.Conv2d):
            convs.append((name, m))
        nxt = leaves[i + 1][1] if i + 1 < len(leaves) else None
        done = any(_spatial(c) for _, c in convs) and any(_mixes(c) for _, c in convs)
        if convs and done and not isinstance(nxt, _TRAILING_MODULES):
            blocks.append((name, tuple(n for n, _ in convs), [c for _, c in convs]))
            members, convs = [], []
    if convs and blocks:  # trailing 1x1 convs join the last block
        _, names, layers = blocks.pop()
        last = next(n for n, m in reversed(members) if isinstance(m, _TRAILING_MODULES + (nn.Conv2d,)))
        blocks.append((last, names + tuple(n for n, _ in convs), layers))
    labels = _names([b[1] for b in blocks], model)
    result = [Block(name=label, output=out, convs=names, kind="conv" if len(names) == 1 else "convs")
              for label, (out, names, _) in zip(labels, blocks)]
    conv_names = [n for n, m in leaves if isinstance(m, nn.Conv2d)]
    return BlockGraph(model=model, blocks=result, input=None, traced=False, note=note,
                      hooks={b.name: b.output for b in result}, feeds=dict(zip(conv_names[1:], conv_names)),
                      source=model)
