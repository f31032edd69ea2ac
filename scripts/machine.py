"""The machine a benchmark ran on, as its figures name it."""

from __future__ import annotations

import platform
from pathlib import Path

import torch


def cpu_name() -> str:
    """The CPU's model name from /proc/cpuinfo and the vector instructions torch uses on it:
    a speed or thread figure names the CPU it was measured on, and one model name covers
    machines that differ there ("AMD EPYC" has been seen with AVX-512 BF16 and with AVX2
    only; `platform.processor()` says only "x86_64" on Linux)."""
    model = platform.processor() or platform.machine()
    info = Path("/proc/cpuinfo")
    if info.is_file():
        for line in info.read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    return described(model, torch.backends.cpu.get_cpu_capability(),
                     torch.cpu._is_avx512_bf16_supported(),
                     torch.cpu._is_amx_tile_supported())  # fmt: skip


def described(model: str, capability: str, bf16: bool, amx: bool) -> str:
    """`model` and the kernels torch dispatches to (`capability`: AVX512, AVX2, DEFAULT, ...),
    with the bf16 units precision=auto looks for: "AMD EPYC (AVX512, BF16)"."""
    extras = [capability] + ["BF16"] * bf16 + ["AMX"] * amx
    return f"{model} ({', '.join(extras)})"
