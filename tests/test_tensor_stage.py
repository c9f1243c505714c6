"""The tensor stage's expanded weights honour the model's own input size when no other size runs it."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from analysis.core.errors import AnalysisError
from analysis.recipes import Recipe, TensorJob
from analysis.tensor_stage import tensor_of


class FixedSize(nn.Module):
    """Two 3x3 convs with a learned [C, 24, 24] position map between them: runs at 24x24 pixels only."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.a = nn.Conv2d(3, 4, 3, padding=1)
        self.position = nn.Parameter(torch.randn(1, 4, 24, 24))
        self.b = nn.Conv2d(4, 5, 3, padding=1)

    def forward(self, x):
        return self.b(torch.relu(self.a(x) + self.position))


def test_expanded_weights_at_the_models_own_size_when_the_search_cannot_run_it():
    model = FixedSize().eval()
    job = TensorJob(layer="b", source="a")
    got = tensor_of(model, job, Recipe(tensors=[job], first_layer=None, image_size=24))
    assert got.shape == (5, 4, 3, 3)
    # Expanded weights see nonlinearities as identities: from a's output to b's output is b's own kernel.
    np.testing.assert_allclose(got, model.b.weight.detach().numpy(), atol=1e-6)


def test_a_size_that_does_not_run_the_model_still_fails_with_the_search_error():
    model = FixedSize().eval()
    job = TensorJob(layer="b", source="a")
    with pytest.raises(AnalysisError, match="no input size up to"):
        tensor_of(model, job, Recipe(tensors=[job], first_layer=None, image_size=20))


def test_a_hook_that_is_not_a_feature_map_names_the_tensor_and_its_hooks():
    """Issue 22: 'to_layer must output a [B, C, H, W] tensor' alone did not say which tensor, nor that its upper hook
    was a block boundary after the network's flatten."""
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.Flatten(), nn.Linear(4 * 14 * 14, 2)).eval()
    job = TensorJob(layer="2", source="0")
    with pytest.raises(AnalysisError, match=r"^expanded weights 0->2 \(hooks 0 -> 2\): expanded_weights: to_layer must "
                                            r"output a \[B, C, H, W\] tensor") as info:
        tensor_of(model, job, Recipe(tensors=[job], first_layer=None, image_size=16))
    assert isinstance(info.value.__cause__, AnalysisError)
