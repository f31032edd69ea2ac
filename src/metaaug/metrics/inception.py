"""The Inception metric's feature extractor: torchmetrics' Inception-v3 (torch-fidelity's port
of the TensorFlow FID network) from a local weights file.

It returns what `metaaug.metrics.image_metrics.image_metrics` wants, so FID, KID, IS, memorization
and precision/recall are computed by the same functions as for the domain metric: the 2048
pooled features, and the softmax of the unbiased logits (the input of torchmetrics'
InceptionScore). tests/test_evaluate.py checks those functions against torchmetrics'
FrechetInceptionDistance, KernelInceptionDistance and InceptionScore on one feature network.

Nothing is downloaded unless asked: the weights come from `metric.weights_path`, or from
torch's hub cache where an earlier download left them.
"""

from __future__ import annotations

import pickle
import zipfile
from pathlib import Path

import torch
from torch import Tensor

from metaaug.errors import BadValue, UserError

WEIGHTS_FILE = "weights-inception-2015-12-05-6726825d.pth"
WEIGHTS_URL = f"https://github.com/toshas/torch-fidelity/releases/download/v0.2.0/{WEIGHTS_FILE}"
FEATURES = "2048"


def _how_to_supply() -> str:
    return (
        f"download {WEIGHTS_URL} (91 MB) on a machine with internet and set "
        "{weights_path}=<that file> (or METAAUG_INCEPTION_WEIGHTS=<that file>), or use the "
        "domain classifier (metric=domain)"
    )


def weights_file(weights_path: str | None, download_weights: bool) -> Path:
    """The Inception weights to load: `weights_path`, else the hub cache's copy, else (with
    `download_weights`) a fresh download into the hub cache; one line (BadValue) otherwise."""
    if weights_path is not None:
        path = Path(weights_path).expanduser()
        if not path.is_file():
            raise BadValue(f"{{weights_path}}='{weights_path}' is not a file; {_how_to_supply()}")
        return path
    # where torch-fidelity's own download would have put the weights
    cached = Path(torch.hub.get_dir()) / "checkpoints" / WEIGHTS_FILE
    if cached.is_file():
        return cached
    if not download_weights:
        raise BadValue(
            "the Inception metric needs the Inception-v3 weights and none are set "
            f"({{weights_path}} is null, {cached} does not exist); {_how_to_supply()}, "
            "or set {download_weights}=true where this machine is online"
        )
    try:
        cached.parent.mkdir(parents=True, exist_ok=True)
        torch.hub.download_url_to_file(WEIGHTS_URL, str(cached), progress=False)
    except OSError as err:  # URLError, timeouts and a full disk are all OSErrors
        reason = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise BadValue(
            f"could not download the Inception-v3 weights ({reason}); {_how_to_supply()}"
        ) from None
    return cached


def _check_weights(path: Path) -> None:
    """Refuse a file that is not a plain state dict (loading it could run code) or that is
    damaged, in one line, before torch-fidelity loads it."""
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except (EOFError, RuntimeError, pickle.UnpicklingError, zipfile.BadZipFile, OSError) as err:
        reason = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise BadValue(
            f"{{weights_path}}='{path}' is not a readable weights file ({reason}); "
            f"{_how_to_supply()}"
        ) from None
    if not isinstance(state, dict) or "fc.weight" not in state:
        raise BadValue(
            f"{{weights_path}}='{path}' holds no Inception-v3 state dict (no fc.weight); "
            f"{_how_to_supply()}"
        )


class InceptionFeatures:
    """Images [N, C, H, W] in [-1, 1] (1 or 3 channels, any size) -> (2048 pooled features,
    softmax of the 1008 unbiased logits), float32 on the CPU.

    Images are rounded to uint8 RGB (gray planes repeated), as the network was trained on;
    the network resizes them to 299 x 299 itself.

    Example:
        >>> extract = InceptionFeatures("weights-inception-2015-12-05-6726825d.pth")
        >>> feats, probs = extract(images)  # [N, 2048], [N, 1008]
    """

    def __init__(
        self, weights: str | Path, device: torch.device | str = "cpu", batch_size: int = 64
    ) -> None:
        try:
            from torchmetrics.image.fid import NoTrainInceptionV3
            from torchmetrics.utilities.imports import _TORCH_FIDELITY_AVAILABLE
        except ImportError:
            _TORCH_FIDELITY_AVAILABLE = False
        if not _TORCH_FIDELITY_AVAILABLE:
            raise UserError(
                "metric=inception needs torchmetrics and torch-fidelity; install them with "
                "pip install 'torchmetrics>=1.0' torch-fidelity, or use metric=domain"
            )
        path = Path(weights)
        _check_weights(path)
        self.model = NoTrainInceptionV3(
            name="inception-v3-compat", features_list=[FEATURES],
            feature_extractor_weights_path=str(path),
        ).to(device)  # fmt: skip
        self.device = torch.device(device)
        self.batch_size = batch_size

    @torch.no_grad()
    def __call__(self, images: Tensor) -> tuple[Tensor, Tensor]:
        if images.ndim != 4 or images.shape[1] not in (1, 3):
            raise UserError(
                f"images of shape {tuple(images.shape)} do not fit Inception-v3, which takes "
                "[N, 1 or 3, H, W]; set {channels} to 1 or 3"
            )
        # the unbiased logits: the last layer without its bias (torch-fidelity's
        # "logits_unbiased", what torchmetrics' InceptionScore reads)
        fc = self.model.fc.weight.float()
        feats, probs = [], []
        for start in range(0, len(images), self.batch_size):
            x = images[start : start + self.batch_size].detach().float().clamp(-1, 1)
            x = ((x + 1) * 127.5).round().to(torch.uint8)
            x = x.expand(-1, 3, -1, -1) if x.shape[1] == 1 else x
            f = self.model(x.to(self.device)).float()
            feats.append(f.cpu())
            probs.append((f @ fc.T).softmax(dim=1).cpu())
        if not feats:
            return torch.zeros(0, 2048), torch.zeros(0, fc.shape[0])
        return torch.cat(feats), torch.cat(probs)
