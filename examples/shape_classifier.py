"""A small shape classifier for ``train.py``: are the generated shapes recognisable discs, squares and triangles?

``train_classifier`` fits a small CNN (three stride-2 convolutions, global pooling, a linear layer; about
25k parameters) on freshly drawn procedural images for a few hundred steps, a few seconds of CPU time.
``shape_scores`` then reports, for a batch of images:

* ``recognised``: the share of images whose largest class probability is at least 0.9;
* ``share_<class>``: the share of each class among the recognised images (1/3 each when balanced);
* ``balance``: the normalised entropy of those shares, 1.0 for a perfect balance, 0.0 for a single class.

Run on real images it gives the ceiling that the generator's samples can reach. A blurry blob tends to be
called a disc with confidence, so ``recognised`` alone can flatter a generator; ``balance`` (and the disc
share) shows it.

Usage (standalone, prints the classifier's accuracy and the real-data scores)::

    python examples/shape_classifier.py
"""

from __future__ import annotations

import math
from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn

CLASSES = ("disc", "square", "triangle")
DrawFn = Callable[[int, torch.Generator], tuple[torch.Tensor, torch.Tensor]]


class ShapeClassifier(nn.Module):
    """Three stride-2 3×3 convolutions (32 → 16 → 8 → 4 pixels) with ReLU, mean + max pooling, a linear layer."""

    def __init__(self, width: int = 16, num_classes: int = len(CLASSES)) -> None:
        super().__init__()
        widths = [3, width, 2 * width, 4 * width]
        self.convs = nn.ModuleList(
            nn.Conv2d(i, o, 3, stride=2, padding=1) for i, o in zip(widths[:-1], widths[1:])
        )
        self.fc = nn.Linear(2 * widths[-1], num_classes)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """The penultimate features ``(N, 8 * width)``: mean and max pooling of the last convolution."""
        for conv in self.convs:
            x = F.relu(conv(x))
        return torch.cat([x.mean((2, 3)), x.amax((2, 3))], 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.features(x))


def train_classifier(
    draw: DrawFn, *, steps: int = 300, batch_size: int = 64, lr: float = 3e-3, seed: int = 0
) -> ShapeClassifier:
    """Fit a :class:`ShapeClassifier` on ``draw(n, generator) -> (images in [-1, 1], labels)``, fresh batches."""
    g = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    model = ShapeClassifier()
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=steps, pct_start=0.15)
    for _ in range(steps):
        images, labels = draw(batch_size, g)
        loss = F.cross_entropy(model(images), labels)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
    return model.eval().requires_grad_(False)


@torch.no_grad()
def shape_scores(model: ShapeClassifier, images: torch.Tensor, *, threshold: float = 0.9) -> dict[str, float]:
    """``recognised`` (max softmax ≥ ``threshold``), ``share_<class>`` among them, and their ``balance``."""
    probs = torch.cat([model(chunk.float().cpu()).softmax(1) for chunk in images.split(256)])
    confidence, label = probs.max(1)
    recognised = confidence >= threshold
    counts = torch.bincount(label[recognised], minlength=len(CLASSES)).double()
    shares = counts / counts.sum().clamp_min(1)
    entropy = max(0.0, -float((shares * shares.clamp_min(1e-12).log()).sum()))  # never -0.0
    return {
        "recognised": float(recognised.double().mean()),
        **{f"share_{name}": float(s) for name, s in zip(CLASSES, shares)},
        "balance": entropy / math.log(len(CLASSES)),
    }


@torch.no_grad()
def shape_features(model: ShapeClassifier, images: torch.Tensor) -> torch.Tensor:
    """The classifier's penultimate features of ``images``, in chunks, on the CPU: ``(N, 8 * width)``."""
    return torch.cat([model.features(chunk.float().cpu()) for chunk in images.split(256)])


@torch.no_grad()
def accuracy(model: ShapeClassifier, images: torch.Tensor, labels: torch.Tensor) -> float:
    return float((model(images).argmax(1) == labels).double().mean())


if __name__ == "__main__":
    import importlib.util
    import sys
    import time
    from pathlib import Path

    spec = importlib.util.spec_from_file_location("train", Path(__file__).with_name("train.py"))
    assert spec is not None and spec.loader is not None
    train = importlib.util.module_from_spec(spec)
    sys.modules["train"] = train
    spec.loader.exec_module(train)

    def draw(n: int, g: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        return train.draw_shapes(n, g, return_labels=True)

    start, cpu = time.perf_counter(), time.process_time()
    model = train_classifier(draw)
    print(f"trained in {time.perf_counter() - start:.1f} s wall, {time.process_time() - cpu:.1f} s CPU")
    images, labels = draw(2048, torch.Generator().manual_seed(12345))
    print(f"held-out accuracy {accuracy(model, images, labels):.4f}")
    print({k: round(v, 4) for k, v in shape_scores(model, images).items()})
