"""AlexNet with torchvision's exact state-dict layout (`torchvision.models.alexnet`, the "one weird trick"
single-tower variant: 64-192-384-256-256 channels), without torchvision."""
from __future__ import annotations

import torch
from torch import nn

from analysis.models.common import imagenet_normalize

INPUT_SIZE = 224


class AlexNet(nn.Module):
    """Input [B, 3, H, W] RGB in [0, 1] (ImageNet-normalized input when normalize=False) -> logits [B, 1000]."""

    def __init__(self, num_classes: int = 1000, normalize: bool = True):
        super().__init__()
        self.normalize = imagenet_normalize(normalize)
        self.features = nn.Sequential(
            nn.Conv2d(3, 64, 11, stride=4, padding=2), nn.ReLU(inplace=True), nn.MaxPool2d(3, 2),
            nn.Conv2d(64, 192, 5, padding=2), nn.ReLU(inplace=True), nn.MaxPool2d(3, 2),
            nn.Conv2d(192, 384, 3, padding=1), nn.ReLU(inplace=True),
            nn.Conv2d(384, 256, 3, padding=1), nn.ReLU(inplace=True),
            nn.Conv2d(256, 256, 3, padding=1), nn.ReLU(inplace=True), nn.MaxPool2d(3, 2),
        )
        self.avgpool = nn.AdaptiveAvgPool2d(6)
        self.classifier = nn.Sequential(
            nn.Dropout(0.5), nn.Linear(256 * 6 * 6, 4096), nn.ReLU(inplace=True),
            nn.Dropout(0.5), nn.Linear(4096, 4096), nn.ReLU(inplace=True),
            nn.Linear(4096, num_classes),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.normalize is not None:
            x = self.normalize(x)
        return self.classifier(torch.flatten(self.avgpool(self.features(x)), 1))
