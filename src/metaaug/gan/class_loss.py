"""The class-consistency term (`gan.class_loss`): a generated image should be of its class.

A GAN adapted to five shots can draw clean characters of another class, which an adversarial
loss on five images barely punishes and which a few-shot classifier then learns under the
wrong label. This term adds to G's loss, in every loop (meta-training, pretrain, the fine-tune,
validation and the fewshot gan arm):

    weight * mean_i CE(softmax(scale * [cos(f_i, p_i), cos(f_i, b_1), ..., cos(f_i, b_K)]), 0)

where f_i are the features of generated image i on a frozen embedding, p_i the prototype
(mean L2-normalized features) of the real images of i's class in the step, and b_1..b_K the
prototypes of the meta-train classes: each image is pulled to its own class and pushed from
every class the embedding knows, the rule of a prototypical network (Snell et al. 2017) with
a cosine distance. A meta-train class's own row of the bank is left out of its images' softmax
(`own`), so that a task of a known class is not pushed away from itself.

The embedding is a domain classifier trained on the meta-train classes alone, with its own
seed: not the network whose features FID reads nor the protonet backbone of `metaaug
fewshot`, so neither grades images against the network that shaped them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from metaaug.models.classifier import DomainClassifier

# cosine similarities times this are the logits: a temperature of 0.1, as in cosine-softmax
# few-shot classifiers (e.g. Chen et al. 2019, "A Closer Look at Few-shot Classification")
SCALE = 10.0


def class_consistency(
    fake: Tensor, real: Tensor, classes: Tensor | None, bank: Tensor, own: Tensor | None
) -> Tensor:
    """The mean cross-entropy of each generated image against its class's prototype.

    fake, real: L2-normalized features [n, D] (fake i has real i's class); classes: an id of
    each real image's class [n] (None: one class); bank: normalized prototypes [K, D]; own:
    each image's row of the bank [n] (-1 or None: not in the bank).
    """
    n = real.shape[0]
    if classes is None:
        classes = torch.zeros(n, dtype=torch.long, device=real.device)
    same = (classes.unsqueeze(1) == classes.unsqueeze(0)).to(real.dtype)  # [n, n]
    prototypes = F.normalize(same @ real / same.sum(1, keepdim=True), dim=1)
    mine = (fake * prototypes).sum(1, keepdim=True)  # [n, 1]
    others = fake @ bank.T  # [n, K]
    if own is not None:
        rows = torch.arange(bank.shape[0], device=bank.device)
        others = others.masked_fill(own.unsqueeze(1) == rows, float("-inf"))
    logits = SCALE * torch.cat([mine, others], dim=1)
    return -F.log_softmax(logits, dim=1)[:, 0].mean()


@dataclass(frozen=True, eq=False)
class ClassLoss:
    """The term's frozen embedding (a domain classifier's features), the bank of meta-train
    prototypes and its weight. `state` travels in the run's meta_init.pt, so that `generate`,
    the API and the fewshot gan arm adapt with the term the initialization was trained for."""

    classifier: DomainClassifier  # frozen; its features are the embedding
    bank: Tensor  # [K, D] L2-normalized prototypes of the classes `names`
    names: tuple[str, ...]
    weight: float

    def state(self) -> dict[str, Any]:
        return {
            "classifier": self.classifier.config(), "weights": self.classifier.state_dict(),
            "bank": self.bank.cpu(), "names": list(self.names), "weight": self.weight,
        }  # fmt: skip

    @classmethod
    def from_state(cls, state: Mapping[str, Any], device: torch.device) -> ClassLoss:
        classifier = DomainClassifier(**state["classifier"])
        classifier.load_state_dict(state["weights"])
        return cls(frozen(classifier.to(device)), state["bank"].to(device),
                   tuple(state["names"]), float(state["weight"]))  # fmt: skip

    def features(self, images: Tensor) -> Tensor:
        # fp32 in, so that the frozen fp32 weights fit any precision (autocast still applies)
        return F.normalize(self.classifier.features(images.float()).float(), dim=1)

    def __call__(
        self, fake: Tensor, real: Tensor, labels: Tensor | None = None, own: Tensor | None = None
    ) -> Tensor:
        """The weighted term for generated images `fake` of the classes of `real` (image i of
        each has the same class): `labels` are the reals' slot labels in their task, `own`
        their rows of the bank, which tell classes apart across pooled tasks (pretrain)."""
        target = self.features(real).detach()
        classes = own if own is not None else labels
        return self.weight * class_consistency(self.features(fake), target, classes,
                                               self.bank.to(fake.device), own)  # fmt: skip

    def rows(self, class_names: Sequence[str], ways: int, per_class: int) -> Tensor:
        """Each image's row of the bank [B, ways * per_class] for a meta-batch whose task b
        holds `class_names[b * ways : (b + 1) * ways]`, images ordered class by class (-1
        for a class not in the bank)."""
        index = {name: i for i, name in enumerate(self.names)}
        rows = torch.tensor([index.get(name, -1) for name in class_names])
        return rows.view(-1, ways).repeat_interleave(per_class, dim=1)


def frozen(module: DomainClassifier) -> DomainClassifier:
    module.eval()
    for p in module.parameters():
        p.requires_grad_(False)
    return module


@torch.no_grad()
def prototype_bank(
    classifier: DomainClassifier,
    classes: Mapping[str, Tensor],
    names: Sequence[str],
    batch_size: int = 512,
) -> Tensor:
    """The normalized mean of the normalized features of each class of `names` [K, D]."""
    device = next(classifier.parameters()).device
    embed = classifier.features
    rows = []
    for name in names:
        images = classes[name]
        feats = torch.cat([
            F.normalize(embed(images[i : i + batch_size].to(device).float()), dim=1)
            for i in range(0, len(images), batch_size)
        ])  # fmt: skip
        rows.append(F.normalize(feats.mean(0), dim=0))
    return torch.stack(rows)
