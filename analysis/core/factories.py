"""Bring-your-own factory strings ("package.module:callable"), checked without torch: the build's front-matter check
and the model loader (analysis.models.byo) use the same rules."""
from __future__ import annotations

import sys
from pathlib import Path
from typing import Any


def split_factory(factory: Any) -> tuple[str, str] | None:
    """"package.module:callable" -> (module, callable path); None when the string does not look like that."""
    if not isinstance(factory, str) or factory.count(":") != 1 or not all(factory.split(":")):
        return None
    module, attr = factory.split(":")
    return module, attr


def top_module(factory: str) -> str:
    return factory.split(":")[0].split(".")[0]


def is_system_module(top: str) -> bool:
    """A built-in or standard-library module name: never a factory module of an article."""
    return top in sys.builtin_module_names or top in getattr(sys, "stdlib_module_names", ())


def local_module_file(top: str, folder: Path) -> Path | None:
    """The file of top-level module `top` in `folder` (`top.py` or `top/__init__.py`, resolved inside the folder)."""
    folder = folder.resolve()
    for candidate in (folder / f"{top}.py", folder / top / "__init__.py"):
        if candidate.is_file() and folder in candidate.resolve().parents:
            return candidate
    return None
