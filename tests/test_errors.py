"""Library errors are neutral (they name the argument and its value) and raise, never exit; the
command layer names the config key and exits with code 2 (tests/test_bad_input.py checks
the key names through the real command line)."""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest
import torch

from metaaug.config import keys
from metaaug.data.tasks import TaskSampler
from metaaug.errors import BadValue, exits_on_user_error, message
from metaaug.fewshot.episodes import EpisodeSampler
from metaaug.gan.losses import check_loss
from metaaug.hardware import resolve_device
from metaaug.models.gan import DCGANGenerator
from metaaug.precision import resolve

CONFIG_KEY = re.compile(r"\b(dataset|gan|target|meta_algo|hardware|metric|fewshot|augment)\.\w")
CLASSES = {"a": torch.zeros(6, 1, 8, 8), "b": torch.zeros(6, 1, 8, 8)}


def test_a_bad_value_names_its_argument_or_the_key_it_came_from() -> None:
    err = BadValue("{shots}=0 must be at least 1 (class '{Odd}'); set {shots} to e.g. 5")
    assert str(err) == "shots=0 must be at least 1 (class '{Odd}'); set shots to e.g. 5"
    assert err.keyed({"shots": "target.shots"}) == (
        "target.shots=0 must be at least 1 (class '{Odd}'); set target.shots to e.g. 5"
    )
    assert message(err, keys.FEWSHOT).startswith("fewshot.shots=0")
    assert message(ValueError("as it is"), keys.TRAIN) == "as it is"


@pytest.mark.parametrize(
    ("call", "argument"),
    [(lambda: DCGANGenerator(16, 1, 30), "image_size=30"),
     (lambda: check_loss("nope"), "loss='nope'"),
     (lambda: resolve("fp8", torch.device("cpu")), "precision='fp8'"),
     (lambda: resolve_device("tpu"), "device='tpu'"),
     (lambda: EpisodeSampler(CLASSES, ["a", "b"], 1, 1, 1, seed=0), "ways=1"),
     (lambda: TaskSampler(CLASSES, ["a", "b"], support=0, query=0, seed=0), "support=0")],
)  # fmt: skip
def test_library_errors_name_the_argument_not_a_config_key(
    call: Callable[[], object], argument: str
) -> None:
    with pytest.raises(BadValue) as caught:
        call()
    assert str(caught.value).startswith(argument)
    assert not CONFIG_KEY.search(str(caught.value)), str(caught.value)
    assert CONFIG_KEY.search(caught.value.keyed(keys.TRAIN))


def test_the_command_layer_names_the_key_and_exits_with_2(
    capsys: pytest.CaptureFixture[str],
) -> None:
    @exits_on_user_error(keys=keys.TRAIN)
    def command() -> None:
        DCGANGenerator(16, 1, 30)

    with pytest.raises(SystemExit) as exited:
        command()
    assert exited.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("metaaug: error: dataset.image_size=30 is not supported")
    assert err.count("\n") == 1
