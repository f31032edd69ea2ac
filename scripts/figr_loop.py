"""FIGR's own Reptile episode, run from a checkout of its source, for side-by-side timing.

FIGR (Clouatre & Demers 2019, github.com/LuEE-C/FIGR, MIT) trains with `train.py`'s `FIGR`
class: `reset_meta_model()` copies the initialization into the task model, then
`meta_training_loop()` takes `inner_epochs` rounds of (D step with its gradient penalty,
G step) with torch SGD on one task's images and moves the initialization with Adam. This
module imports that code from the folder the user names (nothing of it is copied here),
replaces only what an episode does not need (its dataset environment, TensorBoard writer and
command-line parser), and runs those two methods as they are.

    episode = figr_episode(Path("~/src/FIGR"), images)   # images [4, 1, 32, 32] in [0, 1]
    episode()                                             # one meta-training episode
"""

from __future__ import annotations

import importlib.util
import sys
import types
from collections.abc import Callable
from pathlib import Path

import torch


class _Env:
    """Stands in for FIGR's dataset environments: every task is the same images."""

    def __init__(self, images: torch.Tensor) -> None:
        self.images = images
        self.channels, self.height, self.length = images.shape[1:]

    def sample_training_task(self, batch_size: int) -> tuple[torch.Tensor, None]:
        # FIGR normalizes the batch in place to [-1, 1]: hand it a fresh copy each time
        return self.images[:batch_size].clone(), None


class _Writer:
    def add_scalar(self, *args: object, **kwargs: object) -> None:
        pass


def _stub_missing(names: tuple[str, ...]) -> None:
    """Empty modules for FIGR's imports that an episode never uses (docopt, tensorboardX,
    its environments module, which downloads datasets), when they are not installed."""
    for name in names:
        if name in sys.modules:
            continue
        try:
            importlib.import_module(name)
        except ImportError:
            module = types.ModuleType(name)
            module.__dict__.update(
                docopt=lambda doc: {}, SummaryWriter=_Writer,
                MnistMetaEnv=None, OmniglotMetaEnv=None, FIGR8MetaEnv=None,
            )  # fmt: skip
            sys.modules[name] = module


def load_figr(source: Path) -> types.ModuleType:
    """FIGR's train.py as a module, with its model.py importable beside it."""
    source = source.expanduser().resolve()
    if not (source / "train.py").is_file() or not (source / "model.py").is_file():
        raise SystemExit(f"--figr-source {source}: expected FIGR's train.py and model.py there")
    sys.path.insert(0, str(source))
    _stub_missing(("docopt", "tensorboardX", "environnements"))
    spec = importlib.util.spec_from_file_location("figr_train", source / "train.py")
    module = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    return module


def figr_episode(source: Path, images: torch.Tensor, inner_epochs: int = 10) -> Callable[[], None]:
    """One FIGR meta-training episode on `images` ([B, C, H, W] in [0, 1]) as a callable,
    with FIGR's defaults: DCGAN pair, z of 100, inner SGD 1e-3, outer Adam 1e-4."""
    train = load_figr(source)
    figr = train.FIGR.__new__(train.FIGR)  # FIGR.__init__ parses argv and opens datasets
    figr.neural_network, figr.z_shape = "DCGAN", 100
    figr.batch_size, figr.inner_epochs = images.shape[0], inner_epochs
    figr.inner_learning_rate, figr.outer_learning_rate = 1e-3, 1e-4
    figr.env, figr.writer, figr.eps = _Env(images), _Writer(), 0
    figr.initialize_gan()

    def episode() -> None:
        # what FIGR.training() does for each episode
        figr.reset_meta_model()
        figr.meta_training_loop()

    return episode
