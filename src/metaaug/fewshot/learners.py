"""Few-shot learners: each trains on an (augmented) support set and is scored on the query set.

- `Prototypes`: nearest class prototype in the feature space of a backbone trained by
  classification on the meta-train classes (the domain classifier of the metrics), features
  L2-normalized. A prototypical network's test-time rule (Snell et al. 2017) on a pre-trained
  backbone, the strong baseline of Wang et al. 2019 ("SimpleShot"). A prototype is the
  target-weighted mean of its class's features, so mixup's soft targets count fractionally.
- `SupportCNN`: a small CNN trained from scratch on the support set alone: the low-data
  "plain classifier" setting in which DAGAN (Antoniou et al. 2017) measured its gains.
- `MAMLClassifier`: the same CNN from a MAML-meta-learned initialization (Finn et al. 2017),
  fine-tuned on the support set with a few SGD steps.
"""

from __future__ import annotations

from typing import Protocol

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from metaaug.fewshot.episodes import EpisodeSampler
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


def small_cnn(channels: int, image_size: int, ways: int, width: int) -> nn.Sequential:
    """Two conv blocks (3x3 conv, GroupNorm, 2x2 max-pool, ReLU) and a linear head on the
    flattened features: the flattened head keeps where a stroke is, and trains in a few SGD
    steps, where global pooling needed many more."""

    def block(c_in: int, c_out: int) -> list[nn.Module]:
        # pooling before the ReLU is the same function (max and ReLU commute) on a quarter of
        # the values
        return [nn.Conv2d(c_in, c_out, 3, padding=1), nn.GroupNorm(1, c_out), nn.MaxPool2d(2),
                nn.ReLU()]  # fmt: skip

    side = image_size // 4
    return nn.Sequential(
        *block(channels, width), *block(width, 2 * width),
        nn.Flatten(), nn.Linear(2 * width * side * side, ways),
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
            net = small_cnn(images.shape[1], images.shape[-1], targets.shape[1], self.width)
        # channels-last: this CNN's convolutions and pooling run 1.3-1.8x faster on a CPU
        net = net.to(self.device, memory_format=torch.channels_last)
        x = images.to(self.device, memory_format=torch.channels_last)
        y = targets.to(self.device)
        opt = torch.optim.Adam(net.parameters(), lr=self.lr)
        for _ in range(self.steps):
            loss = soft_cross_entropy(net(x), y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        with torch.no_grad():
            logits = net(query.to(self.device, memory_format=torch.channels_last))
        return (logits.argmax(1).cpu() == labels.cpu()).float().mean().item()


# --- the functional CNN shared by the MAML learner and the learned-augmentation arm ----------

Params = dict[str, Tensor]


def soft_cross_entropy(logits: Tensor, targets: Tensor) -> Tensor:
    """The cross-entropy of each row, weighted by the row's mass (1 for a real image; an arm's
    `weight` for a generated one, `metaaug.fewshot.trust`), over the total mass: the plain
    mean when every row has mass 1."""
    per_row = torch.sum(-targets * F.log_softmax(logits, dim=1), dim=1)
    return per_row.sum() / targets.sum()


def sgd_fit(
    net: nn.Module,
    params: Params,
    images: Tensor,
    targets: Tensor,
    steps: int,
    lr: float,
    create_graph: bool = False,
) -> Params:
    """`steps` full-batch SGD steps of `net` (weights `params`) on soft-target cross-entropy.

    With `create_graph` the result stays differentiable with respect to `params` and to
    `images` (second order), so a query loss can be differentiated through the training.
    """
    for _ in range(steps):
        loss = soft_cross_entropy(torch.func.functional_call(net, params, (images,)), targets)
        grads = torch.autograd.grad(loss, list(params.values()), create_graph=create_graph)
        params = {k: p - lr * g for (k, p), g in zip(params.items(), grads, strict=True)}
    return params


class MAMLClassifier:
    """A small CNN whose initialization was meta-learned with MAML on episodes of the
    meta-train classes (`meta_train_maml_classifier`), fine-tuned on each (augmented) support
    set with `steps` SGD steps: the MAML learner of Finn et al. 2017, Section 5.1.
    """

    name = "maml"

    def __init__(self, net: nn.Module, init: Params, steps: int, lr: float) -> None:
        self.net, self.init, self.steps, self.lr = net, init, steps, lr

    def accuracy(
        self, images: Tensor, targets: Tensor, query: Tensor, labels: Tensor, rng: torch.Generator
    ) -> float:
        device = next(iter(self.init.values())).device
        params = {k: v.detach().requires_grad_(True) for k, v in self.init.items()}
        params = sgd_fit(self.net, params, images.to(device), targets.to(device), self.steps,
                         self.lr)  # fmt: skip
        with torch.no_grad():
            logits = torch.func.functional_call(self.net, params, (query.to(device),))
        return (logits.argmax(1).cpu() == labels.cpu()).float().mean().item()


def meta_train_maml_classifier(
    episodes: EpisodeSampler,  # over the meta-train classes
    channels: int,
    image_size: int,
    width: int,
    iterations: int,
    meta_batch_size: int,
    inner_steps: int,
    inner_lr: float,
    meta_lr: float,
    first_order: bool,
    seed: int,
    test_steps: int | None = None,
    device: str = "cpu",
) -> MAMLClassifier:
    """MAML (second order unless `first_order`) on `iterations` meta-batches of episodes; the
    episodes' own shots are the support, their queries the meta-loss. At test time the
    learner takes `test_steps` SGD steps (default: `inner_steps`; Finn et al. take more at
    test time than in meta-training)."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        net = small_cnn(channels, image_size, episodes.ways, width).to(device)
    init = {k: v.detach().clone().requires_grad_(True) for k, v in net.named_parameters()}
    opt = torch.optim.Adam(list(init.values()), lr=meta_lr)
    for it in range(iterations):
        opt.zero_grad(set_to_none=True)
        for b in range(meta_batch_size):
            ep = episodes.episode(it * meta_batch_size + b)
            y = F.one_hot(ep.support_labels, ep.ways).float().to(device)
            adapted = sgd_fit(net, init, ep.support.to(device), y, inner_steps, inner_lr,
                              create_graph=not first_order)  # fmt: skip
            logits = torch.func.functional_call(net, adapted, (ep.query.to(device),))
            loss = F.cross_entropy(logits, ep.query_labels.to(device)) / meta_batch_size
            loss.backward()
        opt.step()
    steps = inner_steps if test_steps is None else test_steps
    return MAMLClassifier(net, {k: v.detach() for k, v in init.items()}, steps, inner_lr)
