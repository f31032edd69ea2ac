"""torch.compile of an inner-loop function, with one clear line where it cannot compile.

`hardware.compile=true` compiles the per-task inner round (D steps then G steps, vmapped over
a meta-batch or not). The first call traces and compiles (tens of seconds on a 2-core CPU the
first time; inductor caches the result on disk, so later runs reuse it); later calls run the
compiled code. If tracing or compiling fails (no C++ compiler, an op inductor cannot lower, a
torch.func transform dynamo does not trace), the error's first line is logged once and the
function runs eagerly from then on: the same numbers, the eager speed.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import torch

log = logging.getLogger(__name__)


class Compiled:
    """`fn` compiled by torch.compile on first use; `fn` itself once compiling has failed."""

    def __init__(self, fn: Callable[..., Any], what: str) -> None:
        self.fn = fn
        self.what = what
        self._compiled: Callable[..., Any] | None = torch.compile(fn, dynamic=False)

    def __call__(self, *args: Any) -> Any:
        if self._compiled is None:
            return self.fn(*args)
        try:
            return self._compiled(*args)
        except Exception as err:  # dynamo and inductor errors share no narrower base class
            first = str(err).strip().splitlines()
            log.warning(
                "hardware.compile: %s could not be compiled (%s: %s); running it eagerly",
                self.what, type(err).__name__, first[0] if first else "",
            )  # fmt: skip
            self._compiled = None
            return self.fn(*args)
