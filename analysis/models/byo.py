"""Bring your own model: "package.module:callable" that builds the architecture, plus a state-dict file."""
from __future__ import annotations

import importlib
import os
import traceback
from typing import Any, Callable

from torch import nn

from analysis import safeload
from analysis.errors import AnalysisError


def _where(e: BaseException) -> str:
    """'file:line: ' of the user code that raised `e` (a SyntaxError's own position), or ''."""
    if isinstance(e, SyntaxError) and e.filename:
        return f"{e.filename}:{e.lineno}: " if e.lineno else f"{e.filename}: "
    frames = [f for f in traceback.extract_tb(e.__traceback__) if "importlib" not in f.filename
              and f.filename != __file__]
    return f"{frames[-1].filename}:{frames[-1].lineno}: " if frames else ""


def _user_exit(e: BaseException, factory: str, doing: str) -> AnalysisError:
    """SystemExit (sys.exit, exit(), quit()) or another BaseException from user code: a failed build, not the end
    of the process with the user's exit status (sys.exit(0) would make a CI job pass with nothing built)."""
    if isinstance(e, SystemExit):
        return AnalysisError(f"{_where(e)}model factory {factory!r} called sys.exit({e.code!r}) {doing}; a factory "
                             "must return a model or raise an exception")
    return AnalysisError(f"{_where(e)}model factory {factory!r} raised {type(e).__name__} {doing}: {e}")


def resolve_factory(factory: str) -> Callable[..., Any]:
    """Import "package.module:callable" (the callable may be dotted, e.g. "mod:Class.build")."""
    if not isinstance(factory, str) or factory.count(":") != 1 or not all(factory.split(":")):
        raise AnalysisError(f"model factory {factory!r} must look like 'package.module:callable'")
    module_name, attr_path = factory.split(":")
    try:
        obj: Any = importlib.import_module(module_name)
    except KeyboardInterrupt:
        raise
    except BaseException as e:  # ImportError, the module raising on import, or calling sys.exit() on import
        if not isinstance(e, Exception):
            raise _user_exit(e, factory, f"while importing module {module_name!r}") from None
        raise AnalysisError(f"{_where(e)}model factory {factory!r}: cannot import module {module_name!r} "
                            f"({type(e).__name__}: {e})") from e
    for part in attr_path.split("."):
        if not hasattr(obj, part):
            raise AnalysisError(f"model factory {factory!r}: module {module_name!r} has no attribute {attr_path!r}")
        obj = getattr(obj, part)
    if not callable(obj):
        raise AnalysisError(f"model factory {factory!r} is a {type(obj).__name__}, not callable")
    return obj


def load_byo(factory: str, weights: str | os.PathLike, kwargs: dict | None = None) -> nn.Module:
    """Build `factory(**kwargs)`, load `weights` (a state dict, read safely) strictly, return it in eval mode."""
    build = resolve_factory(factory)
    try:
        model = build(**(kwargs or {}))
    except KeyboardInterrupt:
        raise
    except BaseException as e:  # user code: SystemExit too (see _user_exit)
        if not isinstance(e, Exception):
            raise _user_exit(e, factory, f"when called with {kwargs or {}}") from None
        raise AnalysisError(f"{_where(e)}model factory {factory!r} raised {type(e).__name__} when called with "
                            f"{kwargs or {}}: {e}") from e
    if not isinstance(model, nn.Module):
        raise AnalysisError(f"model factory {factory!r} returned a {type(model).__name__}, not a torch.nn.Module")
    state = safeload.load_state_dict(weights)
    safeload.check_keys_and_shapes(state, {k: tuple(v.shape) for k, v in model.state_dict().items()}, weights)
    model.load_state_dict(state, strict=True)
    return model.eval()
