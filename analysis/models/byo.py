"""Bring your own model: "package.module:callable" that builds the architecture, plus a state-dict file."""
from __future__ import annotations

import importlib
import os
import sys
import traceback
import types
from pathlib import Path
from typing import Any, Callable

from torch import nn

from analysis import safeload
from analysis.core import deadline
from analysis.core.errors import AnalysisError
from analysis.core.factories import is_system_module, local_module_file, split_factory


def _short(value: Any, limit: int = 200) -> str:
    """An author's value in a message, cut to ``limit`` characters (a 3 MB string made a 3 MB error line)."""
    text = repr(value)
    return text if len(text) <= limit else f"{text[:limit]}... ({len(text)} characters)"


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


MODEL_TIMEOUT_ENV, FACTORY_TIMEOUT_ENV = "VW_MODEL_TIMEOUT", "VW_FACTORY_TIMEOUT"  # the second: its older name


def model_timeout() -> float:
    """Seconds that importing and calling a factory, and each call of the model's forward(), may take
    ($VW_MODEL_TIMEOUT, or $VW_FACTORY_TIMEOUT; default 600; 0: no limit)."""
    name = MODEL_TIMEOUT_ENV if os.environ.get(MODEL_TIMEOUT_ENV) else FACTORY_TIMEOUT_ENV
    try:
        seconds = float(os.environ.get(name) or 600)
    except ValueError:
        raise AnalysisError(f"environment variable {name} must be a number of seconds") from None
    if seconds < 0:
        raise AnalysisError(f"environment variable {name} must be >= 0")
    return seconds


def _factory_step(factory: str):
    """Importing and calling a factory is one step of the analysis's time limit (analysis.core.deadline): a factory that
    never returns, in Python or in C, ends the build with this message instead of a silent hang."""
    seconds = model_timeout()
    return deadline.step(seconds, f"model factory {factory!r} did not return within {seconds:g} s (waiting for it "
                                  f"to import and build the model; ${MODEL_TIMEOUT_ENV} raises the limit)",
                         field="factory")


class WatchForward:
    """A forward pre-hook: each call of a bring-your-own model's forward() is a step of the time limit
    (analysis.core.deadline.begin; ``EndForward`` ends it). Picklable, so a model sent to joblib's workers keeps it (there
    the SIGALRM stops a Python loop)."""

    def __init__(self, factory: str, seconds: float):
        self.factory, self.seconds = factory, seconds

    def __call__(self, module: nn.Module, args: Any) -> None:
        deadline.begin(self.seconds, f"the forward() of model factory {self.factory!r} did not return within "
                                     f"{self.seconds:g} s (${MODEL_TIMEOUT_ENV} raises the limit)", field="factory")


def end_forward(module: nn.Module, args: Any, output: Any) -> None:
    deadline.end()


def watch_forward(model: nn.Module, factory: str) -> nn.Module:
    """Time every call of ``model``'s forward() (its own code, the author's) under the model time limit."""
    seconds = model_timeout()
    if seconds > 0:
        model.register_forward_pre_hook(WatchForward(factory, seconds))
        model.register_forward_hook(end_forward, always_call=True)
    return model


_LOCAL: dict[str, str] = {}  # top-level module name -> the article folder it was imported from


def _inside(path: str | os.PathLike | None, folder: Path) -> bool:
    if not path:
        return False
    p = Path(path).resolve()
    return p == folder or folder in p.parents


def _check_local_module(factory: str, module_name: str, folder: Path) -> None:
    """Before importing: the factory's top-level module must be a file (or package) in the article's folder, not a
    standard-library or installed module (front matter must not be able to call e.g. os:system)."""
    top = module_name.split(".")[0]
    refuse = (f"model factory {factory!r}: module {top!r} is not a module in the article's folder {folder}; "
              "a factory must be defined there, or listed under 'factories:' in site.yml")
    if is_system_module(top) or local_module_file(top, folder) is None:
        raise AnalysisError(refuse)
    loaded = sys.modules.get(top)
    if loaded is not None and not _inside(getattr(loaded, "__file__", None), folder):
        if _LOCAL.get(top) is None:
            raise AnalysisError(refuse)  # the name is taken by an installed module
        # Another article's module of the same name: forget it, so this folder's own file is imported.
        for name in [n for n in sys.modules if n == top or n.startswith(top + ".")]:
            del sys.modules[name]
    _LOCAL[top] = str(folder)


def resolve_factory(factory: str, folder: str | os.PathLike | None = None) -> Callable[..., Any]:
    """Import "package.module:callable" (the callable may be dotted, e.g. "mod:Class.build").

    folder: the article's folder. When given, the module must be a file in it; None means the site vouches for the
    module (its `factories:` allow-list). Either way the callable must be defined in the named module's package
    (`efficientnet_lite_pytorch:EfficientNet` lives in `efficientnet_lite_pytorch.model`: fine), and no module,
    dunder attribute or object from elsewhere may sit in the attribute chain, so an allowed module cannot hand out
    what it merely imported (`analysis.models:os.popen`, `pkg:system`)."""
    parts = split_factory(factory)
    if parts is None:
        raise AnalysisError(f"model factory {factory!r} must look like 'package.module:callable'")
    module_name, attr_path = parts
    where = Path(folder).resolve() if folder is not None else None
    if where is not None:
        _check_local_module(factory, module_name, where)
    # A module in the article's folder is the author's content: importing it writes no __pycache__ there (a build
    # leaves the project as it found it, on machines that write bytecode too).
    writes_bytecode = sys.dont_write_bytecode
    sys.dont_write_bytecode = writes_bytecode or where is not None
    try:
        obj: Any = importlib.import_module(module_name)
    except (KeyboardInterrupt, deadline.Overrun):
        raise
    except BaseException as e:  # ImportError, the module raising on import, or calling sys.exit() on import
        if not isinstance(e, Exception):
            raise _user_exit(e, factory, f"while importing module {module_name!r}") from None
        raise AnalysisError(f"{_where(e)}model factory {factory!r}: cannot import module {module_name!r} "
                            f"({type(e).__name__}: {e})") from e
    finally:
        sys.dont_write_bytecode = writes_bytecode
    if where is not None and not _inside(getattr(obj, "__file__", None), where):
        raise AnalysisError(f"model factory {factory!r}: module {module_name!r} was imported from "
                            f"{getattr(obj, '__file__', None)}, not from the article's folder {where}")
    # The named module's package: the module itself when it is one (efficientnet_lite_pytorch), else its parent.
    package = module_name if hasattr(obj, "__path__") or "." not in module_name else module_name.rpartition(".")[0]
    for part in attr_path.split("."):
        if part.startswith("__"):
            raise AnalysisError(f"model factory {factory!r}: {part!r} is a special attribute; name a callable "
                                f"defined in {module_name!r}")
        if not hasattr(obj, part):
            raise AnalysisError(f"model factory {factory!r}: module {module_name!r} has no attribute {attr_path!r}")
        obj = getattr(obj, part)
        if isinstance(obj, types.ModuleType):
            raise AnalysisError(f"model factory {factory!r}: {part!r} is a module; name a callable defined in "
                                f"{module_name!r}")
    if not callable(obj):
        raise AnalysisError(f"model factory {factory!r} is a {type(obj).__name__}, not callable")
    owner = getattr(obj, "__module__", None)
    if not (isinstance(owner, str) and (owner == package or owner.startswith(package + "."))):
        raise AnalysisError(f"model factory {factory!r}: the callable is defined in module {owner!r}, not in "
                            f"{module_name!r} or its package; name the factory where it is defined")
    return obj


def load_byo(factory: str, weights: str | os.PathLike, kwargs: dict | None = None,
             folder: str | os.PathLike | None = None) -> nn.Module:
    """Build `factory(**kwargs)`, load `weights` (a state dict, read safely) strictly, return it in eval mode.
    folder: the article's folder the factory must come from (see resolve_factory)."""
    with _factory_step(factory):
        build = resolve_factory(factory, folder)
        model = _call(build, factory, kwargs)
    if not isinstance(model, nn.Module):
        raise AnalysisError(f"model factory {factory!r} returned a {type(model).__name__}, not a torch.nn.Module")
    state = safeload.load_state_dict(weights)
    safeload.check_keys_and_shapes(state, {k: tuple(v.shape) for k, v in model.state_dict().items()}, weights)
    model.load_state_dict(state, strict=True)
    return watch_forward(model.eval(), factory)


def _call(build: Callable[..., Any], factory: str, kwargs: dict | None) -> Any:
    try:
        return build(**(kwargs or {}))
    except (KeyboardInterrupt, deadline.Overrun):
        raise
    except BaseException as e:  # user code: SystemExit too (see _user_exit)
        if not isinstance(e, Exception):
            raise _user_exit(e, factory, f"when called with {_short(kwargs or {})}") from None
        raise AnalysisError(f"{_where(e)}model factory {factory!r} raised {type(e).__name__} when called with "
                            f"{_short(kwargs or {})}: {e}") from e


def analysis_failure(exc: Exception, factory: str, folder: str | os.PathLike | None) -> str:
    """One line for a failure while analysing a bring-your-own model: the innermost frame of the user's own code."""
    where = ""
    inside = str(Path(folder).resolve()) if folder else None
    for frame in reversed(traceback.extract_tb(exc.__traceback__)):
        if inside and str(Path(frame.filename).resolve()).startswith(inside):
            where = f"{frame.filename}:{frame.lineno}: "
            break
    return f"{where}model factory {factory!r}: analysis failed: {type(exc).__name__}: {exc}"
