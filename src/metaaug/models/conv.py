"""A Conv2d that runs as im2col + one matrix product where oneDNN's bfloat16 convolution is slow.

On CPU, oneDNN differentiates a bfloat16 convolution slowly when the output map has few pixels
and the layer is wide, which is where most of FIGR's weights sit. Measured on an AMD EPYC
(avx512_bf16), 2 threads, as the functional inner loop runs it (torch.func.grad), fastest of 5,
in ms, F.conv2d -> im2col + matmul; "train": gradients of input, weight and bias; "gp": WGAN-GP's
input gradient by vjp, then all gradients; "input": the input gradient alone (D in a G step):

    bfloat16 layer (batch)                 forward        train, gp or input
    FIGR G 1024->512 5x5 at 2x2 (4)        3.1 -> 1.6     41 -> 12 train
    FIGR D 512->1024 5x5 at 4x4 (12, 4)    7.9 -> 7.8     88 -> 44 gp, 10.8 -> 8.5 input
    residual G 512->512 3x3 at 2x2 (4)     0.45 -> 0.26   2.6 -> 1.8 train
    FIGR G 512->256 5x5 at 4x4 (4)         1.1 -> 1.6     5.2 -> 5.4 train (not lowered)
    FIGR D 256->512 5x5 at 8x8 (12)        5.6 -> 12.0    42 -> 56 gp (not lowered)

The product pays for every padded zero and copies each input pixel kh*kw times, so it wins only
while the weight is large next to the output map. The rule (`uses_matmul`): bfloat16 (the
input's dtype, or autocast's), at most 16 output pixels, and at least 2**18 weight elements per
output pixel. It lowers FIGR's layers at 2x2 and 4x4 with 1024 channels (width 64) and the
residual pair's 512-channel layers at 2x2 (width 32); DCGAN's layers are far too narrow, and
lowering its ConvTranspose2d layers (matmul + col2im) gained nothing. Under vmap with per-task
weights the product becomes a batched one and the gains hold (FIGR's G layer: 100 -> 24 ms).

float32 stays with oneDNN, which is as fast or faster once its weight-sized scratch buffers are
reused (G 1024->512 train 18.5 vs 21 ms, D 512->1024 gp 100 vs 150). With glibc's defaults every
buffer over 32 MB is mmap'ed afresh, and page faults on it (12 ms per 52 MB here) made float32
oneDNN look slow (70 ms); that is a matter for the allocator (MALLOC_MMAP_THRESHOLD_).
Other devices, groups, dilation and padding modes also take `nn.Conv2d`'s own path.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

MAX_PIXELS = 16
WEIGHT_PER_PIXEL = 2**18


def compute_dtype(x: Tensor) -> torch.dtype:
    """The dtype the convolution runs in: autocast's for a float32 input under autocast."""
    kind = x.device.type
    if x.dtype == torch.float32 and torch.is_autocast_enabled(kind):
        return torch.get_autocast_dtype(kind)
    return x.dtype


def output_side(size: int, kernel: int, stride: int, padding: int) -> int:
    return (size + 2 * padding - kernel) // stride + 1


def uses_matmul(layer: nn.Conv2d, x: Tensor) -> bool:
    """Whether `layer` on `x` runs as im2col + matmul (see the module docstring)."""
    if not (
        x.device.type == "cpu"
        and compute_dtype(x) == torch.bfloat16
        and x.dim() == 4
        and layer.groups == 1
        and layer.dilation == (1, 1)
        and layer.padding_mode == "zeros"
        and isinstance(layer.padding, tuple)
    ):
        return False
    (kh, kw), (sh, sw), (ph, pw) = layer.kernel_size, layer.stride, layer.padding
    pixels = output_side(x.shape[2], kh, sh, ph) * output_side(x.shape[3], kw, sw, pw)
    weight = layer.in_channels * layer.out_channels * kh * kw
    return 0 < pixels <= MAX_PIXELS and weight >= WEIGHT_PER_PIXEL * pixels


def conv2d_as_matmul(
    x: Tensor,
    weight: Tensor,
    bias: Tensor | None,
    stride: tuple[int, int],
    padding: tuple[int, int],
) -> Tensor:
    """F.conv2d(x, weight, bias, stride, padding) (groups 1, dilation 1) as im2col + matmul."""
    dtype = compute_dtype(x)
    x = x.to(dtype)  # under autocast: copy the image patches in the product's dtype
    n, _, h, w = x.shape
    out_channels, _, kh, kw = weight.shape
    ho, wo = output_side(h, kh, stride[0], padding[0]), output_side(w, kw, stride[1], padding[1])
    # one row per output pixel: [n * ho * wo, in_channels * kh * kw], in the weight's order
    cols = F.unfold(x, (kh, kw), padding=padding, stride=stride)
    cols = cols.transpose(1, 2).reshape(n * ho * wo, -1)
    # a single product for the forward and for each gradient (matmul on the 3-d patches would
    # pick a batched product or a folded one depending on requires_grad)
    out = F.linear(cols, weight.flatten(1), bias)
    return out.view(n, ho, wo, out_channels).permute(0, 3, 1, 2).contiguous()


class Conv2d(nn.Conv2d):
    """`nn.Conv2d` (same arguments, parameters and state dict) that computes small, wide
    bfloat16 convolutions on CPU as im2col + matmul, which oneDNN differentiates faster."""

    def forward(self, input: Tensor) -> Tensor:
        if uses_matmul(self, input):
            return conv2d_as_matmul(input, self.weight, self.bias, self.stride, self.padding)
        return super().forward(input)
