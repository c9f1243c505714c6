"""The one way this project reads weight files: torch.load(weights_only=True) plus checks that name the file.

weights_only=True makes torch refuse any pickle that would import or call something other than tensors
and plain containers, so a hostile checkpoint cannot run code here. Every failure becomes a WeightsError
that says which file and what is wrong with it.
"""
from __future__ import annotations

import os
import pickle
import re
import warnings
from pathlib import Path
from typing import Mapping

import torch

from analysis.core.errors import WeightsError
from analysis.core.jsonio import sha256_file  # re-exported: one implementation for the whole package

_SHOW = 5  # how many offending keys a message lists




def _first(items: list, n: int = _SHOW) -> str:
    more = f" (and {len(items) - n} more)" if len(items) > n else ""
    return ", ".join(str(i) for i in items[:n]) + more


def _detail(e: Exception) -> str:
    """One informative line of a torch error (its first line is often boilerplate about weights_only)."""
    lines = [ln.strip() for ln in str(e).splitlines() if ln.strip() and "weights_only" not in ln]
    return f"{type(e).__name__}: {lines[0][:200]}" if lines else type(e).__name__


def load_state_dict(path: str | os.PathLike, *, expected_sha256_prefix: str | None = None) -> dict[str, torch.Tensor]:
    """Load a state dict {key: Tensor} from `path` safely, on CPU.

    Raises WeightsError (naming the file) when the file is missing or empty, its sha256 does not start
    with `expected_sha256_prefix`, it is not a readable torch file (truncated/corrupt), its pickle would run
    code, its content is not a dict of tensors, or a floating tensor holds NaN/inf (naming the key).
    """
    path = Path(path)
    if not path.exists():
        raise WeightsError(f"weights file not found: {path}")
    if not path.is_file():  # a folder, or a FIFO that would block torch.load forever
        kind = "a folder" if path.is_dir() else "a FIFO (named pipe)" if path.is_fifo() else "not a regular file"
        raise WeightsError(f"weights file {path} is {kind}, not a regular file")
    if path.stat().st_size == 0:
        raise WeightsError(f"weights file is empty (0 bytes): {path}")
    if expected_sha256_prefix is not None:
        digest = sha256_file(path)
        if not digest.startswith(expected_sha256_prefix.lower()):
            raise WeightsError(
                f"weights file {path} has sha256 {digest[:16]}..., expected a hash starting with "
                f"{expected_sha256_prefix}: it is a different or damaged file"
            )
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # torch warns about pickle protocols; our errors say what matters
            obj = torch.load(path, weights_only=True, map_location="cpu")
    except pickle.UnpicklingError as e:
        # weights_only refuses a GLOBAL/REDUCE: the pickle would import or call code. Never retry unsafely.
        m = re.search(r"(Unsupported global|unsupported GLOBAL|Trying to (load|call)|Unsupported class)[^\n]*", str(e))
        if m is None:  # the unpickler choked on bytes that are not a pickle at all
            raise WeightsError(f"weights file {path} is truncated or corrupt: not a torch checkpoint ({_detail(e)})") from e
        raise WeightsError(
            f"refusing to load {path}: its pickle references code, not just tensors ({m.group(0).strip()}). "
            "Only plain state dicts are accepted; re-save it with torch.save(model.state_dict(), path) "
            "in a trusted environment."
        ) from e
    except Exception as e:  # zip/stream errors, EOF, garbage bytes: torch raises many types
        raise WeightsError(f"weights file {path} is truncated or corrupt and cannot be read by torch.load ({_detail(e)})") from e
    if not isinstance(obj, Mapping):
        raise WeightsError(f"weights file {path} holds a {type(obj).__name__}, not a state dict (a dict of tensors)")
    out: dict[str, torch.Tensor] = {}
    for key, value in obj.items():
        if not isinstance(value, torch.Tensor):
            raise WeightsError(
                f"weights file {path}: entry {key!r} is a {type(value).__name__}, not a tensor; "
                "expected a flat state dict"
            )
        stored = value.untyped_storage().nbytes()
        if value.numel() * value.element_size() > stored:
            # e.g. torch.zeros(1).expand(100000, 100000): 3 KB on disk, 40 GB once anything touches every element.
            raise WeightsError(f"weights file {path}: tensor {key!r} of shape {tuple(value.shape)} is an expanded view "
                               f"over {stored} stored bytes, not a real tensor; save it with .clone()")
        if value.is_floating_point() and not bool(torch.isfinite(value).all()):
            kind = "NaN" if bool(torch.isnan(value).any()) else "inf"
            raise WeightsError(f"weights file {path}: tensor {key!r} contains {kind} values")
        out[str(key)] = value
    return out


def check_keys_and_shapes(
    state_dict: Mapping[str, torch.Tensor], expected: Mapping[str, tuple], path: str | os.PathLike
) -> None:
    """Raise WeightsError naming `path` unless `state_dict` has exactly the keys of `expected`
    ({key: shape}) with those shapes. The message lists the first few missing, unexpected and mismatched keys."""
    missing = [k for k in expected if k not in state_dict]
    unexpected = [k for k in state_dict if k not in expected]
    mismatched = [
        f"{k}: file {tuple(state_dict[k].shape)} vs model {tuple(expected[k])}"
        for k in expected
        if k in state_dict and tuple(state_dict[k].shape) != tuple(expected[k])
    ]
    problems = []
    if missing:
        problems.append(f"{len(missing)} missing key(s): {_first(missing)}")
    if unexpected:
        problems.append(f"{len(unexpected)} unexpected key(s): {_first(unexpected)}")
    if mismatched:
        problems.append(f"{len(mismatched)} shape mismatch(es): {_first(mismatched)}")
    if problems:
        raise WeightsError(f"weights file {path} does not fit the architecture: " + "; ".join(problems))
