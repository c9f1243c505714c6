"""InceptionV1 (GoogLeNet) with torchvision-compatible state-dict keys, loaded only from a file the user has.

torchvision's GoogLeNet differs from the original InceptionV1 (batch norm, a 3x3 "5x5" branch); its
weights were trained with `transform_input=True`, which turns ImageNet-normalized input into
(x - 0.5) / 0.5 per channel, so on [0, 1] input the whole preprocessing is Normalize(0.5, 0.5).
Nothing is ever downloaded: weights come from an explicit path, $VW_GOOGLENET_WEIGHTS, or the torch hub
cache (where torchvision would have put them).
"""
from __future__ import annotations

import os
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from analysis import paths, safeload
from analysis.errors import ModelUnavailable
from analysis.models.common import Normalize

HUB_FILENAME = paths.GOOGLENET_FILE
SHA256_PREFIX = "1378be20"  # torchvision names its files after the first 8 hex digits of their sha256
ENV_VAR = paths.GOOGLENET_ENV
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
    """Input [B, 3, H, W] RGB in [0, 1] (224 x 224 for ImageNet) -> logits [B, 1000]. No aux heads."""

    def __init__(self, num_classes: int = 1000):
        super().__init__()
        self.normalize = Normalize((0.5, 0.5, 0.5), (0.5, 0.5, 0.5))  # = ImageNet norm + transform_input
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
    return paths.torch_hub_checkpoint(HUB_FILENAME)


def how_to_supply() -> str:
    return (
        f"InceptionV1 (GoogLeNet) weights are not on this machine and are never downloaded. Supply torchvision's "
        f"{HUB_FILENAME} (sha256 starting {SHA256_PREFIX}) by one of: (1) pass its path explicitly; "
        f"(2) set the environment variable {ENV_VAR}=/path/to/{HUB_FILENAME}; "
        f"(3) put it at {hub_checkpoint_path()} (the torch hub cache; $TORCH_HOME moves it). "
        "A machine with internet can fetch it once with torchvision: "
        "`python -c \"import torchvision; torchvision.models.googlenet(weights='DEFAULT')\"` and copy the file."
    )


def find_weights(path: str | os.PathLike | None = None) -> Path | None:
    """The weights file to use: explicit `path`, else $VW_GOOGLENET_WEIGHTS, else the hub cache; None if none exists.

    An explicit path or env var that names a missing file raises ModelUnavailable (a typo should not be silent).
    """
    for explicit, source in ((path, "the given path"), (os.environ.get(ENV_VAR), f"${ENV_VAR}")):
        if explicit:
            p = Path(explicit).expanduser()
            if not p.is_file():
                raise ModelUnavailable(f"GoogLeNet weights file {p} (from {source}) does not exist. " + how_to_supply())
            return p
    hub = hub_checkpoint_path()
    return hub if hub.is_file() else None


def expected_shapes(model: nn.Module | None = None) -> dict[str, tuple]:
    model = model or GoogLeNet()
    return {k: tuple(v.shape) for k, v in model.state_dict().items()}


def load_googlenet(
    path: str | os.PathLike | None = None, *, expected_sha256_prefix: str | None = SHA256_PREFIX
) -> GoogLeNet:
    """Pretrained GoogLeNet in eval mode from a local torchvision checkpoint.

    The file must hash to `expected_sha256_prefix` (torchvision's 1378be20 by default), hold exactly our keys
    and shapes once aux1.* / aux2.* are dropped; missing num_batches_tracked entries (older checkpoints) are
    filled in. Raises ModelUnavailable when no file is found, WeightsError when the file is wrong.
    """
    found = find_weights(path)
    if found is None:
        raise ModelUnavailable(how_to_supply())
    state = safeload.load_state_dict(found, expected_sha256_prefix=expected_sha256_prefix)
    state = {k: v for k, v in state.items() if not k.startswith(("aux1.", "aux2."))}
    model = GoogLeNet()
    expected = expected_shapes(model)
    for k in expected:
        if k.endswith(".num_batches_tracked") and k not in state:
            state[k] = torch.tensor(0, dtype=torch.long)
    safeload.check_keys_and_shapes(state, expected, found)
    model.load_state_dict(state, strict=True)
    return model.eval()
