"""A model from its ModelSpec: loaded once, with the facts and the content key every cache entry of it uses."""
from __future__ import annotations

import hashlib
import sys
from pathlib import Path

import numpy as np
import torch

from analysis.core import jsonio
from analysis.core.errors import AnalysisError, WeightsError
from analysis.core.spec import DEFAULT_IMAGE_SIZE, ModelSpec


def load(spec: ModelSpec, cache_dir: Path) -> tuple[torch.nn.Module, dict]:
    if spec.factory:
        model, info = _load_byo(spec)
    else:
        from analysis import models

        model = models.load(spec.name, cache_dir=cache_dir)
        info = models.describe(spec.name, cache_dir=cache_dir, model=model)
    # The model key of every cache entry: the weights, and for bring-your-own models also the factory code,
    # its kwargs and the image size, since each changes what the network computes.
    info["weights_sha256"] = info["sha256"]
    if info.get("code_sha256"):
        parts = [info["sha256"], info["code_sha256"], jsonio.dumps(spec.kwargs), str(info["input_size"])]
        info["weights_sha256"] = hashlib.sha256("|".join(parts).encode()).hexdigest()
    info["parameters"] = info.get("parameter_count")
    return model, info


def _load_byo(spec: ModelSpec) -> tuple[torch.nn.Module, dict]:
    from analysis.models.byo import load_byo
    from analysis.models.common import conv_layers, parameter_count

    if not spec.weights or not Path(spec.weights).is_file():
        raise AnalysisError(f"{spec.weights}: weights file not found", model=spec.name, field="weights")
    added = spec.search_path and spec.search_path not in sys.path
    if added:
        sys.path.insert(0, spec.search_path)  # a factory module may live next to the article
    try:
        model = load_byo(spec.factory, spec.weights, spec.kwargs, folder=spec.search_path)
    except AnalysisError as exc:  # the front-matter field at fault: the weights file, else the factory's code
        exc.field = exc.field or ("weights" if isinstance(exc, WeightsError) else "factory")
        raise
    finally:
        if added:
            sys.path.remove(spec.search_path)
    first = next((m for m in model.modules() if isinstance(m, torch.nn.Conv2d)), None)
    module = sys.modules.get(spec.factory.split(":")[0])
    code = Path(module.__file__).read_bytes() if module is not None and getattr(module, "__file__", None) else b""
    weights_sha = jsonio.sha256_file(Path(spec.weights))
    info = {"name": spec.name, "source": f"bring-your-own: {spec.factory}",
            "sha256": weights_sha, "weights": Path(spec.weights).name,
            # The model's code decides its activations (feature visualizations, dataset examples), so it is
            # part of every cache key along with the weights.
            "code_sha256": hashlib.sha256(code).hexdigest(),
            "parameter_count": parameter_count(model), "conv_layers": conv_layers(model),
            "input_channels": first.in_channels if first is not None else 3,
            "input_size": [spec.image_size or DEFAULT_IMAGE_SIZE] * 2,
            "image_size_default": spec.image_size is None}
    return model, info


def weight_of(model: torch.nn.Module, layer: str) -> np.ndarray:
    module = dict(model.named_modules()).get(layer)
    if module is None or not hasattr(module, "weight"):
        raise AnalysisError(f"model has no conv layer named {layer!r}")
    return module.weight.detach().float().numpy()


def init_weights(info: dict) -> dict[str, np.ndarray] | None:
    """Initial weights of a lab model (bands are clearest in W - W_init)."""
    path = info.get("init_weights")
    if not path or not Path(path).exists():
        return None
    from analysis.safeload import load_state_dict

    return {k: v.float().numpy() for k, v in load_state_dict(path).items()}


def ship_by_value(folder: Path) -> None:
    """A bring-your-own factory module lives next to its article, where joblib's worker processes cannot import it:
    have cloudpickle send those modules' code along with the model instead of a reference to them."""
    import cloudpickle

    folder = folder.resolve()
    for module in list(sys.modules.values()):
        path = getattr(module, "__file__", None)
        if path and Path(path).resolve().parent == folder:
            cloudpickle.register_pickle_by_value(module)
