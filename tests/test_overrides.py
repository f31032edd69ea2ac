"""A command line Hydra cannot compose (a misspelt key, an unknown option, broken syntax) is one
line naming the fix and exit code 2, as every other bad input; Hydra's own report is several
lines with exit code 1."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from metaaug.config import overrides
from metaaug.errors import UserError
from tests.conftest import TINY, Runner, assert_one_line_error


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
     # a job's values are checked with the keys after them: 150 is within finetune.steps=200
     ["-m", "finetune.eval_steps=[50],[150]", "finetune.steps=200"],
     # cores (and memory) are the machine's that runs a job: a launcher may run it elsewhere
     ["-m", "seed=0,1", "hardware.threads=4096"],
     # an interval(...) has no value to check: its placeholder is not one of the job's
     ["meta_algo.meta_lr=interval(0,1e-2)", "seed=0,1"],
     ["experiment=omniglot_cpu", "hparams_search=omniglot"]],
)  # fmt: skip
def test_what_hydra_composes_passes(args: list[str]) -> None:
    overrides.check("train", [a for a in args if a != "-m"])


def test_a_bad_value_anywhere_in_a_sweep_is_refused_before_the_first_job(
    refused: Runner, tmp_path: Path
) -> None:
    """The third value was refused when job 2 started, after jobs 0 and 1 ran to
    the end, and their half sweep blocked the corrected command's sweep directory."""
    sweep = tmp_path / "sweep"
    proc = refused("train", "-m", *TINY, "meta_algo.meta_lr=1e-4,3e-4,-1",
                   f"hydra.sweep.dir={sweep}")  # fmt: skip
    assert_one_line_error(proc, "meta_algo.meta_lr=-1.0: use a number > 0")
    assert not sweep.exists()


@pytest.mark.parametrize(
    ("command", "args", "fragment"),
    [("train", ["seed=0,1", "validation.every=2,-1"], "validation.every=-1"),
     ("train", ["dataset.image_size=16,20"], "dataset.image_size=20 is not supported"),
     ("fewshot", ["fewshot.shots=1,0"], "fewshot.shots=0: use an integer >= 1"),
     ("generate", ["checkpoint=c.pt", "num_images=2,0"], "num_images=0: use an integer >= 1"),
     ("evaluate", ["real=a", "fake=b", "k=3,-1"], "k=-1: use an integer >= 1")],
)  # fmt: skip
def test_each_command_checks_every_job_of_a_sweep(
    command: str, args: list[str], fragment: str
) -> None:
    with pytest.raises(UserError, match=re.escape(fragment)):
        overrides.check(command, args)


def test_a_refusal_outside_the_command_line_is_still_one_line() -> None:
    with pytest.raises(UserError) as err:
        overrides.check("train", ["gan.loss_typo=x"])
    assert "\n" not in str(err.value) and "gan.loss_typo is not a key" in str(err.value)


@pytest.mark.parametrize(
    ("command", "args", "refused_key"),
    [("generate", ["checkpoint=c.pt", "seed=0,1", "out=/tmp/x"], "out"),
     ("train", ["seed=0,1", "generate.out=/tmp/x"], "generate.out"),
     ("generate", ["checkpoint=c.pt", "seed=0,1", "out=/tmp/x_${seed}"], None),
     ("generate", ["checkpoint=c.pt", "seed=0,1", "out=/tmp/x/${hydra:job.num}"], None),
     ("train", ["seed=0,1", "generate.out=${hydra:runtime.output_dir}/images"], None),
     ("generate", ["checkpoint=c.pt", "out=/tmp/x"], None)],
)  # fmt: skip
def test_a_sweep_whose_jobs_share_one_out_folder_is_refused_before_the_first(
    command: str, args: list[str], refused_key: str | None
) -> None:
    """Every job given one out= folder: job 0 wrote it and job 1 was refused after it ran. A
    folder that differs per job (an interpolation, `${hydra:...}` too) is a sweep's to use."""
    if refused_key is None:
        overrides.check(command, args)
        return
    with pytest.raises(UserError, match=re.escape(f"{refused_key}=/tmp/x is the folder of every")):
        overrides.check(command, args)
