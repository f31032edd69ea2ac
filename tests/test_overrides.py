"""A command line Hydra cannot compose (a misspelt key, an unknown option, broken syntax) is one
line naming the fix and exit code 2, as every other bad input; Hydra's own report is several
lines with exit code 1."""

from __future__ import annotations

import pytest

from metaaug.config import overrides
from metaaug.errors import UserError
from tests.conftest import Runner, assert_one_line_error


@pytest.mark.parametrize(
    ("args", "fragments"),
    [(["meta_algo.iteratons=3"],
      ["meta_algo.iteratons is not a key of the train config",
       "did you mean meta_algo.iterations", "+meta_algo.iteratons=3"]),
     (["dataset=omniglt"],
      ["dataset=omniglt is not an option", "digits, fashion_mnist, imagefolder, mnist, omniglot"]),
     (["meta_algo.meta_lr=[1,"], ["cannot read meta_algo.meta_lr=[1,", "override_grammar"]),
     (["~meta_algo.nope"], ["~meta_algo.nope deletes a key the train config does not have"]),
     # the keys of the chosen option: dagan has `width`, and the hint comes from it
     (["gan=dagan", "gan.wdth=3"], ["gan.wdth is not a key", "did you mean gan.width"]),
     # every option a sweep lists is composed, not only the first
     (["-m", "dataset=digits,omniglt"], ["dataset=omniglt is not an option"])],
)  # fmt: skip
def test_a_command_line_hydra_cannot_compose_is_one_line(
    refused: Runner, args: list[str], fragments: list[str]
) -> None:
    proc = refused("train", *args)
    assert_one_line_error(proc, *fragments)
    assert "Could not override" not in proc.stderr + proc.stdout  # not Hydra's report as well


def test_each_command_checks_its_own_config(refused: Runner) -> None:
    assert_one_line_error(
        refused("fewshot", "arms.synthetic.path=x"),
        "arms.synthetic.path is not a key of the fewshot config", "fewshot.synthetic_path",
    )  # fmt: skip
    assert_one_line_error(refused("generate", "num_image=3"), "did you mean num_images")
    # a config group option a command stores itself (evaluate's metric=inception) is known
    proc = refused("evaluate", "metric=inception", "real=r", "fake=f")
    assert "is not an option" not in proc.stderr


@pytest.mark.parametrize(
    "args",
    [["+note=first try"],  # a key of one's own, as Hydra's hint says
     ["hydra/launcher=joblib", "hydra.run.dir=somewhere"],
     ["meta_algo.meta_lr=tag(log,interval(1e-4,1e-2))", "seed=range(0,3)"],
     ["dataset=digits,omniglot", "gan=dcgan,dagan", "meta_algo.meta_lr=1e-3,3e-3"],
     ["experiment=omniglot_cpu", "hparams_search=omniglot"]],
)  # fmt: skip
def test_what_hydra_composes_passes(args: list[str]) -> None:
    overrides.check("train", args)


def test_a_refusal_outside_the_command_line_is_still_one_line() -> None:
    with pytest.raises(UserError) as err:
        overrides.check("train", ["gan.loss_typo=x"])
    assert "\n" not in str(err.value) and "gan.loss_typo is not a key" in str(err.value)
