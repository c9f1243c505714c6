"""Which tensors of a model the analyses look at: a *recipe*, derived from the network's blocks.

A recipe names weight tensors (a conv's own kernel, or the expanded weights between two block outputs) and
the neuron pairs that get feature visualizations and dataset examples. `auto_recipe` derives one for any
PyTorch conv net from its graph (analysis.blocks): every block's expanded weights from the previous block's
output, plus every conv whose own kernel is spatial with more than one input channel. An author can replace any
part through a `RecipeSpec` (the `recipe:` field of a model in front matter); names are those of
`model.named_modules()`, or block names such as "features.3".
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from torch import nn

from analysis.blocks import BlockGraph, find_blocks
from analysis.core.errors import AnalysisError


@dataclass(frozen=True)
class TensorJob:
    """One [out, in, h, w] tensor to analyse: a conv weight (`layer`), or expanded weights (`source`..`layer`)."""

    layer: str  # conv module name, or the upper block/module of an expanded weight
    source: str | None = None  # lower block/module for expanded weights; None for a conv's own weight
    label: str = ""  # short human name shown in the article
    kind: str = "kernel"  # "kernel" (a conv's own), "block" (one block from the one before), "span" (any other)
    via: str | None = None  # hook inside `layer`'s block where its trailing 1x1 convs begin (a cheaper, exact path)

    @property
    def id(self) -> str:
        return self.layer if self.source is None else f"{self.source}->{self.layer}"


@dataclass(frozen=True)
class ContextJob:
    """A neuron-pair figure: outputs of `upper` and inputs in `lower` joined by the weights of `tensor`."""

    tensor: str  # TensorJob.id
    lower: str  # block/module whose output channels are the tensor's inputs
    upper: str  # block/module whose output channels are the tensor's outputs
    n_out: int = 8
    n_in: int = 8
    n_directions: int = 3  # output neurons shown in the spatial-position view
    neurons: tuple[int, ...] = ()  # output neurons chosen by the author (default: the strongest)
    read: tuple[int, ...] = ()  # output neurons given a worked reading (analysis.reading); default: the strongest
    n_read: int = 1  # how many of the strongest outputs are read when `read` is not given
    read_inputs: int = 6  # strongest inputs shown per reading


@dataclass(frozen=True)
class RecipeSpec:
    """An author's choices; None means: derive it from the graph."""

    layers: tuple[str, ...] | None = None  # convs whose own kernel is analysed
    expansions: tuple[tuple[str, str], ...] | None = None  # (from, to); ("blocks", "") = every block
    context: tuple[dict, ...] | None = None  # {weights, outputs, inputs, neurons, directions}
    first_layer: str | None = None
    featureviz: dict | None = None  # {size, steps} for this model's feature visualizations

    @classmethod
    def from_json(cls, d: dict | None) -> "RecipeSpec":
        d = dict(d or {})
        exp = d.get("expansions")
        return cls(layers=tuple(d["layers"]) if d.get("layers") is not None else None,
                   expansions=tuple(parse_expansion(e) for e in exp) if exp is not None else None,
                   context=tuple(d["context"]) if d.get("context") is not None else None,
                   first_layer=d.get("first_layer"), featureviz=d.get("featureviz"))


def parse_expansion(text: str) -> tuple[str, str]:
    """"a -> b" -> ("a", "b"); "blocks" -> ("blocks", "")."""
    if text.strip() == "blocks":
        return ("blocks", "")
    parts = [p.strip() for p in text.split("->")]
    if len(parts) != 2 or not all(parts):
        raise ValueError(f"expansion {text!r} must look like 'lower -> upper' (or be 'blocks')")
    return parts[0], parts[1]


@dataclass
class Recipe:
    tensors: list[TensorJob]
    first_layer: str | None
    context: list[ContextJob] = field(default_factory=list)
    image_size: int = 224
    photo_size: int | None = None  # photos are resized to this shorter side for dataset examples
    graph: BlockGraph | None = None  # blocks and the probed model the analyses hook
    featureviz: dict | None = None  # overrides the site's feature-visualization quality for this model
    notes: list[str] = field(default_factory=list)

    def network(self, model: nn.Module) -> nn.Module:
        """The module analyses run on: the probed copy when block outputs are hooked."""
        return self.graph.model if self.graph is not None else model

    def hook(self, name: str) -> str:
        return self.graph.hook(name) if self.graph is not None else name

    def blocks_json(self) -> list[dict[str, Any]]:
        if self.graph is None:
            return []
        return [{"name": b.name, "kind": b.kind, "convs": list(b.convs)} for b in self.graph.blocks]


def _convs(model: nn.Module) -> dict[str, nn.Conv2d]:
    return {n: m for n, m in model.named_modules() if isinstance(m, nn.Conv2d)}


# check()'s first word of `what` -> the recipe field an author wrote it in
_FIELD = {"layer": "layers", "expansion": "expansions", "context": "context", "first_layer": "first_layer"}


def own_kernel(conv: nn.Conv2d) -> bool:
    """A kernel worth showing alone: spatial, with more than one input channel per output."""
    return tuple(conv.kernel_size) != (1, 1) and conv.in_channels // conv.groups > 1


def _first_layer(convs: dict[str, nn.Conv2d]) -> str | None:
    first = next(iter(convs), None)
    return first if first is not None and convs[first].in_channels in (1, 3) and convs[first].groups == 1 else None


def auto_recipe(model: nn.Module, image_size: int, spec: RecipeSpec | None = None,
                featured: dict | None = None) -> Recipe:
    """The recipe for any conv net; `featured` (a model family's defaults) and `spec` (an author's) override it."""
    spec = spec or RecipeSpec()
    featured = featured or {}
    graph = find_blocks(model)
    convs = _convs(model)
    notes = [graph.note] if graph.note else []
    names = {b.name for b in graph.blocks} | set(convs) | ({"input"} if graph.input else set())

    def check(name: str, what: str) -> str:
        if name not in names and name not in dict(model.named_modules()):
            blocks = [b.name for b in graph.blocks]
            shown = ", ".join(blocks) if len(blocks) <= 12 else ", ".join(blocks[:6] + ["..."] + blocks[-3:])
            raise AnalysisError(f"recipe: {what} {name!r} is neither a block nor a module of the model "
                                f"({len(blocks)} blocks: {shown})", field=_FIELD[what.split()[0]])
        return name

    if spec.layers is not None:
        layers = [check(n, "layer") for n in spec.layers]
        for n in layers:
            if n not in convs:
                raise AnalysisError(f"recipe: layer {n!r} is not a Conv2d (own kernels only; use expansions for blocks)",
                                    field="layers")
            if not own_kernel(convs[n]):
                raise AnalysisError(f"recipe: layer {n!r} is a 1x1 or depthwise kernel, which says nothing about "
                                    "space alone; name its block in expansions instead", field="layers")
    else:
        layers = [n for n, c in convs.items() if own_kernel(c)]

    pairs: list[tuple[str, str]] = []
    wanted = spec.expansions if spec.expansions is not None else (("blocks", ""), *map(
        parse_expansion, featured.get("expansions", ())))
    for lower, upper in wanted:
        if lower == "blocks":
            pairs += _block_pairs(graph)
        else:
            pairs.append((check(lower, "expansion source"), check(upper, "expansion target")))
    pairs = list(dict.fromkeys(pairs))
    tensors = [TensorJob(n, label=n) for n in layers]
    tensors += [TensorJob(upper, source=lower, label=_pair_label(graph, lower, upper),
                          kind="block" if _adjacent(graph, lower, upper) else "span", via=_via(graph, lower, upper))
                for lower, upper in pairs]
    if not tensors:
        raise AnalysisError("recipe: nothing to analyse (no spatial conv and no block of several convs)")

    context_specs = spec.context if spec.context is not None else tuple(featured.get("context", ()))
    if spec.context is None and not context_specs:
        context = _default_context(tensors, graph)
    else:
        context = [_context_job(c, tensors, graph, check) for c in context_specs]
    first = check(spec.first_layer, "first_layer") if spec.first_layer else _first_layer(convs)
    return Recipe(tensors=tensors, first_layer=first, context=context, image_size=image_size,
                  photo_size=max(4 * image_size, 96) if image_size < 96 else image_size, graph=graph,
                  featureviz=spec.featureviz, notes=notes)


def _block_pairs(graph: BlockGraph) -> list[tuple[str, str]]:
    """Every block of several convs, from the previous block's output (the network input for the first)."""
    pairs, prev = [], graph.input and "input"
    for b in graph.blocks:
        if len(b.convs) > 1 and prev:
            pairs.append((prev, b.name))
        prev = b.name
    return pairs


def _via(graph: BlockGraph, lower: str, upper: str) -> str | None:
    """The inner boundary of a merged `upper` block, when `lower` is a block boundary (or the input) before it."""
    order = ["input"] + [b.name for b in graph.blocks]
    block = next((b for b in graph.blocks if b.name == upper), None)
    if block is None or block.inner is None or lower not in order or order.index(lower) >= order.index(upper):
        return None
    return block.inner


def _adjacent(graph: BlockGraph, lower: str, upper: str) -> bool:
    order = ["input"] + [b.name for b in graph.blocks]
    return lower in order and upper in order and order.index(upper) - order.index(lower) == 1


def _pair_label(graph: BlockGraph, lower: str, upper: str) -> str:
    kinds = {b.name: b.kind for b in graph.blocks}
    if _adjacent(graph, lower, upper):
        return f"{upper} ({kinds[upper]})"
    return f"{lower} \u2192 {upper}"


def _default_context(tensors: list[TensorJob], graph: BlockGraph) -> list[ContextJob]:
    """One pair: a block expansion a third of the way up (small maps, cheap feature visualizations), else the
    last own kernel, with the module that feeds it."""
    expansions = [t for t in tensors if t.source and t.source != "input"]
    if expansions:
        t = expansions[len(expansions) // 3]
        return [ContextJob(tensor=t.id, lower=t.source, upper=t.layer, n_directions=2)]
    own = [t for t in tensors if t.source is None]
    if len(own) < 2:
        return []
    return [ContextJob(tensor=own[-1].id, lower=graph.feeds.get(own[-1].layer, own[-2].layer), upper=own[-1].layer)]


def _context_job(c: dict, tensors: list[TensorJob], graph: BlockGraph, check) -> ContextJob:
    weights = str(c["weights"])
    if "->" in weights:
        lower, upper = parse_expansion(weights)
        lower, upper = check(lower, "context source"), check(upper, "context target")
        tid = f"{lower}->{upper}"
    else:
        upper = check(weights, "context layer")
        lower, tid = graph.feeds.get(upper), upper
        if lower is None:
            raise AnalysisError(f"recipe: cannot tell which module feeds {upper!r}; write 'lower -> {upper}'",
                                field="context")
    if not any(t.id == tid for t in tensors):
        raise AnalysisError(f"recipe: context weights {weights!r} are not among the analysed tensors "
                            "(add them to layers or expansions)", field="context")
    return ContextJob(tensor=tid, lower=lower, upper=upper, n_out=int(c.get("outputs", 8)),
                      n_in=int(c.get("inputs", 8)), n_directions=int(c.get("directions", 2)),
                      neurons=tuple(int(n) for n in c.get("neurons", ())),
                      read=tuple(int(n) for n in c.get("read", ())), read_inputs=int(c.get("read_inputs", 6)))


def lab_recipe(model: nn.Module) -> Recipe:
    """The banding lab: six plain convs; the last two carry the experiment."""
    convs = list(_convs(model))
    return Recipe(
        tensors=[TensorJob(n, label=n) for n in convs],
        first_layer=convs[0],
        context=[ContextJob(tensor=convs[-1], lower=convs[-2], upper=convs[-1])],
        image_size=32,
        photo_size=128,
    )


def recipe_for(name: str, model: nn.Module, image_size: int | None = None, spec: RecipeSpec | None = None) -> Recipe:
    """The recipe of model `name`: its family's own (analysis.models.registry), else the automatic one with the
    family's featured defaults; `spec`, an author's choices, overrides parts of the automatic one."""
    from analysis.models import registry

    fam = registry.family_of(name)
    size = image_size or (fam.image_size if fam else 224)
    if fam is not None and fam.recipe is not None:
        return globals()[fam.recipe](model)
    return auto_recipe(model, size, spec, fam.featured if fam else None)
