"""Verified resume: a training checkpoint records which arm it trains (the main arm's
`meta_algo`, or a baseline's `baselines.<name>`) and what defines that training, and a run that
resumes from it must define the same (one line lists what differs).

`resume=` names the main arm's `checkpoints/last.pt`; each baseline resumes from its own
`checkpoints/baseline_<name>/last.pt` beside it where the interrupted run got that far, so a
run stopped while it trained a baseline loses nothing either.

`metaaug fewshot resume=<run folder>` takes up the episodes an interrupted fewshot run scored
(its `episodes.jsonl`, `metaaug.fewshot.journal`), verified the same way: everything but the
keys that do not change an episode's figures must be as that run had it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from metaaug.data.split import ClassSplit
from metaaug.errors import UserError
from metaaug.fewshot import journal
from metaaug.io.checkpoint import load_checked
from metaaug.io.tensorboard import dotted

# the config that defines meta-training; the listed leaves may change between the runs
DEFINING = ("seed", "dataset", "gan", "meta_algo", "augment")
FREE = ("dataset.root", "dataset.source.root", "meta_algo.iterations", "meta_algo.vectorize")
# nodes that only instantiate what the keys beside them say (their interpolations)
DERIVED = ("algorithm", "generator", "discriminator", "transform")
# keys added since checkpoints were first written, with the value that leaves training as
# it was: recorded only when set otherwise, so an older checkpoint of a run without them resumes
ADDED = {"gan.diversity": 0.0}
MAIN = "meta_algo"  # the main arm's node
FIX = "point resume at a run's checkpoints/last.pt"


def defining(cfg: DictConfig, arm: str = MAIN) -> dict[str, Any]:
    """The dotted keys and resolved values of `cfg` that define the meta-training of `arm`
    (a baseline's node joins the run's)."""
    flat: dict[str, Any] = {}
    free = (*FREE, f"{arm}.iterations")
    for key in DEFINING if arm == MAIN else (*DEFINING, arm):
        node = OmegaConf.select(cfg, key)
        value = OmegaConf.to_container(node, resolve=True) if isinstance(node, DictConfig) else node
        flat |= dotted(value, key)
    return {
        k: v for k, v in flat.items()
        if k not in free and not any(part in DERIVED for part in k.split(".")[1:])
        and not (k in ADDED and v == ADDED[k])
    }  # fmt: skip


def stamp(cfg: DictConfig, split: ClassSplit, arm: str = MAIN) -> dict[str, Any]:
    """What every training checkpoint of `arm` in `cfg` records for a verified resume."""
    return {
        "arm": arm,
        "meta_algo": cfg.meta_algo.name,
        "defines": defining(cfg, arm),
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


def first_few(diff: list[str], n: int = 4) -> str:
    """The first `n` differences for a one-line message, and how many more there are."""
    return "; ".join(diff[:n]) + (f"; and {len(diff) - n} more" if len(diff) > n else "")


def checkpoint_of(cfg: DictConfig, arm: str, checkpoint_dir: Path) -> Path | None:
    """The checkpoint `arm` resumes from: `resume` itself for the main arm, for a baseline
    its last.pt beside `resume` under the folder name it has in this run (None where the
    interrupted run had not begun it: the baseline starts afresh)."""
    if not cfg.resume:
        return None
    if arm == MAIN:
        return Path(cfg.resume)
    path = Path(cfg.resume).parent / checkpoint_dir.name / "last.pt"
    return path if path.is_file() else None


def verified_state(
    cfg: DictConfig, split: ClassSplit, device: Any, arm: str, path: Path
) -> dict[str, Any]:
    """The training state of `arm` at `path` (`checkpoint_of`), refused (UserError, one line)
    when it is damaged, not a training checkpoint, non-finite, another arm's, from a run
    defined otherwise, from another class split, or further along than the arm's
    `iterations`."""
    state = load_checked(path, "resume", "training_state", FIX, map_location=device)
    what = f"resume='{path}'" if arm == MAIN else f"the {arm} checkpoint '{path}' beside resume"
    if "defines" not in state:
        raise UserError(
            f"{what} records no run definition (written by an older metaaug), so it cannot be "
            "verified; start a new run"
        )
    trained = state.get("arm", MAIN)
    if trained != arm:
        raise UserError(
            f"{what} holds the meta-training of {trained}, not of {arm}; {FIX} (each baseline "
            "resumes from its checkpoints/baseline_<name>/last.pt beside it)"
        )
    # a key freed since the checkpoint was written does not count against it
    recorded = {k: v for k, v in state["defines"].items() if k not in FREE}
    diff = differences(recorded, defining(cfg, arm))
    if diff:
        raise UserError(
            f"{what} was meta-trained with other settings ({first_few(diff)}); resume with the "
            "checkpoint's settings (its run's .hydra/overrides.yaml) or start a new run"
        )
    saved = state["split"]
    for part in ("train", "val", "test"):
        if list(saved[part]) != list(getattr(split, part)):
            moved = sorted(set(saved[part]) ^ set(getattr(split, part)))
            raise UserError(
                f"{what} used another class split (meta-{part} differs, e.g. "
                f"'{moved[0] if moved else '?'}'); name the checkpoint's targets or start a "
                "new run, so that no meta-train class becomes a target"
            )
    done, planned = int(state["iteration"]), int(OmegaConf.select(cfg, arm).iterations)
    if planned < done:
        raise UserError(
            f"{what} is at meta-iteration {done} but {arm}.iterations={planned}; set "
            f"{arm}.iterations >= {done}"
        )
    return state


# what may differ from the interrupted fewshot run: how the episodes are shared and shown,
# how many there are (episode i is the same either way), and where the dataset lies
FEWSHOT_FREE = ("resume", "progress", "fewshot.workers", "fewshot.episodes", "dataset.root",
                "dataset.source.root")  # fmt: skip
# the journal header's digest of what the arms and learners hold (`fewshot.fingerprint`),
# checked once they are built (`check_weights`); where a journal has it, the files they came
# from may move too
WEIGHTS = "weights"
HELD = ("arms.gan.checkpoint", "fewshot.synthetic_path", "metric.cache_dir")


def fewshot_defining(cfg: DictConfig) -> dict[str, Any]:
    """The dotted keys and resolved values of a fewshot config that define its episodes'
    figures."""
    flat = dotted(OmegaConf.to_container(cfg, resolve=True))
    return {k: v for k, v in flat.items() if k not in FEWSHOT_FREE}


def taken_episodes(cfg: DictConfig) -> journal.Taken:
    """The episodes the fewshot run at `resume` scored (none without `resume`), refused
    (UserError, one line) when its journal is missing or damaged, or its run was defined
    otherwise."""
    if not cfg.resume:
        return {}
    path = Path(cfg.resume)
    path = path / journal.FILE if path.is_dir() else path
    if not path.is_file():
        raise UserError(
            f"resume='{cfg.resume}' holds no {journal.FILE}; point resume at the folder of an "
            "interrupted metaaug fewshot run"
        )
    defines, taken = journal.read(path)
    free = (*FEWSHOT_FREE, WEIGHTS, *(HELD if WEIGHTS in defines else ()))
    recorded = {k: v for k, v in defines.items() if k not in free}
    diff = differences(recorded, {k: v for k, v in fewshot_defining(cfg).items() if k not in free})
    if diff:
        raise UserError(
            f"resume='{cfg.resume}' scored its episodes with other settings "
            f"({first_few(diff)}); "
            "resume with that run's overrides (its .hydra/overrides.yaml) or start a new run"
        )
    return taken


def check_weights(cfg: DictConfig, weights: dict[str, str]) -> None:
    """Refuse (UserError, one line) to take up the episodes of `resume` when the arms and
    learners built now hold other weights than those that scored them (`weights`, by
    `arms.<name>` / `learners.<name>`): a GAN checkpoint trained again at the same path, a
    backbone cached on another machine. A journal of an older metaaug records none: its
    files' paths were checked instead (`taken_episodes`)."""
    if not cfg.resume:
        return
    path = Path(cfg.resume)
    defines, _ = journal.read(path / journal.FILE if path.is_dir() else path)
    recorded = defines.get(WEIGHTS)
    if recorded is None:
        return
    changed = sorted(k for k in set(recorded) | set(weights) if recorded.get(k) != weights.get(k))
    if changed:
        raise UserError(
            f"resume='{cfg.resume}' scored its episodes with other weights in "
            f"{', '.join(changed)} (a checkpoint or backbone changed since); restore them, or "
            "start a new run without resume"
        )
