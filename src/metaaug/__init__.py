"""metaaug: meta-learned GAN initializations for few-shot data augmentation.

`metaaug.load`, `metaaug.sample`, `metaaug.adapt`, `metaaug.evaluate` and
`metaaug.read_images` are the Python API (`metaaug.api`), imported on first use so that
`import metaaug` (and `metaaug --help`) stays free of torch.
"""

from typing import Any

__version__ = "0.1.0"

_API = ("load", "sample", "adapt", "evaluate", "read_images")


def __getattr__(name: str) -> Any:
    if name in _API:
        from metaaug import api

        return getattr(api, name)
    raise AttributeError(f"module 'metaaug' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *_API])
