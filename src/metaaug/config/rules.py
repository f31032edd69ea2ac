"""The rule makers of the typed config (`config/schema.py`): a `Rule` says what a value may be
(a type and range, or choices) in words a one-line refusal can quote. `metaaug.config.validate`
applies each field's rule; `metaaug.config.overrides` quotes it when OmegaConf refuses a type.

A rule takes the value as OmegaConf holds it, and a value not of the declared type fails (a key
typed `Any`, or an option of one's own left untyped, is held as YAML read it). One conversion:
a boolean written as OmegaConf spells booleans (yes/no, on/off, y/n, any case) becomes the
boolean (`Rule.convert`), so `progress=off` means false.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import MISSING as NO_DEFAULT
from dataclasses import dataclass, field, fields, replace
from typing import Any

from omegaconf import MISSING, ListConfig

# torch.manual_seed takes 64 bits; fewshot seeds its episodes with seed * 1_000_003 * 101 + i,
# which stays inside them for seeds below 2**32 (numpy's legacy seeding range, too).
MAX_SEED = 2**32 - 1
OPTIMIZERS = ("sgd", "adam")


@dataclass(frozen=True)
class Rule:
    """What a key accepts: `accepted` says it in words, `ok` tests a value."""

    accepted: str
    ok: Callable[[Any], bool]
    choice: bool = False  # a name from a list: "... is not known; use ..." ("...: use ...")
    optional: bool = False  # only some options of a group have the key
    convert: Callable[[Any], Any] | None = None  # another spelling -> the value, before `ok`

    def message(self, key: str, value: Any) -> str:
        verb = " is not known;" if self.choice else ":"
        return f"{key}={value!r}{verb} use {self.accepted}"


def is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_number(v: Any) -> bool:
    return (is_int(v) or isinstance(v, float)) and math.isfinite(v)


def _is_list(v: Any) -> bool:
    return isinstance(v, ListConfig | list)


# OmegaConf's spellings of a boolean (what a `bool` field of a structured config accepts)
_SPELLINGS = {"true": True, "yes": True, "on": True, "y": True,
              "false": False, "no": False, "off": False, "n": False}  # fmt: skip


def as_boolean(v: Any) -> Any:
    """`off`, `Yes`, ... as the boolean they spell; any other value unchanged."""
    return _SPELLINGS.get(v.lower(), v) if isinstance(v, str) else v


def integer(lo: int, hi: int | None = None, note: str = "", null: bool = False) -> Rule:
    text = f"an integer >= {lo}" if hi is None else f"an integer in {lo}..{hi}"
    text += (" or null" if null else "") + (f" ({note})" if note else "")
    in_range = lambda v: is_int(v) and lo <= v and (hi is None or v <= hi)  # noqa: E731
    return Rule(text, lambda v: in_range(v) or (null and v is None))


def number(
    lo: float, hi: float | None = None, lo_open: bool = False, hi_open: bool = False
) -> Rule:
    """A finite number from `lo` (excluded when `lo_open`) to `hi`."""
    if hi is None:
        text = f"a number {'>' if lo_open else '>='} {lo}"
    else:
        text = f"a number in {'(' if lo_open else '['}{lo}, {hi}{')' if hi_open else ']'}"

    def ok(v: Any) -> bool:
        above = _is_number(v) and (v > lo if lo_open else v >= lo)
        return above and (hi is None or (v < hi if hi_open else v <= hi))

    return Rule(text, ok)


def one_of(*choices: Any) -> Rule:
    # by type too: 1 == True in Python, but progress=1 is not progress=true
    names = [str(c).lower() if isinstance(c, bool) else str(c) for c in choices]
    text = names[0] if len(names) == 1 else f"{', '.join(names[:-1])} or {names[-1]}"
    convert = as_boolean if any(isinstance(c, bool) for c in choices) else None
    ok = lambda v: any(type(v) is type(c) and v == c for c in choices)  # noqa: E731
    return Rule(text, ok, True, convert=convert)


def optional(rule: Rule) -> Rule:
    return replace(rule, optional=True)


BOOLEAN = Rule("true or false", lambda v: isinstance(v, bool), convert=as_boolean)
PROGRESS = one_of(True, False, "auto")  # off/no/... are converted (as_boolean)
TEXT = Rule("a string", lambda v: isinstance(v, str))
PATH = Rule("a path or null", lambda v: v is None or isinstance(v, str))
# a folder written to: an empty string would be the working folder, unasked
FOLDER = Rule("a folder's path", lambda v: isinstance(v, str) and v.strip() != "")
NAME = Rule("a name or null", lambda v: v is None or isinstance(v, str))
LR = number(0, lo_open=True)
BETAS = Rule(
    "a list of two numbers in [0, 1), e.g. [0.5, 0.999]",
    lambda v: _is_list(v) and len(v) == 2 and all(_is_number(b) and 0 <= b < 1 for b in v),
)
STEPS = Rule(
    "a list of integers >= 1 or null",
    lambda v: v is None or (_is_list(v) and all(is_int(s) and s >= 1 for s in v)),
)
NAMES = Rule("a list of names, e.g. [a,b]", lambda v: _is_list(v))
# a class folder's name: `class_name=7` arrives as an integer
CLASS_NAME = Rule(
    "a name or null", lambda v: v is None or (isinstance(v, str | int) and not isinstance(v, bool))
)


# --- the typed config's fields (config/groups.py, config/schema.py) ---------------------------


def key(rule: Rule, default: Any = MISSING) -> Any:
    """A value and what it may be; the YAML gives the default (MISSING: `???` until it does)."""
    return field(default=default, metadata={"rule": rule})


def node(schema: type, default: Any = NO_DEFAULT) -> Any:
    """A nested node of `schema`'s keys; `default=None`: a node that may be null, whose keys
    are then optional."""
    factory = schema if default is NO_DEFAULT else NO_DEFAULT
    return field(default=default, default_factory=factory, metadata={"node": schema})


def group(base: type) -> Any:
    """A config group's node: typed by the option's own schema (a subclass of `base`)."""
    return field(default=MISSING, metadata={"node": base, "group": True})


# --- the rules read off a schema, by dotted key (what validate applies) -------------------------


def subclasses(cls: type) -> list[type]:
    return [s for sub in cls.__subclasses__() for s in (sub, *subclasses(sub))]


def table_of(schema: type, prefix: str = "", all_optional: bool = False) -> dict[str, Rule]:
    """Dotted key -> Rule of every ruled value under `schema`; `all_optional`: under a node
    that may be absent or null."""
    rules: dict[str, Rule] = {}
    for f in fields(schema):
        path = f"{prefix}{f.name}"
        if "rule" in f.metadata:
            rules[path] = optional(f.metadata["rule"]) if all_optional else f.metadata["rule"]
        elif "node" in f.metadata:
            maybe_null = all_optional or f.default is None
            options = f.metadata.get("group", False)
            rules.update(group_table(f.metadata["node"], f"{path}.", maybe_null, options))
    return rules


def group_table(
    base: type, prefix: str = "", all_optional: bool = False, options: bool = True
) -> dict[str, Rule]:
    """The rules of `base` and (`options`) of every schema extending it: a key of some options
    alone is optional."""
    rules = table_of(base, prefix, all_optional)
    for sub in subclasses(base) if options else ():
        for k, r in table_of(sub, prefix, all_optional=True).items():
            rules.setdefault(k, r)
    return rules
