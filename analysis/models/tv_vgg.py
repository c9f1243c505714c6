"""VGG-16 (no batch norm) with torchvision's exact state-dict layout (`torchvision.models.vgg16`), no torchvision.

`features.N` / `classifier.N` indices count the ReLU, max-pool and dropout modules too, as torchvision does.
"""
from __future__ import annotations

import torch
from torch import nn

from analysis.models.common import imagenet_normalize

INPUT_SIZE = 224
VGG16_CFG = (64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M")


class VGG16(nn.Module):
    """Input [B, 3, H, W] RGB in [0, 1] (ImageNet-normalized input when normalize=False) -> logits [B, 1000]."""

    def __init__(self, num_classes: int = 1000, normalize: bool = True):
        super().__init__()
        self.normalize = imagenet_normalize(normalize)
        layers: list[nn.Module] = []
        cin = 3
        for v in VGG16_CFG:
            if v == "M":
                layers.append(nn.MaxPool2d(2, 2))
            else:
                layers += [nn.Conv2d(cin, v, 3, padding=1), nn.ReLU(inplace=True)]
                cin = v
        self.features = nn.Sequential(*layers)
        self.avgpool = nn.AdaptiveAvgPool2d(7)
        self.classifier = nn.Sequential(
            nn.Linear(512 * 7 * 7, 4096), nn.ReLU(inplace=True), nn.Dropout(0.5),
            nn.Linear(4096, 4096), nn.ReLU(inplace=True), nn.Dropout(0.5),
            nn.Linear(4096, num_classes),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.normalize is not None:
            x = self.normalize(x)
        return self.classifier(torch.flatten(self.avgpool(self.features(x)), 1))
