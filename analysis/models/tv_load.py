"""Load a torchvision weights file into an architecture written here: found by analysis.core.tv_weights, read with
weights_only=True, checked against the sha256 prefix in the file's name (torchvision's convention; a renamed file against
the official name's), strict keys and shapes."""
from __future__ import annotations

import os

import torch
from torch import nn

from analysis import safeload
from analysis.core import tv_weights
from analysis.core.errors import ModelUnavailable
from analysis.core.tv_weights import TvWeights

OFFICIAL = "official"  # default for expected_sha256_prefix: the prefix in torchvision's file name


def load_weights(
    model: nn.Module,
    weights: TvWeights,
    path: str | os.PathLike | None = None,
    *,
    expected_sha256_prefix: str | None = OFFICIAL,
    drop_prefixes: tuple[str, ...] = (),
) -> nn.Module:
    """`model` with the weights file loaded strictly, in eval mode.

    `drop_prefixes` removes heads we do not build (GoogLeNet's aux1./aux2.); `num_batches_tracked` entries
    missing from older checkpoints are filled in (they do not affect eval). `expected_sha256_prefix=None` skips
    the hash check (files the caller made). Raises ModelUnavailable when no file is found, WeightsError when
    the file is wrong.
    """
    found = tv_weights.find(weights, path)
    if found is None:
        raise ModelUnavailable(tv_weights.how_to_supply(weights))
    # As torchvision's own loader does: the file must hash to the prefix in its name; a file whose name carries
    # none (renamed by the user) must be torchvision's official one.
    official = tv_weights.name_prefix(found) or weights.sha256_prefix
    prefix = official if expected_sha256_prefix == OFFICIAL else expected_sha256_prefix
    state = safeload.load_state_dict(found, expected_sha256_prefix=prefix)
    state = {k: v for k, v in state.items() if not k.startswith(drop_prefixes)} if drop_prefixes else state
    expected = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    for k in expected:
        if k.endswith(".num_batches_tracked") and k not in state:
            state[k] = torch.tensor(0, dtype=torch.long)
    safeload.check_keys_and_shapes(state, expected, found)
    model.load_state_dict(state, strict=True)
    return model.eval()
