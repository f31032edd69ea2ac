"""`metaaug evaluate`: the FID/KID/IS math against independent computations, and the command
on small folders of PNGs (digits, 8x8 files read at the dataset's 16x16)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from unittest import mock

import numpy as np
import pytest
import scipy.linalg
import torch
from PIL import Image
from sklearn.datasets import load_digits

from metaaug.errors import UserError
from metaaug.metrics.fid import frechet_distance, inception_score, kernel_inception_distance
from tests.conftest import METRIC, Runner, assert_one_line_error

WEIGHTS_ENV = "METAAUG_INCEPTION_WEIGHTS"


# --- the math -------------------------------------------------------------------------------


def _scipy_fid(a: np.ndarray, b: np.ndarray) -> float:
    """FID as pytorch-fid computes it: scipy's general matrix square root of S_a S_b."""
    mu_a, mu_b = a.mean(axis=0), b.mean(axis=0)
    cov_a, cov_b = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    covmean, _ = scipy.linalg.sqrtm(cov_a @ cov_b, disp=False)
    diff = mu_a - mu_b
    return float(diff @ diff + np.trace(cov_a) + np.trace(cov_b) - 2 * np.trace(covmean.real))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_frechet_distance_matches_scipy_sqrtm(seed: int) -> None:
    gen = np.random.default_rng(seed)
    a = gen.normal(size=(300, 12))
    mix = gen.normal(size=(12, 12)) / 4  # correlated features, other scales
    b = gen.normal(loc=0.3, size=(250, 12)) @ (np.eye(12) + mix)
    expected = _scipy_fid(a, b)
    assert frechet_distance(torch.from_numpy(a), torch.from_numpy(b)) == pytest.approx(
        expected, rel=1e-8
    )
    assert frechet_distance(torch.from_numpy(a), torch.from_numpy(a)) < 1e-9


class _Features(torch.nn.Module):
    """A fixed random network standing in for Inception: what torchmetrics' metrics accept as
    `feature`, so the comparison needs no Inception weights."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(64, dim),
                                       torch.nn.Tanh(), torch.nn.Linear(dim, dim))  # fmt: skip
        self.num_features = dim

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x.float()).double()


def test_fid_kid_and_is_match_torchmetrics() -> None:
    pytest.importorskip("torchmetrics")
    from torchmetrics.image.fid import FrechetInceptionDistance
    from torchmetrics.image.inception import InceptionScore
    from torchmetrics.image.kid import KernelInceptionDistance

    gen = torch.Generator().manual_seed(0)
    real = torch.rand(120, 1, 8, 8, generator=gen)
    fake = torch.rand(100, 1, 8, 8, generator=gen) ** 2
    net = _Features(16).eval()
    with torch.no_grad():
        real_f, fake_f = net(real), net(fake)

    fid = FrechetInceptionDistance(feature=net)
    fid.update(real, real=True)
    fid.update(fake, real=False)
    assert frechet_distance(fake_f, real_f) == pytest.approx(float(fid.compute()), rel=1e-6)

    # one subset of every row: the same numbers whatever the random subsets
    kid = KernelInceptionDistance(feature=net, subsets=1, subset_size=100)
    kid.update(real[:100], real=True)
    kid.update(fake, real=False)
    ours, _ = kernel_inception_distance(fake_f, real_f[:100], subset_size=100, subsets=1)
    assert ours == pytest.approx(float(kid.compute()[0]), rel=1e-6)

    score = InceptionScore(feature=net, splits=1)
    score.update(fake)
    assert inception_score(fake_f.softmax(dim=1)) == pytest.approx(
        float(score.compute()[0]), rel=1e-6
    )


# --- the command ----------------------------------------------------------------------------


def _digits(root: Path, classes: tuple[int, ...], count: int, start: int = 0) -> Path:
    """`count` images of each digit class as 8x8 PNGs in root/<class>/."""
    bunch = load_digits()
    for c in classes:
        folder = root / str(c)
        folder.mkdir(parents=True, exist_ok=True)
        images = bunch.images[bunch.target == c][start : start + count]
        for i, img in enumerate(images):
            Image.fromarray((img * 255 / 16).astype(np.uint8)).save(folder / f"{i:03d}.png")
    return root


def _nudged(real: Path, out: Path) -> Path:
    """Copies of the PNGs under `real` in `out`, each with one corner pixel raised by 1 of 255:
    not the real images (evaluate refuses those as fakes), yet as close as images get."""
    for png in sorted(real.rglob("*.png")):
        pixels = np.array(Image.open(png))
        pixels[0, 0] = pixels[0, 0] + 1 if pixels[0, 0] < 255 else 254
        target = out / png.relative_to(real)
        target.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(pixels).save(target)
    return out


def _report(run_dir: Path) -> dict:
    return json.loads((run_dir / "evaluation.json").read_text())


def test_near_copies_of_the_real_images_score_fid_zero(metaaug: Runner, tmp_path: Path) -> None:
    real = _digits(tmp_path / "real", (1, 4), 30)
    near = _nudged(real, tmp_path / "near")  # (the real images themselves are refused)
    both = metaaug("evaluate", f"real={real}", f"fake={near}", *METRIC,
                   f"hydra.run.dir={tmp_path / 'same'}")  # fmt: skip
    assert both.returncode == 0, both.stderr[-3000:]
    same = _report(tmp_path / "same")
    # a typical value: the 1s against the 4s
    proc = metaaug("evaluate", f"real={real / '1'}", f"fake={real / '4'}", *METRIC,
                   f"hydra.run.dir={tmp_path / 'other'}")  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    typical = _report(tmp_path / "other")["classes"][0]["results"]["fid"]
    assert typical > 0.1
    assert [c["class_name"] for c in same["classes"]] == ["1", "4"]
    for c in same["classes"]:
        r = c["results"]
        assert abs(r["fid"]) < 1e-3 * typical
        assert (r["precision"], r["recall"]) == (1.0, 1.0)
        assert 0 <= r["fidelity"] <= 1 and 0 <= r["ceiling"] <= 1
        assert r["memorization"] is None and "shots=DIR" in c["unavailable"]["memorization"]
    assert same["metric"]["name"] == "domain" and same["fidelity"]["classifier_path"]
    assert "1" not in same["metric"]["meta_train_classes"]  # the evaluated classes held out
    assert "mean ± sd" in both.stdout.splitlines()[-1]  # the table: a row per class, the mean


def test_copies_of_the_shots_score_memorization_zero(metaaug: Runner, tmp_path: Path) -> None:
    shots = _digits(tmp_path / "shots", (7,), 5)
    heldout = _digits(tmp_path / "heldout", (7,), 25, start=5)
    proc = metaaug("evaluate", f"real={heldout / '7'}", f"fake={shots / '7'}",
                   f"shots={shots / '7'}", "class_name=7", *METRIC,
                   f"hydra.run.dir={tmp_path / 'run'}")  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    (c,) = _report(tmp_path / "run")["classes"]
    assert c["class_name"] == "7" and (c["num_real"], c["num_fake"], c["num_shots"]) == (25, 5, 5)
    assert c["results"]["memorization"] == pytest.approx(0.0, abs=1e-9)
    # each copy counted: all copies, so none is a novel image of the class
    assert c["results"]["copies"] == 1.0 and c["results"]["novel_fidelity"] == 0.0
    assert c["unavailable"] == {}  # 5 fakes are enough for every metric with k=3
    header, row = proc.stdout.splitlines()[-2:]  # the table ends the output
    assert header.split() == ["class", "real", "fake", "fid", "kid", "is", "precision", "recall",
                              "memorization", "copies", "fidelity", "novel_fidelity",
                              "ceiling"]  # fmt: skip
    assert row.split()[:4] == ["7", "25", "5", f"{c['results']['fid']:.4g}"]


def test_bad_folders_are_refused_in_one_line(refused: Runner, tmp_path: Path) -> None:
    real = _digits(tmp_path / "real", (1,), 6)
    fake = _digits(tmp_path / "fake", (1, 2), 6)
    assert_one_line_error(
        refused("evaluate", f"real={tmp_path / 'nope'}", f"fake={fake}"),
        "real=", "does not exist",
    )  # fmt: skip
    assert_one_line_error(
        refused("evaluate", f"real={real}", f"fake={fake}"), "fake class folder(s) ['2']", "real="
    )
    assert_one_line_error(refused("evaluate", f"real={real}", f"fake={fake}", "k=0"), "k=0")
    assert_one_line_error(refused("evaluate", f"fake={fake}"), "real is not set")
    shots = _digits(tmp_path / "shots", (1,), 3, start=4)  # two of them are real's too
    assert_one_line_error(
        refused("evaluate", f"real={real / '1'}", f"fake={fake / '1'}", f"shots={shots / '1'}"),
        "real holds 2 of the 3 shots of class '1'", "take the shots out of real",
    )  # fmt: skip
    # shots whose classes match no real class: refused as such fakes are (was: dropped)
    both = _digits(tmp_path / "both", (1, 2), 6)
    flat = _digits(tmp_path / "flat", (7,), 3) / "7"
    flat = flat.rename(tmp_path / "flat" / "shots7")  # a folder of images: one class, 'shots7'
    other = _digits(tmp_path / "other", (3, 4), 3)
    for given, names in ((flat, "['shots7']"), (other, "['3', '4']")):
        assert_one_line_error(
            refused("evaluate", f"real={both}", f"fake={fake}", f"shots={given}"),
            f"shots class folder(s) {names} have no folder of the same name in real='{both}'",
            "class folders named as real's",
        )  # fmt: skip


def test_the_real_images_as_fake_are_refused(refused: Runner, tmp_path: Path) -> None:
    """fake= the real folder, or copies of real images only, scores a perfect generator:
    refused (was: fid 0, precision and recall 1). Some copies among generated images are
    what memorization and copies measure: those are evaluated."""
    import shutil

    real = _digits(tmp_path / "real", (1, 2), 6)
    for fake in (real, tmp_path / "real" / ".." / "real"):
        assert_one_line_error(
            refused("evaluate", f"real={real}", f"fake={fake}"),
            "real= and fake= are the same folder", "give the generated images as fake=",
        )  # fmt: skip
    copy = tmp_path / "copy"
    shutil.copytree(real, copy)
    (copy / "2" / "000.png").unlink()  # a part of real's images is no better
    assert_one_line_error(
        refused("evaluate", f"real={real}", f"fake={copy}"),
        "each of the 6 fake images of class '1' is one of its real images",
        "give the generated images as fake=",
    )  # fmt: skip


def test_some_copies_among_the_fakes_are_evaluated() -> None:
    from metaaug.config.evaluate import ClassImages, refuse_real_as_fake

    gen = torch.Generator().manual_seed(0)
    real, other = torch.rand(6, 1, 4, 4, generator=gen), torch.rand(3, 1, 4, 4, generator=gen)
    some = [ClassImages("a", real, torch.cat([real[:2], other]))]
    assert refuse_real_as_fake(some) == some
    with pytest.raises(UserError, match="each of the 2 fake images of class 'a'"):
        refuse_real_as_fake([ClassImages("a", real, real[3:5].clone())])


def test_the_api_refuses_the_real_images_as_fake() -> None:
    import metaaug

    held = torch.rand(8, 1, 16, 16, generator=torch.Generator().manual_seed(0)) * 2 - 1
    with pytest.raises(UserError, match="each of the 8 fake images of class 'images'"):
        metaaug.evaluate(held, held, overrides=METRIC)


def test_inception_without_weights_says_how_to_supply_them(metaaug: Runner, tmp_path: Path) -> None:
    real = _digits(tmp_path / "real", (1,), 6)
    fake = _nudged(real, tmp_path / "fake")
    with mock.patch.dict(os.environ, {"TORCH_HOME": str(tmp_path / "torch")}):
        os.environ.pop(WEIGHTS_ENV, None)
        proc = metaaug("evaluate", f"real={real}", f"fake={fake}", "metric=inception")
    assert_one_line_error(proc, "Inception-v3 weights", "metric.weights_path=", "metric=domain")
    proc = metaaug("evaluate", f"real={real}", f"fake={fake}", "metric=inception",
                   f"metric.weights_path={tmp_path / 'missing.pth'}")  # fmt: skip
    assert_one_line_error(proc, "metric.weights_path=", "is not a file")


def _random_inception(path: Path) -> Path:
    """An Inception-v3 weights file of the right layout with random weights: the code path of
    real weights, without the download."""
    fe = pytest.importorskip("torch_fidelity.feature_extractor_inceptionv3")
    with (
        mock.patch.object(fe, "load_state_dict_from_url", lambda *a, **k: None),
        mock.patch.object(fe.FeatureExtractorInceptionV3, "load_state_dict", lambda *a: None),
    ):
        model = fe.FeatureExtractorInceptionV3("random", ["2048"])
    torch.save(model.state_dict(), path)
    return path


def test_inception_from_a_weights_file(metaaug: Runner, tmp_path: Path) -> None:
    weights = _random_inception(tmp_path / "inception.pth")
    real = _digits(tmp_path / "real", (3,), 12)
    fake = _nudged(real, tmp_path / "fake")
    proc = metaaug("evaluate", f"real={real}", f"fake={fake}", "metric=inception",
                   f"metric.weights_path={weights}", "metric.kid_subset_size=10",
                   f"hydra.run.dir={tmp_path / 'run'}")  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = _report(tmp_path / "run")
    assert report["metric"] == {"name": "inception", "weights_path": str(weights)}
    (c,) = report["classes"]
    assert c["results"]["fid"] == pytest.approx(0.0, abs=1e-6)
    assert c["results"]["fidelity"] is None and "metric=domain" in c["unavailable"]["fidelity"]


@pytest.mark.skipif(
    not os.environ.get(WEIGHTS_ENV) or not Path(os.environ[WEIGHTS_ENV]).is_file(),
    reason=f"no Inception-v3 weights ({WEIGHTS_ENV} names no file)",
)
def test_inception_with_the_real_weights_separates_classes(metaaug: Runner, tmp_path: Path) -> None:
    real = _digits(tmp_path / "real", (0, 1), 40)
    proc = metaaug("evaluate", f"real={real / '0'}", f"fake={real / '1'}", "metric=inception",
                   "metric.kid_subset_size=20", f"hydra.run.dir={tmp_path / 'run'}")  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    (c,) = _report(tmp_path / "run")["classes"]
    assert c["results"]["fid"] > 1.0 and 1.0 <= c["results"]["is"] <= 1008
