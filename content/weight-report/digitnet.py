"""A small digit classifier: the "bring your own model" example of the weight report.

The weight report's front matter names `digitnet:make` and `digitnet.pt`; the build imports this file from the
article's folder, builds the model, and loads the weights with `torch.load(..., weights_only=True)`.
Inputs are gray MNIST digits [B, 1, 28, 28] in [0, 1]; normalization happens inside the model.
"""
from __future__ import annotations

import torch
from torch import nn


class DigitNet(nn.Module):
    def __init__(self, widths: tuple[int, int, int, int] = (8, 16, 32, 32)):
        super().__init__()
        w1, w2, w3, w4 = widths
        self.conv1 = nn.Conv2d(1, w1, 5, padding=2)
        self.conv2 = nn.Conv2d(w1, w2, 3, padding=1)
        self.conv3 = nn.Conv2d(w2, w3, 3, padding=1)
        self.conv4 = nn.Conv2d(w3, w4, 3, padding=1)
        self.pool = nn.MaxPool2d(2)
        self.head = nn.Linear(w4, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = (x - 0.13) / 0.31
        x = torch.relu(self.conv1(x))
        x = self.pool(torch.relu(self.conv2(x)))  # 14x14
        x = self.pool(torch.relu(self.conv3(x)))  # 7x7
        x = torch.relu(self.conv4(x))
        return self.head(x.mean(dim=(2, 3)))  # global average pooling


def make() -> DigitNet:
    return DigitNet()
