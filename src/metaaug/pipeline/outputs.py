"""Stage: write what a run leaves on disk besides its report: the adapted GANs
(`checkpoints/finetuned/<class>.pt`), the sample grids (`samples/`) and, through
`io.images.write_synthetic`, the synthetic image folders."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor
from torch.utils.tensorboard import SummaryWriter

from metaaug.data.target import Target
from metaaug.io.checkpoint import save_atomic
from metaaug.io.synthetic import ensure_empty_dir, ensure_outputs_free, folder_name, grid, save_grid
from metaaug.models.gan import GAN

# Outputs that mark a run directory as used; Hydra's own .hydra/ and train.log are expected.
RUN_OUTPUTS = ("checkpoints", "synthetic", "samples", "tensorboard", "metrics.json")
SHOWN_PER_ARM = 8  # samples of each arm beside a target's shots in samples/overview.png


@dataclass(frozen=True)
class RunPaths:
    """Where a train run writes; `prepare` refuses folders that already hold outputs."""

    run: Path
    synthetic: Path

    @classmethod
    def prepare(cls, run_dir: Path, synthetic: str | None) -> RunPaths:
        paths = cls(run_dir, Path(synthetic) if synthetic else run_dir / "synthetic")
        ensure_outputs_free(run_dir, RUN_OUTPUTS)
        ensure_empty_dir(paths.synthetic, "generate.out")
        return paths

    @property
    def checkpoints(self) -> Path:
        return self.run / "checkpoints"

    def finetuned(self, target: Target) -> Path:
        return self.checkpoints / "finetuned" / f"{folder_name(target.class_name)}.pt"

    def samples(self, target: Target) -> Path:
        return self.run / "samples" / folder_name(target.class_name)


def save_finetuned(gan: GAN, target: Target, path: Path, extra: dict[str, Any]) -> None:
    """The main arm adapted to `target`, with the shots it adapted on and their rows in the
    dataset's class (weights-only; `metaaug generate` samples it again)."""
    save_atomic(
        {"kind": "finetuned", "gan": gan.state_dict(), "generator": gan.generator.state_dict(),
         "target": target.class_name, "shots": target.shots.cpu(),
         "shot_rows": list(target.shot_rows), **extra},
        path,
    )  # fmt: skip


def save_samples(
    folder: Path, target: Target, fakes: Mapping[str, Tensor], writer: SummaryWriter, label: str
) -> None:
    """`target_shots.png` and one 64-image grid per arm (same noise for all) under `folder`,
    and the same grids in TensorBoard (under `target/<label>/` when a run has several)."""
    k = target.shots.shape[0]
    prefix = f"target/{label}/" if label else "target/"
    save_grid(target.shots, folder / "target_shots.png", nrow=k)
    writer.add_image(f"{prefix}shots", grid(target.shots, k), 0)
    for name, fake in fakes.items():
        save_grid(fake[:64], folder / f"{name}.png")
        writer.add_image(f"{prefix}{name}", grid(fake[:64]), 0)


def overview(rows: Sequence[tuple[Target, Mapping[str, Tensor]]], path: Path) -> Path:
    """One row per target: its shots, a grey tile, then the first samples of each arm (in the
    order of the mapping), a grey tile between arms: the picture to look at first."""
    lines = []
    for target, fakes in rows:
        gap = torch.zeros_like(target.shots[:1])  # mid-grey in [-1, 1]
        parts = [target.shots.cpu()]
        for fake in fakes.values():
            parts += [gap.cpu(), fake[:SHOWN_PER_ARM].cpu()]
        lines.append(torch.cat(parts))
    width = max(line.shape[0] for line in lines)
    blank = -torch.ones_like(lines[0][:1])
    padded = [torch.cat([line, blank.expand(width - line.shape[0], -1, -1, -1)]) for line in lines]
    return save_grid(torch.cat(padded), path, nrow=width)
