"""TensorBoard helpers beyond SummaryWriter's own methods."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # the writer is imported where one is made: this module stays light
    from torch.utils.tensorboard import SummaryWriter


def dotted(node: Any, prefix: str = "") -> dict[str, Any]:
    """Every leaf of a nested dict as a dotted key (`meta_algo.meta_lr`); a list is a leaf."""
    if not isinstance(node, dict):
        return {prefix: node}
    out: dict[str, Any] = {}
    for key, value in node.items():
        out |= dotted(value, f"{prefix}.{key}" if prefix else str(key))
    return out


def flatten(config: dict[str, Any]) -> dict[str, bool | int | float | str]:
    """Scalar leaves of a nested config as dotted keys; `_target_` and other private keys,
    lists and nulls are left out (HParams takes scalars only)."""
    return {k: v for k, v in dotted(config).items() if isinstance(v, bool | int | float | str)
            and not any(part.startswith("_") for part in k.split("."))}  # fmt: skip


def log_hparams(writer: SummaryWriter, config: dict[str, Any], metrics: dict[str, float]) -> None:
    """The flattened config beside the final metrics, for TensorBoard's HParams tab."""
    final = {f"hparam/{k}": float(v) for k, v in metrics.items()}
    writer.add_hparams(flatten(config), final, run_name="hparams")
