"""The number format GAN training computes in (`hardware.precision`, `hardware.channels_last`).

Precisions:
- "32": float32 throughout.
- "bf16": the networks compute in bfloat16 (weights, activations, gradients) and every weight
  an optimizer updates keeps an fp32 master copy. Each step applies its update to the fp32
  weights and casts them down for the next forward: a Reptile step of 1e-4, or an inner SGD
  step of 1e-3 * grad, is below bf16's resolution for a weight near 1 (2**-7) and would be
  lost if the weights themselves were bf16.
- "bf16-mixed": torch.autocast with bfloat16: fp32 weights; matmuls and convolutions in bf16,
  the rest in fp32 (slower than "bf16" on a CPU: every op casts its inputs).
- "16-mixed": torch.autocast with float16, for GPUs without bf16 units; no loss scaling.
  Dynamic loss scaling skips a step when its gradients overflow, a data-dependent branch that
  torch.func.vmap cannot batch, and a static scale of 1024 overflowed within three inner rounds
  on the digits DCGAN. On a CPU, float16 is emulated (slower than fp32) and its critic
  gradients overflowed on FIGR's pair: it is allowed there, with a warning, for testing.
- "auto": "bf16" where the device has bf16 units (a CUDA device that supports bf16; a CPU with
  AVX-512 BF16 or AMX) and the GAN is large enough to gain from them (`AUTO_MIN_WEIGHTS`),
  "32" elsewhere.

In every precision, these stay fp32: the losses (the discriminator's scores are cast up before
their reductions), the WGAN-GP and R1 gradient norms, the optimizer states and master
weights, the outer (meta) update, second-order MAML's and Meta-SGD's inner loops (see
`metaaug.meta.maml`), sampling of the synthetic images, and every metric.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Mapping
from dataclasses import dataclass

import torch
from torch import Tensor

from metaaug.errors import BadValue

log = logging.getLogger(__name__)

PRECISIONS = ("32", "bf16", "bf16-mixed", "16-mixed", "auto")
# Below about a million weights a training step is bound by per-op overhead, not arithmetic, and
# bf16's casts cost what its faster products save. Reptile episode, 2-core AMD EPYC, 32 -> bf16:
# digits DCGAN (0.13M weights) 48 -> 55 ms, Omniglot DCGAN (0.47M) 85 -> 93 ms, DCGAN width 64
# (1.6M) 222 -> 205 ms, width 128 (5.8M) 705 -> 537 ms, FIGR (36M) 3.8 -> 2.4 s.
AUTO_MIN_WEIGHTS = 1_000_000


@dataclass(frozen=True)
class Precision:
    """How the networks of one training loop compute: their dtype, autocast, memory format."""

    name: str = "32"
    device_type: str = "cpu"
    channels_last: bool = False

    def __post_init__(self) -> None:
        if self.name not in PRECISIONS or self.name == "auto":
            raise ValueError(f"precision {self.name!r} is not resolved; use resolve()")

    @property
    def dtype(self) -> torch.dtype | None:
        """The dtype of the working copies of the weights and of the images fed to them; None
        keeps the masters' dtype (fp32, or float64 in gradient checks)."""
        return torch.bfloat16 if self.name == "bf16" else None

    def autocast(self) -> contextlib.AbstractContextManager:
        dtype = {"bf16-mixed": torch.bfloat16, "16-mixed": torch.float16}.get(self.name)
        if dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device_type, dtype=dtype)

    def cast(self, t: Tensor) -> Tensor:
        """`t` in the compute format: floating point to `dtype`, images and convolution weights
        (4-d, or stacks of them) to channels-last.

        Differentiable (gradients flow back to the fp32 master in fp32) and free when
        nothing changes: in fp32 with the default format it returns `t` itself.
        """
        if self.dtype is not None and t.is_floating_point() and t.dtype != self.dtype:
            t = t.to(self.dtype)
        if self.channels_last and t.dim() >= 4:
            t = channels_last(t)
        return t

    def cast_all(self, params: Mapping[str, Tensor]) -> dict[str, Tensor]:
        return {k: self.cast(v) for k, v in params.items()}


FP32 = Precision()


def widened(t: Tensor) -> Tensor:
    """`t` in at least fp32 (a bf16 or float16 tensor cast up; fp32 and float64 as they are)."""
    return t.float() if t.is_floating_point() and t.element_size() < 4 else t


def channels_last(t: Tensor) -> Tensor:
    """`t` with its last three dims (C, H, W) stored channels-last: torch.channels_last for a
    4-d tensor, the same layout per item for a stack of them (a meta-batch of task images)."""
    return t.movedim(-3, -1).contiguous().movedim(-1, -3)


def bf16_is_fast(device: torch.device) -> bool:
    """Whether `device` has bf16 arithmetic units (not merely bf16 emulation)."""
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported(including_emulation=False)
    if device.type == "cpu":
        return bool(torch.cpu._is_avx512_bf16_supported() or torch.cpu._is_amx_tile_supported())
    return False


def resolve(
    name: str | int, device: torch.device, channels_last: bool = False, weights: int = 0
) -> Precision:
    """The precision `hardware.precision=name` means on `device` for a GAN of `weights`
    weights ("auto" decided here)."""
    name = str(name)
    if name not in PRECISIONS:
        raise BadValue(f"{{precision}}={name!r} is not known; use one of {', '.join(PRECISIONS)}")
    if name == "auto":
        name = "bf16" if bf16_is_fast(device) and weights >= AUTO_MIN_WEIGHTS else "32"
    if name == "16-mixed" and device.type != "cuda":
        log.warning(
            "hardware.precision=16-mixed on %s: float16 is emulated there (slower than 32) and "
            "overflows in some critics (FIGR's); bf16 is the fast format where the CPU has it",
            device.type,
        )
    return Precision(name, device.type, bool(channels_last))
