"""TensorBoard helpers beyond SummaryWriter's own methods."""

from __future__ import annotations

from typing import Any

from torch.utils.tensorboard import SummaryWriter


def flatten(config: dict[str, Any]) -> dict[str, bool | int | float | str]:
    """Scalar leaves of a nested config as dotted keys (`meta_algo.meta_lr`); `_target_` and
    other private keys, lists and nulls are left out (HParams takes scalars only)."""
    flat: dict[str, bool | int | float | str] = {}

    def walk(node: Any, prefix: str) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                if not str(key).startswith("_"):
                    walk(value, f"{prefix}{key}.")
        elif isinstance(node, bool | int | float | str):
            flat[prefix[:-1]] = node

    walk(config, "")
    return flat


def log_hparams(writer: SummaryWriter, config: dict[str, Any], metrics: dict[str, float]) -> None:
    """The flattened config beside the final metrics, for TensorBoard's HParams tab."""
    final = {f"hparam/{k}": float(v) for k, v in metrics.items()}
    writer.add_hparams(flatten(config), final, run_name="hparams")
