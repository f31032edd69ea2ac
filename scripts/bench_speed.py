"""Speed of one meta-training episode: `hardware.precision`, `channels_last` and `compile`, and
FIGR's own training loop side by side.

An episode is what one Reptile meta-iteration does with FIGR's recipe: one task of 4 images,
10 inner rounds of (D step with WGAN-GP, G step), inner SGD at 1e-3, the outer Adam step.
Writes the figures as JSON (`--json`, default docs/results/speed.json, which `make results`
renders into docs/results.md, naming the CPU, the threads and torch) and prints the same
tables (figures depend on the machine and its load; not a test):

1. The CPU's measured peak: GFLOP/s of a 2048^3 matmul and of a 5x5, 256->512-channel
   convolution (16 x 16, batch 12), in fp32 and bf16 (NCHW and channels-last).
2. For the digits default (DCGAN 16 x 16), the Omniglot default (DCGAN 32 x 32) and FIGR's
   pair (32 x 32, 36M weights), each variant: median episode time and meta-iterations/s over
   timed rounds after one warm-up (the first episode, which compiles, is shown apart), the
   FLOPs of an episode (torch's FLOP counter) and the share of the fp32 / bf16 peak achieved.
   The variants take their rounds in turn, so that load from other processes falls on all.
3. With `--figr-source DIR` (a checkout of github.com/LuEE-C/FIGR): FIGR's own loop on the
   same images beside metaaug fp32 and metaaug bf16, alternating rounds.
4. Where FIGR's episode goes, in fp32 and bf16: profiler self time by op kind; then each of
   its convolution layers alone, forward and backward GFLOP/s against the conv peak of its
   precision.

Runs with glibc's freed memory kept for reuse, as `metaaug` does (`hardware.reuse_memory`);
`--system-malloc` measures with the C library's defaults instead, for all loops alike.

    .venv/bin/python scripts/bench_speed.py --figr-source ~/src/FIGR    # ~15 min on 2 cores
    .venv/bin/python scripts/bench_speed.py --quick --json /tmp/speed.json   # smoke run
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.profiler import ProfilerActivity, profile
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils.flop_counter import flop_registry

from metaaug import hardware
from metaaug.data.tasks import Task
from metaaug.meta.reptile import Reptile
from metaaug.meta.settings import Adversarial, OptimizerSpec
from metaaug.models.figr import FIGRDiscriminator, FIGRGenerator
from metaaug.models.gan import GAN, DCGANDiscriminator, DCGANGenerator
from metaaug.precision import Precision

sys.path.insert(0, str(Path(__file__).parent))
from figr_loop import figr_episode
from machine import cpu_name
from render_results import speed as render_speed

REPO = Path(__file__).resolve().parents[1]
THREADS = 2


@dataclass(frozen=True)
class Setup:
    name: str
    build: Callable[[], GAN]
    size: int


SETUPS = (
    Setup("digits (DCGAN 16x16, w32)", lambda: GAN(DCGANGenerator(64, 1, 16, 32),
                                                   DCGANDiscriminator(1, 16, 32)), 16),
    Setup("omniglot (DCGAN 32x32, w32)", lambda: GAN(DCGANGenerator(64, 1, 32, 32),
                                                     DCGANDiscriminator(1, 32, 32)), 32),
    Setup("FIGR (32x32, w64)", lambda: GAN(FIGRGenerator(100, 1, 32), FIGRDiscriminator(1, 32)),
          32),
)  # fmt: skip
# (label, hardware.precision, channels_last, compile)
VARIANTS = (
    ("32", "32", False, False),
    ("bf16", "bf16", False, False),
    ("bf16-mixed", "bf16-mixed", False, False),
    ("bf16 + channels-last", "bf16", True, False),
    ("32 + compile", "32", False, True),
    ("bf16 + compile", "bf16", False, True),
)


def median_seconds(fn: Callable[[], object], rounds: int) -> float:
    times = []
    for _ in range(rounds):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def peaks() -> dict[str, float]:
    """GFLOP/s of a big matmul and a big convolution, fp32 and bf16."""
    out = {}
    for dtype, tag in ((torch.float32, "fp32"), (torch.bfloat16, "bf16")):
        a, b = torch.randn(2048, 2048, dtype=dtype), torch.randn(2048, 2048, dtype=dtype)
        a @ b
        out[f"matmul {tag}"] = 2 * 2048**3 / median_seconds(lambda a=a, b=b: a @ b, 10) / 1e9
        for cl in (False, True):
            x, w = (
                torch.randn(12, 256, 16, 16, dtype=dtype),
                torch.randn(512, 256, 5, 5, dtype=dtype),
            )
            if cl:
                x, w = (t.contiguous(memory_format=torch.channels_last) for t in (x, w))
            conv = lambda x=x, w=w: F.conv2d(x, w, padding=2)  # noqa: E731
            conv()
            flops = 2 * 12 * 512 * 256 * 25 * 16 * 16
            key = f"conv {tag}{' channels-last' if cl else ''}"
            out[key] = flops / median_seconds(conv, 10) / 1e9
    return out


def episode(setup: Setup, precision: str, channels_last: bool, compile: bool):
    """A callable running one Reptile meta-iteration of `setup` in the given format."""
    torch.manual_seed(0)
    gan = setup.build()
    images = torch.rand(1, 4, 1, setup.size, setup.size) * 2 - 1
    task = Task(images, images[:, :0], ("task",))
    prec = Precision(precision, "cpu", channels_last)
    algo = Reptile(10, OptimizerSpec("sgd", 1e-3), 1e-4, Adversarial(), precision=prec,
                   compile=compile)  # fmt: skip
    rng = torch.Generator().manual_seed(0)
    return lambda: algo.meta_step(gan, task, rng)


class FlopCount(TorchDispatchMode):
    """FLOPs of every op with a formula in torch's FLOP counter (matmuls, convolutions and
    their backwards). torch's FlopCounterMode itself tracks modules with autograd hooks that
    refuse the torch.autograd.grad calls of the eager inner loop."""

    def __init__(self) -> None:
        super().__init__()
        self.total = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        formula = flop_registry.get(func._overloadpacket)
        if formula is not None:
            self.total += formula(*args, **kwargs, out_val=out)
        return out


def episode_flops(setup: Setup) -> float:
    run = episode(setup, "32", False, False)
    with FlopCount() as counter:
        run()
    return counter.total


def table_variants(
    setups: tuple[Setup, ...], rounds: int, peak: dict[str, float]
) -> list[dict[str, Any]]:
    """Per setup its weights, the FLOPs of an episode and one row per variant."""
    fp32_peak = max(v for k, v in peak.items() if "fp32" in k)
    bf16_peak = max(v for k, v in peak.items() if "bf16" in k)
    out = []
    for setup in setups:
        flops = episode_flops(setup)
        runs, first = {}, {}
        for label, precision, cl, comp in VARIANTS:
            runs[label] = episode(setup, precision, cl, comp)
            t = time.perf_counter()
            runs[label]()
            first[label] = time.perf_counter() - t
        times: dict[str, list[float]] = {label: [] for label in runs}
        for _ in range(rounds):  # in turn, so that outside load falls on every variant
            for label, run in runs.items():
                times[label].append(median_seconds(run, 1))
        base = statistics.median(times["32"])
        rows = []
        for label, precision, cl, comp in VARIANTS:
            s = statistics.median(times[label])
            rate = flops / s / 1e9
            rows.append({"variant": label, "precision": precision, "channels_last": cl,
                         "compile": comp, "first_s": first[label], "median_s": s,
                         "times_s": times[label], "it_per_s": 1 / s, "vs_32": base / s,
                         "gflops": rate, "fp32_peak_pct": 100 * rate / fp32_peak,
                         "bf16_peak_pct": 100 * rate / bf16_peak})  # fmt: skip
            print(f"  {setup.name}, {label}: {s * 1e3:.0f} ms", flush=True)
        weights = sum(p.numel() for p in setup.build().parameters())
        out.append({"name": setup.name, "weights": weights, "gflop_per_episode": flops / 1e9,
                    "rows": rows})  # fmt: skip
    return out


def table_figr_own(source: Path, rounds: int) -> list[dict[str, Any]]:
    """FIGR's own loop beside metaaug fp32 and bf16, rounds in turn."""
    setup = SETUPS[2]
    images = torch.rand(4, 1, 32, 32, generator=torch.Generator().manual_seed(0))
    runs = {
        "FIGR's own loop (fp32)": figr_episode(source, images),
        "metaaug 32": episode(setup, "32", False, False),
        "metaaug bf16": episode(setup, "bf16", False, False),
    }
    for run in runs.values():
        run()  # warm-up
    times: dict[str, list[float]] = {label: [] for label in runs}
    for _ in range(rounds):
        for label, run in runs.items():
            times[label].append(median_seconds(run, 1))
    own = statistics.median(times["FIGR's own loop (fp32)"])
    return [{"loop": label, "median_s": statistics.median(ts), "min_s": min(ts), "max_s": max(ts),
             "times_s": ts, "speedup": own / statistics.median(ts)}
            for label, ts in times.items()]  # fmt: skip


KINDS = (
    ("convolution", ("conv", "convolution")),
    ("matmul / linear", ("addmm", "mm", "bmm", "matmul", "linear")),
    ("normalization", ("layer_norm", "group_norm", "native_layer_norm", "native_group_norm")),
    ("activation", ("prelu", "leaky_relu", "relu", "tanh", "where")),
    ("pooling / upsampling", ("pool", "upsample")),
    ("copies and casts", ("copy_", "_to_copy", "clone", "contiguous", "cat", "stack")),
)


def kind_of(op: str) -> str:
    name = op.removeprefix("aten::")
    for kind, keys in KINDS:
        if any(key in name for key in keys):
            return kind
    return "elementwise and other"


def table_profile(precision: str) -> list[dict[str, Any]]:
    """Profiler self time of one FIGR episode, by op kind, largest first."""
    run = episode(SETUPS[2], precision, False, False)
    run()
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        run()
    events = prof.key_averages()
    total = sum(e.self_cpu_time_total for e in events)
    by_kind: dict[str, float] = {}
    for e in events:
        by_kind[kind_of(e.key)] = by_kind.get(kind_of(e.key), 0.0) + e.self_cpu_time_total
    return [{"kind": kind, "ms": us / 1e3, "share_pct": 100 * us / total}
            for kind, us in sorted(by_kind.items(), key=lambda kv: -kv[1])]  # fmt: skip


def figr_convs() -> list[tuple[str, nn.Conv2d, torch.Size]]:
    """FIGR's convolution layers with the input each sees in a D step (D: batch 12, real,
    fake and interpolates) or a G step (G: batch 4), heaviest first."""
    torch.manual_seed(0)
    gan = SETUPS[2].build()
    seen: list[tuple[str, nn.Conv2d, torch.Size]] = []
    steps = ((gan.discriminator, (12, 1, 32, 32), "D"), (gan.generator, (4, 100), "G"))
    for net, batch, tag in steps:
        hooks = [
            m.register_forward_hook(lambda m, i, o, tag=tag: seen.append((tag, m, i[0].shape)))
            for m in net.modules()
            if isinstance(m, nn.Conv2d)
        ]
        with torch.no_grad():
            net(torch.randn(batch))
        for h in hooks:
            h.remove()
    return sorted(seen, key=lambda s: -layer_flops(s[1], s[2]))


def layer_flops(conv: nn.Conv2d, shape: torch.Size) -> float:
    """2 x multiply-adds of one forward ('same' 5x5 convolutions: the output keeps the size)."""
    n, _, h, w = shape
    kh, kw = conv.kernel_size
    return 2 * n * conv.out_channels * h * w * conv.in_channels * kh * kw


def table_layers(peak: dict[str, float]) -> list[dict[str, Any]]:
    """Each FIGR convolution alone, forward and forward + backward (input and weight
    gradients: twice a forward's FLOPs), in fp32 and bf16, against the peak of its precision;
    in bf16 the layers `models/conv.py` lowers run as im2col + matmul, as in training."""
    rows = []
    for tag, conv, shape in figr_convs():
        flops = layer_flops(conv, shape)
        rates = []
        for dtype, name in ((torch.float32, "fp32"), (torch.bfloat16, "bf16")):
            top = max(v for k, v in peak.items() if k.startswith(f"conv {name}"))
            layer = copy.deepcopy(conv).to(dtype)
            x = torch.randn(shape, dtype=dtype, requires_grad=True)
            fwd = median_seconds(lambda layer=layer, x=x: layer(x), 5)

            def both(layer=layer, x=x) -> None:
                y = layer(x)
                torch.autograd.grad(y, (x, layer.weight), torch.ones_like(y))

            both()
            full = median_seconds(both, 5)
            for what, f, s in (("fwd", flops, fwd), ("fwd+bwd", 3 * flops, full)):
                rate = f / s / 1e9
                rates.append({"precision": name, "pass": what, "gflops": rate,
                              "peak_pct": 100 * rate / top})  # fmt: skip
        rows.append({"layer": f"{tag} {conv.in_channels}->{conv.out_channels}",
                     "input": f"{shape[0]}x{shape[2]}x{shape[3]}", "gflop": flops / 1e9,
                     "rates": rates})  # fmt: skip
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--figr-source", type=Path, help="a checkout of github.com/LuEE-C/FIGR")
    parser.add_argument("--rounds", type=int, default=5, help="timed episodes per variant")
    parser.add_argument("--quick", action="store_true", help="smoke run: digits, 1 round")
    parser.add_argument(
        "--system-malloc", action="store_true", help="glibc's allocator as it is (no reuse)"
    )
    parser.add_argument("--threads", type=int, default=THREADS, help="torch intra-op threads")
    parser.add_argument("--json", default=str(REPO / "docs" / "results" / "speed.json"))
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    reuse = not args.system_malloc and hardware.reuse_host_memory()
    rounds = 1 if args.quick else args.rounds
    data: dict[str, Any] = {
        "bench": "speed",
        "quick": args.quick,
        "cpu": cpu_name(),
        "threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "reuse_memory": bool(reuse),
        "load": [round(x, 2) for x in os.getloadavg()],
        "rounds": rounds,
    }
    print(
        f"torch {torch.__version__}, {args.threads} threads, load average {data['load']}, "
        f"freed memory {'reused' if reuse else 'returned (glibc defaults)'}",
        flush=True,
    )
    peak = peaks()
    data["peaks"] = peak
    data["setups"] = table_variants(SETUPS[:1] if args.quick else SETUPS, rounds, peak)
    # FIGR's loop is imported from a checkout of FIGR: without one the part is skipped
    data["figr_own"] = None
    if args.figr_source is not None:
        data["figr_own"] = table_figr_own(args.figr_source, rounds)
    data["profile"] = {} if args.quick else {p: table_profile(p) for p in ("32", "bf16")}
    data["layers"] = [] if args.quick else table_layers(peak)
    path = Path(args.json)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=1, allow_nan=False) + "\n")
    print(f"\n{render_speed(data)}\n\nwrote {path}")


if __name__ == "__main__":
    main()
