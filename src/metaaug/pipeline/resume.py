"""Verified resume: a training checkpoint records what defines its meta-training, and a run
that resumes from it must define the same (one line lists what differs)."""

from __future__ import annotations

from typing import Any

from omegaconf import DictConfig, OmegaConf

from metaaug.data.split import ClassSplit
from metaaug.errors import UserError
from metaaug.io.checkpoint import load_checked

# the config that defines meta-training; the listed leaves may change between the runs
DEFINING = ("seed", "dataset", "gan", "meta_algo", "augment")
FREE = ("dataset.root", "meta_algo.iterations", "meta_algo.vectorize")
# nodes that only instantiate what the keys beside them say (their interpolations)
DERIVED = ("algorithm", "generator", "discriminator", "transform")
FIX = "point resume at a run's checkpoints/last.pt"


def _flat(node: Any, prefix: str) -> dict[str, Any]:
    if isinstance(node, dict):
        out: dict[str, Any] = {}
        for key, value in node.items():
            out |= _flat(value, f"{prefix}.{key}" if prefix else str(key))
        return out
    return {prefix: node}


def defining(cfg: DictConfig) -> dict[str, Any]:
    """The dotted keys and resolved values of `cfg` that define its meta-training."""
    flat: dict[str, Any] = {}
    for key in DEFINING:
        node = OmegaConf.select(cfg, key)
        value = OmegaConf.to_container(node, resolve=True) if isinstance(node, DictConfig) else node
        flat |= _flat(value, key)
    return {
        k: v for k, v in flat.items()
        if k not in FREE and not any(part in DERIVED for part in k.split(".")[1:])
    }  # fmt: skip


def stamp(cfg: DictConfig, split: ClassSplit) -> dict[str, Any]:
    """What every training checkpoint of `cfg` records for a verified resume."""
    return {
        "meta_algo": str(cfg.meta_algo.name),
        "defines": defining(cfg),
        "split": {"train": list(split.train), "val": list(split.val), "test": list(split.test)},
    }


def differences(saved: dict[str, Any], now: dict[str, Any]) -> list[str]:
    """`key: saved -> now` for each key whose value differs (or exists on one side only)."""
    # a changed `name` (another algorithm, GAN, dataset) first: it explains the rest
    keys = sorted(set(saved) | set(now), key=lambda k: (not k.endswith(".name"), k))
    missing = "(absent)"
    return [
        f"{k}: {saved.get(k, missing)} -> {now.get(k, missing)}"
        for k in keys
        if saved.get(k, missing) != now.get(k, missing)
    ]


def verified_state(cfg: DictConfig, split: ClassSplit, device: Any) -> dict[str, Any]:
    """The training state at `cfg.resume`, refused (UserError, one line) when it is damaged,
    not a training checkpoint, non-finite, from a run defined otherwise, from another class
    split, or further along than `meta_algo.iterations`."""
    state = load_checked(cfg.resume, "resume", "training_state", FIX, map_location=device)
    if "defines" not in state:
        raise UserError(
            f"resume='{cfg.resume}' records no run definition (written by an older metaaug), so "
            "it cannot be verified; start a new run"
        )
    diff = differences(state["defines"], defining(cfg))
    if diff:
        shown = "; ".join(diff[:4]) + (f"; and {len(diff) - 4} more" if len(diff) > 4 else "")
        raise UserError(
            f"resume='{cfg.resume}' was meta-trained with other settings ({shown}); resume "
            "with the checkpoint's settings (its run's .hydra/overrides.yaml) or start a new run"
        )
    saved = state["split"]
    for part in ("train", "val", "test"):
        if list(saved[part]) != list(getattr(split, part)):
            moved = sorted(set(saved[part]) ^ set(getattr(split, part)))
            raise UserError(
                f"resume='{cfg.resume}' used another class split (meta-{part} differs, e.g. "
                f"'{moved[0] if moved else '?'}'); name the checkpoint's targets or start a "
                "new run, so that no meta-train class becomes a target"
            )
    done = int(state["iteration"])
    if int(cfg.meta_algo.iterations) < done:
        raise UserError(
            f"resume='{cfg.resume}' is at meta-iteration {done} but meta_algo.iterations="
            f"{cfg.meta_algo.iterations}; set meta_algo.iterations >= {done}"
        )
    return state
