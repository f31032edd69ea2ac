"""The command line's overrides composed once before Hydra runs the command, so that a misspelt
key (`meta_algo.iteratons=3`), an unknown option (`dataset=omniglt`) or an override Hydra cannot
parse is one line naming the fix (UserError: exit 2), not Hydra's several-line report with
exit code 1.

A value OmegaConf refuses for its key's type (`seed=abc`: the typed schema,
`metaaug.config.schema`) is refused in the words of the key's rule. A sweep (`-m seed=0,1`,
`choice(...)`, `range(...)`) is composed with each of its values (up to 20), each in a job
with the other sweeps at their first values, and each job's values get the command's rules
(ranges, choices, keys that must agree) before the first job runs; `interval(...)` has no
values to list and is composed with a placeholder: only the key is checked.
"""

from __future__ import annotations

import copy
import difflib
import re
from collections.abc import Iterator
from typing import Any

from hydra import compose, initialize_config_module
from hydra.core.hydra_config import HydraConfig
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.errors import HydraException
from omegaconf import DictConfig, OmegaConf, open_dict
from omegaconf.errors import OmegaConfBaseException, ValidationError

from metaaug.config.schema import rule_for
from metaaug.errors import UserError

SWEEP_VALUES_CHECKED = 20  # the values of one sweep composed one by one, at most
HYDRA_SYNTAX = "https://hydra.cc/docs/advanced/override_grammar/basic"
# where a command writes its images when told a folder of their own
OUT_KEYS = {"train": "generate.out", "generate": "out"}


def _compositions(overrides: list[str]) -> tuple[list[list[str]], list[str] | None]:
    """The jobs of a sweep to compose, and the overrides that show the keys of `interval(...)`
    sweeps (None without one). A job is the command line with each sweep at its first value
    and one sweep at a later one (up to SWEEP_VALUES_CHECKED of each): every value is a job's,
    with the other keys as Hydra's sweeper combines them. `interval(...)` has no values to
    list: its key is composed with a placeholder, and left out of the jobs."""
    parsed = OverridesParser.create().parse_overrides(overrides)
    plain: list[str | None] = []  # the first job; None: an interval(...) sweep's place
    shown: list[str] = []  # the first job with a placeholder for each interval(...)
    sweeps: list[tuple[int, str]] = []
    for override in parsed:
        if not override.is_sweep_override():
            plain.append(override.input_line)
            shown.append(override.input_line)
            continue
        key = override.get_key_element()
        try:
            values = [str(v) for v in override.sweep_string_iterator()]
        except HydraException:  # interval(...): no values to list
            plain.append(None)
            shown.append(f"{key}=0")
            continue
        plain.append(f"{key}={values[0]}")
        shown.append(plain[-1])
        # each option of a group must exist, each value of a key must fit its type and rule
        sweeps.extend((len(plain) - 1, f"{key}={v}") for v in values[1:SWEEP_VALUES_CHECKED])
    jobs = [[o for o in plain if o is not None]]
    for i, changed in sweeps:
        jobs.append([o for o in [*plain[:i], changed, *plain[i + 1 :]] if o is not None])
    return jobs, (shown if None in plain else None)


def _check_values(config_name: str, cfg: DictConfig) -> None:
    """The checks of a job's values that read no file and hold on any machine
    (`metaaug.config.validate`; not memory or cores: a launcher may run the jobs elsewhere),
    as the command makes them first: a sweep's bad value is refused before its first job, not
    when its own job starts after the others ran."""
    from metaaug.config import validate  # (imports torch: not for a command line alone)

    HydraConfig.instance().set_config(cfg)  # `${hydra:...}` resolves as in the job
    job = copy.deepcopy(cfg)
    with open_dict(job):
        del job["hydra"]  # what Hydra hands the command
    if config_name in ("train", "fewshot") or (
        config_name == "evaluate" and job.metric.name == "domain"  # as config.evaluate.check
    ):
        validate.check_config(job, config_name, machine=False)
    else:
        validate.check_keys(job, config_name)


def _keys(cfg: object, prefix: str = "") -> Iterator[str]:
    """The path of every value of `cfg` (not of the nodes holding them), unresolved."""
    for key, value in cfg.items_ex(resolve=False) if isinstance(cfg, DictConfig) else ():
        if isinstance(value, DictConfig):
            yield from _keys(value, f"{prefix}{key}.")
        else:
            yield f"{prefix}{key}"


def _unknown_key(config_name: str, key: str, overrides: list[str]) -> str:
    """`key` is not in the config: the closest keys that are, composed with the same group
    choices (`gan=dagan` has keys `gan=dcgan` lacks)."""
    groups = [o for o in overrides
              if "=" in o and "." not in (name := o.split("=", 1)[0]) and name != key]  # fmt: skip
    try:
        known = list(_keys(compose(config_name, overrides=groups)))
    except Exception:  # a hint only: the refusal stands without it
        known = []
    # a key whose last name is this key's last two joined (arms.synthetic.path ->
    # fewshot.synthetic_path) first: near siblings would otherwise outrank it
    joined = "_".join(key.split(".")[-2:])
    same = [k for k in known if k.rsplit(".", 1)[-1] == joined]
    close = same + [k for k in difflib.get_close_matches(key, known, n=3, cutoff=0.7)
                    if k not in same]  # fmt: skip
    return f"; did you mean {' or '.join(close[:3])}?" if close else ""


def _typed(err: Exception, config_name: str, overrides: list[str]) -> str | None:
    """A value OmegaConf refused for its key's type, in the words of the key's rule."""
    cause = err if isinstance(err, ValidationError) else err.__cause__
    if not isinstance(cause, ValidationError) or not cause.full_key:
        return None
    key, value = re.sub(r"\[\d+\]$", "", cause.full_key), cause.value
    if key != cause.full_key:  # an item of a list: the list as the command line wrote it
        written = [o for o in OverridesParser.create().parse_overrides(overrides)
                   if o.key_or_group == key]  # fmt: skip
        value = written[-1].value() if written else value
    rule = rule_for(config_name, key)
    if rule is None:
        return f"{key}={value!r}: {str(cause).splitlines()[0]}"
    return rule.message(key, value)


def _one_line(err: Exception, config_name: str, overrides: list[str]) -> str:
    if typed := _typed(err, config_name, overrides):
        return typed
    text = str(err)
    if m := re.match(r"Could not override '([^']+)'\.\nTo append to your config use (\S+)", text):
        key, append = m.groups()
        hint = _unknown_key(config_name, key, overrides)
        return (f"{key} is not a key of the {config_name} config{hint} (a key of your own: "
                f"{append})")  # fmt: skip
    if m := re.search(r"Could not find '([^']+)/([^']+)'\n\nAvailable options in '[^']+':\n"
                      r"((?:\t.*\n?)*)", text):  # fmt: skip
        group, option, listed = m.groups()
        options = ", ".join(line.strip() for line in listed.splitlines() if line.strip())
        return f"{group}={option} is not an option; use one of: {options}"
    if m := re.match(r"Could not delete from config\. '([^']+)' does not exist\.", text):
        return f"~{m[1]} deletes a key the {config_name} config does not have; drop it"
    first = text.strip().splitlines()[0] if text.strip() else type(err).__name__
    unparsable = _unparsable(overrides)
    if unparsable and (quoted := _quoted(unparsable)):
        return (f"cannot read {unparsable}: a value with spaces or non-ASCII letters is "
                f"quoted for Hydra inside the shell's quotes: '{quoted}'")  # fmt: skip
    return f"cannot read {unparsable or 'the overrides'} ({first}); see {HYDRA_SYNTAX}"


def _quoted(override: str) -> str | None:
    """`key=value` with `value` in Hydra's quotes, when quoting is what it lacks: a path with a
    space or a non-ASCII letter, which the grammar reads only as a quoted string."""
    key, sep, value = override.partition("=")
    plain = value.isascii() and not any(c.isspace() for c in value)
    if not sep or plain or any(c in value for c in "\"'[]{}"):  # quotes: the shell's too
        return None
    return f'{key}="{value}"'


def _unparsable(overrides: list[str]) -> str | None:
    """The first override Hydra's grammar cannot read, alone."""
    parser = OverridesParser.create()
    for override in overrides:
        try:
            parser.parse_overrides([override])
        except HydraException:
            return override
    return None


def composed(config_name: str, overrides: list[str], hydra: bool = False) -> DictConfig:
    """`config_name` composed with `overrides` as Hydra would (`hydra`: with its own node);
    UserError in one line for what Hydra refuses."""
    with initialize_config_module("metaaug.conf", version_base="1.3"):
        try:
            return compose(config_name, overrides=overrides, return_hydra_config=hydra)
        except (HydraException, OmegaConfBaseException) as err:
            raise UserError(_one_line(err, config_name, overrides)) from None


def check(config_name: str, overrides: list[str]) -> None:
    """Compose `config_name` with `overrides` (Hydra's flags already removed) as Hydra would,
    once per value of a sweep (up to SWEEP_VALUES_CHECKED); raise UserError in one line for
    what Hydra would refuse, and, in a sweep, for what the command would refuse in a job's
    values (its ranges and choices: `_check_values`)."""
    try:
        jobs, shown = _compositions(overrides)
    except HydraException as err:  # an override the grammar cannot read
        raise UserError(_one_line(err, config_name, overrides)) from None
    if shown is not None:  # the keys of interval(...) sweeps
        composed(config_name, shown, hydra=True)
    outs = []
    for job in jobs:
        cfg = composed(config_name, job, hydra=True)
        if len(jobs) > 1 or shown is not None:  # one job checks its values itself
            _check_values(config_name, cfg)
        if config_name in OUT_KEYS:
            outs.append(_written(cfg, OUT_KEYS[config_name]))
    _shared_out(config_name, outs)


def _written(cfg: DictConfig, key: str) -> Any:
    """`key`'s value as written (None for an interpolation, which may differ per job)."""
    head, _, leaf = key.rpartition(".")
    node = OmegaConf.select(cfg, head) if head else cfg
    return None if OmegaConf.is_interpolation(node, leaf) else node.get(leaf)


def _shared_out(config_name: str, outs: list[Any]) -> None:
    """Every job of a sweep given one out= folder: a folder is written once, so the second
    job would be refused after the first ran; refused before the first."""
    if len(outs) > 1 and outs[0] is not None and len(set(outs)) == 1:
        key = OUT_KEYS[config_name]
        raise UserError(
            f"{key}={outs[0]} is the folder of every job of this sweep, and a folder is written "
            f"once; drop {key} (each job then writes synthetic/ in its own job folder)"
        )
