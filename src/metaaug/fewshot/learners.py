"""Few-shot learners: each trains on an (augmented) support set and is scored on the query set.

- `Prototypes`: nearest class prototype in the feature space of a backbone trained by
  classification on the meta-train classes (the domain classifier of the metrics), features
  L2-normalized. A prototypical network's test-time rule (Snell et al. 2017) on a pre-trained
  backbone, the strong baseline of Wang et al. 2019 ("SimpleShot"). A prototype is the
  target-weighted mean of its class's features, so mixup's soft targets count fractionally.
- `SupportCNN`: a small CNN trained from scratch on the support set alone: the low-data
  "plain classifier" setting in which DAGAN (Antoniou et al. 2017) measured its gains.
"""

from __future__ import annotations

from typing import Protocol

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from metaaug.metrics.domain import DomainFeatures


class Learner(Protocol):
    name: str

    def accuracy(
        self, images: Tensor, targets: Tensor, query: Tensor, labels: Tensor, rng: torch.Generator
    ) -> float:
        """Train on (images, soft targets [n, ways]); the accuracy on (query, labels)."""
        ...


class Prototypes:
    name = "protonet"

    def __init__(self, features: DomainFeatures) -> None:
        self.features = features

    def embed(self, images: Tensor) -> Tensor:
        return F.normalize(self.features(images)[0], dim=1)

    def accuracy(
        self, images: Tensor, targets: Tensor, query: Tensor, labels: Tensor, rng: torch.Generator
    ) -> float:
        weights = targets / targets.sum(0, keepdim=True)  # [n, ways], columns sum to 1
        prototypes = weights.T @ self.embed(images)  # [ways, D]
        predicted = torch.cdist(self.embed(query), prototypes).argmin(1)
        return (predicted == labels.cpu()).float().mean().item()


def _cnn(channels: int, ways: int, width: int) -> nn.Sequential:
    def block(c_in: int, c_out: int) -> list[nn.Module]:
        return [nn.Conv2d(c_in, c_out, 3, padding=1), nn.GroupNorm(1, c_out), nn.ReLU(),
                nn.MaxPool2d(2)]  # fmt: skip

    return nn.Sequential(
        *block(channels, width), *block(width, 2 * width),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(2 * width, ways),
    )  # fmt: skip


class SupportCNN:
    """Two conv blocks and a linear head, trained full-batch with Adam for `steps` steps on
    soft-target cross-entropy, weights seeded by the episode (the same for every arm)."""

    name = "plain"

    def __init__(
        self, steps: int = 100, lr: float = 0.01, width: int = 8, device: str = "cpu"
    ) -> None:
        self.steps, self.lr, self.width = steps, lr, width
        self.device = torch.device(device)

    def accuracy(
        self, images: Tensor, targets: Tensor, query: Tensor, labels: Tensor, rng: torch.Generator
    ) -> float:
        seed = int(torch.randint(2**31 - 1, (1,), generator=rng))
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            net = _cnn(images.shape[1], targets.shape[1], self.width).to(self.device)
        x, y = images.to(self.device), targets.to(self.device)
        opt = torch.optim.Adam(net.parameters(), lr=self.lr)
        for _ in range(self.steps):
            loss = torch.sum(-y * F.log_softmax(net(x), dim=1), dim=1).mean()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        with torch.no_grad():
            predicted = net(query.to(self.device)).argmax(1).cpu()
        return (predicted == labels.cpu()).float().mean().item()
