"""InceptionV1 (GoogLeNet) with torchvision-compatible state-dict keys, loaded only from a file the user has.

torchvision's GoogLeNet differs from the original InceptionV1 (batch norm, a 3x3 "5x5" branch); its
weights were trained with `transform_input=True`, which turns ImageNet-normalized input into
(x - 0.5) / 0.5 per channel, so on [0, 1] input the whole preprocessing is Normalize(0.5, 0.5).
Nothing is ever downloaded: analysis.core.tv_weights finds the file (explicit path, $VW_WEIGHTS_GOOGLENET or
$VW_GOOGLENET_WEIGHTS, the torch hub cache).
"""
from __future__ import annotations

import os
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from analysis.core import tv_weights
from analysis.models import tv_load
from analysis.models.common import Normalize

WEIGHTS = tv_weights.GOOGLENET
HUB_FILENAME = WEIGHTS.filename
SHA256_PREFIX = WEIGHTS.sha256_prefix  # torchvision names its files after the first 8 hex digits of their sha256
ENV_VAR = "VW_GOOGLENET_WEIGHTS"  # the name this project used first; VW_WEIGHTS_GOOGLENET works too
BN_EPS = 1e-3
INPUT_SIZE = 224
LICENCE = "BSD-3-Clause (torchvision model weights)"

# name: (in, 1x1, 3x3 reduce, 3x3, "5x5" reduce, "5x5" (really 3x3), pool proj)
INCEPTION_CFG = {
    "inception3a": (192, 64, 96, 128, 16, 32, 32),
    "inception3b": (256, 128, 128, 192, 32, 96, 64),
    "inception4a": (480, 192, 96, 208, 16, 48, 64),
    "inception4b": (512, 160, 112, 224, 24, 64, 64),
    "inception4c": (512, 128, 128, 256, 24, 64, 64),
    "inception4d": (512, 112, 144, 288, 32, 64, 64),
    "inception4e": (528, 256, 160, 320, 32, 128, 128),
    "inception5a": (832, 256, 160, 320, 32, 128, 128),
    "inception5b": (832, 384, 192, 384, 48, 128, 128),
}


class BasicConv2d(nn.Module):
    """conv (no bias) -> batch norm -> ReLU."""

    def __init__(self, cin: int, cout: int, kernel: int, stride: int = 1, padding: int = 0):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, kernel, stride=stride, padding=padding, bias=False)
        self.bn = nn.BatchNorm2d(cout, eps=BN_EPS)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.bn(self.conv(x)))


class Inception(nn.Module):
    """Four parallel branches concatenated on channels: 1x1 | 1x1->3x3 | 1x1->3x3 | maxpool->1x1."""

    def __init__(self, cin: int, c1: int, c3r: int, c3: int, c5r: int, c5: int, pool_proj: int):
        super().__init__()
        self.branch1 = BasicConv2d(cin, c1, 1)
        self.branch2 = nn.Sequential(BasicConv2d(cin, c3r, 1), BasicConv2d(c3r, c3, 3, padding=1))
        self.branch3 = nn.Sequential(BasicConv2d(cin, c5r, 1), BasicConv2d(c5r, c5, 3, padding=1))
        self.branch4 = nn.Sequential(nn.MaxPool2d(3, stride=1, padding=1, ceil_mode=True), BasicConv2d(cin, pool_proj, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([self.branch1(x), self.branch2(x), self.branch3(x), self.branch4(x)], dim=1)


class GoogLeNet(nn.Module):
    """Input [B, 3, H, W] RGB in [0, 1] (224 x 224 for ImageNet) -> logits [B, 1000]. No aux heads.

    normalize=False takes input as torchvision's GoogLeNet(transform_input=False) does (the reference test).
    """

    def __init__(self, num_classes: int = 1000, normalize: bool = True):
        super().__init__()
        # (0.5, 0.5) = ImageNet normalization followed by torchvision's transform_input
        self.normalize = Normalize((0.5, 0.5, 0.5), (0.5, 0.5, 0.5)) if normalize else None
        self.conv1 = BasicConv2d(3, 64, 7, stride=2, padding=3)
        self.maxpool1 = nn.MaxPool2d(3, stride=2, ceil_mode=True)
        self.conv2 = BasicConv2d(64, 64, 1)
        self.conv3 = BasicConv2d(64, 192, 3, padding=1)
        self.maxpool2 = nn.MaxPool2d(3, stride=2, ceil_mode=True)
        for name in ("inception3a", "inception3b"):
            setattr(self, name, Inception(*INCEPTION_CFG[name]))
        self.maxpool3 = nn.MaxPool2d(3, stride=2, ceil_mode=True)
        for name in ("inception4a", "inception4b", "inception4c", "inception4d", "inception4e"):
            setattr(self, name, Inception(*INCEPTION_CFG[name]))
        self.maxpool4 = nn.MaxPool2d(2, stride=2, ceil_mode=True)
        for name in ("inception5a", "inception5b"):
            setattr(self, name, Inception(*INCEPTION_CFG[name]))
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.dropout = nn.Dropout(0.2)
        self.fc = nn.Linear(1024, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.normalize is not None:
            x = self.normalize(x)
        x = self.maxpool1(self.conv1(x))
        x = self.maxpool2(self.conv3(self.conv2(x)))
        x = self.maxpool3(self.inception3b(self.inception3a(x)))
        for name in ("inception4a", "inception4b", "inception4c", "inception4d", "inception4e"):
            x = getattr(self, name)(x)
        x = self.inception5b(self.inception5a(self.maxpool4(x)))
        return self.fc(self.dropout(torch.flatten(self.avgpool(x), 1)))


def hub_checkpoint_path() -> Path:
    """Where torchvision's hub cache would hold the weights: $TORCH_HOME or ~/.cache/torch, hub/checkpoints/."""
    return tv_weights.hub_path(WEIGHTS)


def how_to_supply() -> str:
    return tv_weights.how_to_supply(WEIGHTS)


def find_weights(path: str | os.PathLike | None = None) -> Path | None:
    """The weights file to use (see analysis.core.tv_weights.find); None if none exists."""
    return tv_weights.find(WEIGHTS, path)


def expected_shapes(model: nn.Module | None = None) -> dict[str, tuple]:
    model = model or GoogLeNet()
    return {k: tuple(v.shape) for k, v in model.state_dict().items()}


def load_googlenet(
    path: str | os.PathLike | None = None, *, expected_sha256_prefix: str | None = tv_load.OFFICIAL
) -> GoogLeNet:
    """Pretrained GoogLeNet in eval mode from a local torchvision checkpoint.

    The file must hash to `expected_sha256_prefix` (by default the prefix in its name, torchvision's convention:
    1378be20 for googlenet-1378be20.pth and for a renamed file without one), hold exactly our keys
    and shapes once aux1.* / aux2.* are dropped; missing num_batches_tracked entries (older checkpoints) are
    filled in. Raises ModelUnavailable when no file is found, WeightsError when the file is wrong.
    """
    return tv_load.load_weights(GoogLeNet(), WEIGHTS, path, expected_sha256_prefix=expected_sha256_prefix,
                                drop_prefixes=("aux1.", "aux2."))
