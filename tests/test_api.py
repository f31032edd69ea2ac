"""The Python API (`metaaug.load/sample/adapt/evaluate`) on the checkpoints of a tiny run."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import metaaug
from metaaug import api
from metaaug.data.sources import digits, image_folder_flat
from metaaug.data.target import class_target
from metaaug.errors import UserError

METRIC = ["metric.epochs=1", "metric.min_steps=0", "metric.fidelity.steps_per_class=0",
          "metric.kid_subset_size=10", "metric.kid_subsets=5"]  # fmt: skip


@pytest.fixture
def run_dir(tiny_run: Path) -> Path:
    return tiny_run


@pytest.fixture(autouse=True)
def _cache(metric_cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("METAAUG_CACHE", str(metric_cache))


def test_import_metaaug_stays_light() -> None:
    """The API is imported on first use: `import metaaug` (and so `metaaug --help`) loads no
    torch."""
    code = "import sys, metaaug; assert 'torch' not in sys.modules; print(metaaug.__version__)"
    subprocess.run([sys.executable, "-c", code], check=True, capture_output=True)
    assert metaaug.load is api.load and metaaug.evaluate is api.evaluate
    with pytest.raises(AttributeError):
        metaaug.nothing  # noqa: B018


def test_read_images_says_what_it_needs(tmp_path: Path) -> None:
    """A notebook's misuse gets a sentence naming the fix, not an AttributeError."""
    with pytest.raises(TypeError, match=r"image_size=\.\.\., channels=\.\.\."):
        metaaug.read_images(tmp_path, 28)  # the size where the GAN goes
    with pytest.raises(ValueError, match="give a loaded gan, or image_size and channels"):
        metaaug.read_images(tmp_path, image_size=28)
    with pytest.raises(UserError, match="does not exist"):
        metaaug.read_images(tmp_path / "missing", image_size=28, channels=1)


def test_a_finetuned_gan_samples_the_runs_images(run_dir: Path) -> None:
    (path,) = (run_dir / "checkpoints" / "finetuned").glob("*.pt")
    gan = metaaug.load(path)
    assert (gan.kind, gan.class_name, gan.steps) == ("finetuned", path.stem, 3)
    assert gan.shots is not None and gan.shots.shape == (5, 1, 16, 16)
    fake = metaaug.sample(gan, 24)
    assert fake.shape == (24, 1, 16, 16) and fake.min() >= -1 and fake.max() <= 1
    # the run sampled with its seed 0 too: its PNGs are these images, rounded
    written = image_folder_flat(str(run_dir / "synthetic" / path.stem), 16, 1)
    assert torch.allclose(fake, written, atol=1 / 127.5 + 1e-6)
    assert torch.equal(metaaug.sample(gan, 24), fake)
    assert not torch.equal(metaaug.sample(gan, 24, seed=1), fake)
    assert metaaug.sample(gan, 0).shape == (0, 1, 16, 16)  # stacks with other image batches


def test_adapt_returns_a_new_gan_and_leaves_the_loaded_one(run_dir: Path) -> None:
    init = metaaug.load(run_dir / "checkpoints" / "meta_init.pt")
    assert init.kind == "meta_init" and init.shots is None
    before = {k: v.clone() for k, v in init.gan.state_dict().items()}
    shots = torch.rand(4, 1, 16, 16, generator=torch.Generator().manual_seed(0)) * 2 - 1
    adapted = metaaug.adapt(init, shots, steps=2, lr=1e-2)
    again = metaaug.adapt(init, shots, steps=2, lr=1e-2)
    assert adapted.kind == "adapted" and adapted.steps == 2
    assert all(torch.equal(v, init.gan.state_dict()[k]) for k, v in before.items())
    assert torch.equal(metaaug.sample(adapted, 8), metaaug.sample(again, 8))  # seeded
    assert not torch.equal(metaaug.sample(adapted, 8), metaaug.sample(init, 8))
    with pytest.raises(UserError, match=r"do not fit the GAN.*\[1, 16, 16\]"):
        metaaug.adapt(init, torch.zeros(4, 3, 16, 16))


def test_read_images_reads_as_the_gan_s_dataset_does(run_dir: Path, tmp_path: Path) -> None:
    """Transparent pixels show the dataset's `alpha_background`, as in generate's shots."""
    gan = metaaug.load(run_dir / "checkpoints" / "meta_init.pt")
    pixels = np.zeros((16, 16, 4), np.uint8)  # black and fully transparent
    pixels[4:12, 4:12] = (0, 0, 0, 255)  # an opaque black square
    Image.fromarray(pixels, "RGBA").save(tmp_path / "a.png")
    assert metaaug.read_images(tmp_path, gan)[0, 0, 0, 0] == 1.0  # digits: a white ground
    gan.config.dataset.alpha_background = "black"
    assert torch.all(metaaug.read_images(tmp_path, gan) == -1.0)


def test_read_images_and_evaluate(run_dir: Path) -> None:
    gan = metaaug.load(run_dir / "checkpoints" / "meta_init.pt")
    (path,) = (run_dir / "checkpoints" / "finetuned").glob("*.pt")
    finetuned = metaaug.load(path)
    fake = metaaug.read_images(run_dir / "synthetic" / path.stem, gan)
    assert fake.shape == (24, 1, 16, 16)
    shots = finetuned.shots
    real = metaaug.sample(finetuned, 30, seed=5)  # a stand-in for held-out images
    with pytest.raises(UserError, match="is one of its real images"):  # a perfect generator
        metaaug.evaluate(fake, fake.clone(), class_name=path.stem, overrides=METRIC)
    same = metaaug.evaluate(fake, fake * 0.999, class_name=path.stem, overrides=METRIC)
    assert same["fid"] == pytest.approx(0.0, abs=1e-6)
    assert (same["precision"], same["recall"]) == (1.0, 1.0)
    assert math.isnan(same["memorization"])  # no shots given
    scores = metaaug.evaluate(real, fake, shots=shots, class_name=path.stem, overrides=METRIC)
    assert scores["fid"] > 0 and scores["memorization"] > 0
    assert 0 <= scores["fidelity"] <= 1 and scores["num_real"] == 30
    with pytest.raises(UserError, match="k=0"):
        metaaug.evaluate(real, fake, overrides=["k=0"])
    with pytest.raises(UserError, match="metric=nope"):  # what Hydra refuses: one line too
        metaaug.evaluate(real, fake, overrides=["metric=nope"])


def test_evaluate_agrees_with_the_train_run(run_dir: Path) -> None:
    """The run's fakes against its target's held-out images score what metrics.json says:
    the same domain classifier (same split, the target held out), the same KID subsets."""
    metrics = json.loads((run_dir / "metrics.json").read_text())
    (target,) = metrics["targets"]
    name = target["class_name"]
    finetuned = metaaug.load(run_dir / "checkpoints" / "finetuned" / f"{name}.pt")
    heldout = class_target(name, digits(16)[name], 5, 0).heldout
    fake = metaaug.sample(finetuned, 24)  # the run's own fakes, unrounded
    scores = metaaug.evaluate(heldout, fake, shots=finetuned.shots, class_name=name,
                              overrides=METRIC)  # fmt: skip
    run = target["results"]["reptile"]
    for key in ("fid", "kid", "is", "memorization"):
        assert scores[key] == pytest.approx(run[key], rel=1e-6), key


def refuses(kind: type[Exception], call: Callable[[], object], *fragments: str) -> None:
    """`call()` raises `kind` with one line holding every fragment (the argument, the fix)."""
    with pytest.raises(kind) as info:
        call()
    text = str(info.value)
    assert "\n" not in text, text
    for fragment in fragments:
        assert fragment in text, text


def test_adapt_and_sample_refuse_bad_arguments_at_the_call(run_dir: Path) -> None:
    """Wrong types and values are refused naming the argument (was: an AttributeError or a
    KeyError deep inside, or silently used: a negative count, pixels in [0, 255])."""
    init = metaaug.load(run_dir / "checkpoints" / "meta_init.pt")
    (path,) = (run_dir / "checkpoints" / "finetuned").glob("*.pt")
    finetuned = metaaug.load(path)
    shots = finetuned.shots
    assert shots is not None
    for gan in (None, str(path)):
        refuses(TypeError, lambda gan=gan: metaaug.adapt(gan, shots, steps=1), "gan is a", "load")
        refuses(TypeError, lambda gan=gan: metaaug.sample(gan, 4), "gan is a", "metaaug.load(")
    refuses(TypeError, lambda: metaaug.adapt(init, str(path.parent)), "shots is a str",
            "metaaug.read_images(folder, gan)")  # fmt: skip
    for wrong in (shots.numpy(), [shots]):
        refuses(
            TypeError, lambda wrong=wrong: metaaug.adapt(init, wrong), "shots is a", "float tensor"
        )
    refuses(UserError, lambda: metaaug.adapt(init, shots[0]), "shots has shape (1, 16, 16)")
    refuses(UserError, lambda: metaaug.adapt(init, shots[:0]), "shots holds no images")
    pixels = (shots + 1) * 127.5
    refuses(UserError, lambda: metaaug.adapt(init, pixels.to(torch.uint8)), "torch.uint8",
            "x.float() / 127.5 - 1")  # fmt: skip
    refuses(UserError, lambda: metaaug.adapt(init, pixels), "shots ranges over [0, 255]",
            "rescale them (x / 127.5 - 1)")  # fmt: skip
    for bad in (float("nan"), float("inf")):
        broken = shots.clone()
        broken[0, 0, 0, 0] = bad
        refuses(UserError, lambda broken=broken: metaaug.adapt(init, broken, steps=1),
                "shots holds 1 NaN or infinite value(s)")  # fmt: skip
    refuses(UserError, lambda: metaaug.adapt(init, shots, steps=-1), "steps=-1 is negative")
    refuses(TypeError, lambda: metaaug.adapt(init, shots, steps=1.7), "steps=1.7 is a float")
    refuses(UserError, lambda: metaaug.sample(finetuned, -3), "n=-3 is negative")
    for n in (2.5, True, "4"):
        refuses(TypeError, lambda n=n: metaaug.sample(finetuned, n), f"n={n!r} is a")
    refuses(UserError, lambda: metaaug.sample(finetuned, 2, shots=pixels), "shots ranges over")
    assert metaaug.sample(finetuned, np.int64(2)).shape == (2, 1, 16, 16)
    assert metaaug.sample(finetuned, 0).shape == (0, 1, 16, 16)
    assert metaaug.adapt(init, shots.double(), steps=np.int64(1)).steps == 1


def test_evaluate_refuses_bad_arguments_at_the_call(run_dir: Path) -> None:
    """Images that are not [N, C, H, W] floats in [-1, 1], finite and non-empty, and
    overrides of what evaluate's own arguments set, are refused before any work (was: an
    AttributeError, a LinAlgError, NaN results, an override silently dropped)."""
    (path,) = (run_dir / "checkpoints" / "finetuned").glob("*.pt")
    finetuned = metaaug.load(path)
    real = metaaug.sample(finetuned, 30, seed=5)
    refuses(TypeError, lambda: metaaug.evaluate(str(run_dir), real), "real is a str",
            "metaaug.read_images(folder, gan)")  # fmt: skip
    refuses(TypeError, lambda: metaaug.evaluate(real.numpy(), real), "real is a ndarray")
    refuses(TypeError, lambda: metaaug.evaluate(real, [real]), "fake is a list")
    refuses(TypeError, lambda: metaaug.evaluate(real, real, shots=str(run_dir)), "shots is a")
    nan = real.clone()
    nan[0] = float("nan")
    refuses(UserError, lambda: metaaug.evaluate(real, nan), "fake holds 256 NaN")
    refuses(UserError, lambda: metaaug.evaluate(nan, real), "real holds 256 NaN")
    refuses(UserError, lambda: metaaug.evaluate(real, real[:0]), "fake holds no images")
    refuses(UserError, lambda: metaaug.evaluate(real[:0], real), "real holds no images")
    refuses(TypeError, lambda: metaaug.evaluate(real, real, class_name=[7]), "class_name is")
    refuses(TypeError, lambda: metaaug.evaluate(real, real, overrides="k=1"), "give a list")
    for item in ("real=/tmp", "+seed=3", "dataset=omniglot"):
        key = item.lstrip("+").split("=")[0]
        refuses(UserError, lambda item=item: metaaug.evaluate(real, real, overrides=[item]),
                f"overrides holds {item!r}", f"give {key}=... to evaluate instead")  # fmt: skip
    # an int class name is the class the command line's class_name=7 names
    fake = metaaug.sample(finetuned, 30, seed=6)
    by_int = metaaug.evaluate(real, fake, class_name=7, overrides=METRIC)
    by_str = metaaug.evaluate(real, fake, class_name="7", overrides=METRIC)
    assert by_int["fid"] == pytest.approx(by_str["fid"]) and by_int["is"] == by_str["is"]


def test_load_and_read_images_refuse_bad_arguments(run_dir: Path) -> None:
    """A device torch does not know or this machine lacks is named (was: a RuntimeError not
    naming `device`); a tensor given as a folder is named (was: OSError 'File name too long')."""
    path = run_dir / "checkpoints" / "meta_init.pt"
    refuses(UserError, lambda: metaaug.load(path, device="tpu"), "device='tpu' is not known")
    if not torch.cuda.is_available():
        refuses(UserError, lambda: metaaug.load(path, device="cuda"), "no CUDA device")
    gan = metaaug.load(path, device=torch.device("cpu"))
    refuses(TypeError, lambda: metaaug.read_images(torch.zeros(2, 1, 16, 16), gan),
            "folder is a Tensor (it already holds images")  # fmt: skip
    refuses(TypeError, lambda: metaaug.load(None), "path is a NoneType")
