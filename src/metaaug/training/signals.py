"""SIGTERM (what SLURM sends before preemption) and SIGINT (Ctrl-C) during meta-training:
finish the current meta-iteration, save a checkpoint, exit with a one-line resume hint."""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

SIGNALS = (signal.SIGTERM, signal.SIGINT)


@contextmanager
def deferred_signals() -> Iterator[Callable[[], int]]:
    """Within the block, SIGTERM and SIGINT are recorded instead of ending the process; yields
    a function that returns the first signal received (0 while none). A second Ctrl-C ends the
    process at once. Outside the main thread (where Python cannot install handlers, e.g. a
    joblib trial) the signals keep their usual effect and the function returns 0."""
    if threading.current_thread() is not threading.main_thread():
        yield lambda: 0
        return
    received: list[int] = []

    def handler(signum: int, _frame: object) -> None:
        if received and signum == signal.SIGINT:
            raise KeyboardInterrupt
        received.append(signum)

    previous = {s: signal.signal(s, handler) for s in SIGNALS}
    try:
        yield lambda: received[0] if received else 0
    finally:
        for s, h in previous.items():
            signal.signal(s, h)
