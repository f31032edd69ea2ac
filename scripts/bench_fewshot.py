"""Few-shot figures: does each augmentation arm help each learner? 5-way 1-shot and 5-shot.

1. `metaaug train` trains the gan arm's GAN on fewshot's meta-train classes (the split
   `metaaug fewshot` uses: half the classes held out, none for validation), so that it never
   saw an episode class. By default the DAGAN-style image-conditioned pair trained on the
   pooled classes with DAGAN's own settings (`DAGAN_RECIPE`), used without adaptation
   (--gan-steps 0): it is meant to turn each shot into new images of its class.
   `--gan dcgan --meta-algo reptile --gan-steps 50` gives a meta-learned initialization
   adapted to each class instead.
2. `metaaug fewshot` runs every learner x arm on the same episodes, for each shot count.
3. The two tables (fewshot.md) are printed, with the run directories.

With --recipe the gan arm is the Omniglot recipe's initialization (`experiment=omniglot_cpu`,
seed 0: trained here, or reused with --train-dir, e.g. a `make bench-recipe` seed run) adapted
per episode class with the recipe's 50 fine-tune steps, on the recipe's own split (episodes
from its meta-test classes), learners plain and protonet, arms none, classic, gan and
classic+gan. The DAGAN-style generator adapts on pairs of shots, so at 1 shot it transforms
the shot unadapted (--gan-steps applies to 2 shots and more).

Not a test: on the shared Omniglot subset with 600 episodes this takes hours on 2 cores.

    python scripts/bench_fewshot.py                         # Omniglot subset, 600 episodes
    python scripts/bench_fewshot.py --shots 1 --train-dir DIR   # reuse a trained GAN
    python scripts/bench_fewshot.py --gan dcgan --meta-algo reptile --gan-steps 50
    python scripts/bench_fewshot.py fewshot.workers=8       # overrides go to every fewshot run
    python scripts/bench_fewshot.py --shots 5 --learners protonet,plain --arms none,classic,gan
    python scripts/bench_fewshot.py --quick                 # digits, tiny budgets: a smoke run
    python scripts/bench_fewshot.py --recipe --train-dir outputs/bench_recipe/seed0
    python scripts/bench_fewshot.py --recipe --seeds 0,2,3 --train-dir 'runs/seed{seed}'
    python scripts/bench_fewshot.py --recipe --root runs/fewshot ...   # resumes what is there

With --root the runs are kept: a finished one is reused, one an interrupted bench left
unfinished is moved aside (`<name>.unfinished1`) and run again, a GAN's training from its last
checkpoint (`resume=`).

Each fewshot run shares its episodes among --workers forked processes of one thread each
(default 2, the cores of the machines this is sized for): the numbers are those of a
one-thread run, whatever the worker count.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

import numpy as np
from bench_runs import metaaug, take_up
from fewshot_summary import summarize
from render_results import fewshot as render_fewshot

REPO = Path(__file__).resolve().parents[1]
OMNIGLOT = REPO.parent / "shared" / "data" / "omniglot"
SPLIT = ["dataset.val_fraction=0", "dataset.test_fraction=0.5"]
# --recipe: the recipe's data and split (conf/experiment/omniglot_cpu.yaml, conf/dataset/omniglot)
RECIPE_DATA = ["dataset.image_size=28", "dataset.val_fraction=0.15", "dataset.test_fraction=0.25"]
RECIPE_FEWSHOT = [
    "fewshot.learners=[plain,protonet]",
    "fewshot.arms=[none,classic,gan,classic+gan]",
]
# DAGAN's published training settings (WGAN-GP, 5 critic steps per generator step, Adam
# lr 1e-4, betas (0, 0.9)) for the pooled (pretrain) DAGAN
DAGAN_RECIPE = ["gan.d_steps=5", "meta_algo.optimizer.lr=1e-4",
                "meta_algo.optimizer.betas=[0.0,0.9]"]  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="digits, tiny budgets")
    parser.add_argument(
        "--recipe",
        action="store_true",
        help="the gan arm from experiment=omniglot_cpu, adapted per class",
    )
    parser.add_argument("--episodes", type=int, default=600)
    parser.add_argument("--iterations", type=int, default=3000, help="GAN (meta-)iterations")
    parser.add_argument("--gan", default="dagan", help="the gan group of the gan arm's GAN")
    parser.add_argument("--meta-algo", default="pretrain")
    parser.add_argument("--gan-steps", type=int, default=0, help="GAN adaptation per class")
    parser.add_argument("--train-dir", help="a finished train run to reuse; '{seed}' in it "
                        "stands for each seed's run")  # fmt: skip
    parser.add_argument("--shots", default="1,5")
    parser.add_argument("--learners", default="protonet,plain,maml", help="fewshot.learners")
    parser.add_argument("--arms", default="none,classic,mixup,learned,gan", help="fewshot.arms")
    parser.add_argument("--seeds", default="0,1,2", help="comma-separated seeds: each sets the "
                        "split, the GAN, the backbone and the episodes")  # fmt: skip
    parser.add_argument("--threads", type=int, default=1, help="hardware.threads of each run")
    parser.add_argument("--workers", type=int, default=2,
                        help="fewshot.workers: processes sharing each run's episodes")  # fmt: skip
    parser.add_argument(
        "--json", type=Path,
        help="the figures (default: docs/results/fewshot.json; fewshot_recipe.json with --recipe)",
    )  # fmt: skip
    parser.add_argument("--root", type=Path, help="where the runs go (default: a new "
                        "temporary folder); a run finished there is reused")  # fmt: skip
    parser.add_argument("extra", nargs="*", help="overrides passed to every fewshot run")
    args = parser.parse_args()

    if args.quick:
        data = []
        train_budget = ["meta_algo.iterations=3", "metric.min_steps=0",
                        "metric.fidelity.steps_per_class=0",
                        "metric.epochs=1", "generate.num_images=16",
                        "metric.kid_subset_size=8"]  # fmt: skip
        fewshot_budget = ["fewshot.episodes=3", "learners.maml.iterations=2",
                          "arms.learned.iterations=2", "learners.plain.steps=5",
                          "metric.min_steps=0", "metric.epochs=1"]  # fmt: skip
        gan_steps = min(args.gan_steps, 2)
    else:
        if not (OMNIGLOT / "images_background_small1.zip").exists():
            sys.exit(f"the shared Omniglot subset is not at {OMNIGLOT}")
        data = ["dataset=omniglot", f"dataset.root={OMNIGLOT}"]
        train_budget = [f"meta_algo.iterations={args.iterations}", "generate.num_images=100"]
        fewshot_budget = [f"fewshot.episodes={args.episodes}"]
        gan_steps = args.gan_steps

    learners_arms = [f"fewshot.learners=[{args.learners}]", f"fewshot.arms=[{args.arms}]"]
    uses_gan = args.recipe or "gan" in args.arms.split(",")  # fewshot refuses an unread checkpoint
    if args.recipe:
        if args.quick:
            sys.exit("--recipe is the Omniglot recipe: it has no --quick form")
        gan_steps = args.gan_steps or 50  # the recipe's fine-tune
        data = [*data, *RECIPE_DATA]
        learners_arms = RECIPE_FEWSHOT

    out = args.root or Path(tempfile.mkdtemp(prefix="metaaug-fewshot-"))
    seeds = [int(x) for x in args.seeds.split(",")]
    if args.train_dir is not None and len(seeds) > 1 and "{seed}" not in args.train_dir:
        sys.exit("--train-dir reuses one seed's GAN; give --seeds with that one seed, or put "
                 "'{seed}' in the path for each seed's run")  # fmt: skip
    threads = f"hardware.threads={args.threads}"
    workers = f"fewshot.workers={args.workers}"
    runs: dict[int, dict[int, dict]] = {}
    for seed in seeds:
        given = args.train_dir and Path(args.train_dir.replace("{seed}", str(seed)))
        train_dir = given or out / f"gan_seed{seed}"
        if given and not (train_dir / "checkpoints" / "meta_init.pt").is_file():
            sys.exit(f"--train-dir: {train_dir} holds no checkpoints/meta_init.pt")
        trained = (train_dir / "checkpoints" / "meta_init.pt").is_file()
        resume = [] if given or trained else take_up(train_dir)
        if not given and not trained and args.recipe:
            metaaug("train", "experiment=omniglot_cpu", *data, "target.classes=1", *resume,
                    "compare_baselines=false", f"seed={seed}", threads,
                    f"hydra.run.dir={train_dir}")  # fmt: skip
            print(f"trained the recipe's initialization: {train_dir}", flush=True)
        elif not given and not trained:
            recipe = DAGAN_RECIPE if (args.gan, args.meta_algo) == ("dagan", "pretrain") else []
            metaaug(
                "train", *data, *SPLIT, f"gan={args.gan}", f"meta_algo={args.meta_algo}",
                *recipe, *train_budget, f"finetune.steps={gan_steps}",
                "compare_baselines=false", "validation.every=0", f"seed={seed}", threads,
                *resume, f"hydra.run.dir={train_dir}",
            )  # fmt: skip
            print(f"trained the GAN ({args.gan}, {args.meta_algo}): {train_dir}", flush=True)
        for shots in args.shots.split(","):
            run_dir = out / f"seed{seed}_{shots}shot"
            # an image-conditioned recipe GAN adapts on pairs of shots: at 1 shot it transforms
            steps = 0 if args.recipe and int(shots) < 2 else gan_steps
            if (run_dir / "fewshot.json").is_file():
                print(f"reusing {run_dir}", flush=True)
            else:
                scored = take_up(run_dir)  # the episodes an interrupted run scored
                gan = [f"arms.gan.checkpoint={train_dir / 'checkpoints' / 'meta_init.pt'}",
                       f"arms.gan.steps={steps}"]  # fmt: skip
                metaaug(
                    "fewshot", *scored, *data, f"fewshot.shots={shots}", *fewshot_budget,
                    *learners_arms, *(gan if uses_gan else []), *args.extra, f"seed={seed}",
                    threads, workers, f"hydra.run.dir={run_dir}",
                )  # fmt: skip
            print(f"\nseed {seed}\n" + (run_dir / "fewshot.md").read_text(), flush=True)
            if args.recipe:
                print(recipe_goals(run_dir, int(shots)), flush=True)
            runs.setdefault(int(shots), {})[seed] = json.loads(
                (run_dir / "fewshot.json").read_text()
            )
    data_out = summarize(runs, args.threads, sys.argv[1:])
    data_out["workers"] = args.workers
    data_out["seconds"] = {str(shots): {str(seed): run["seconds"] for seed, run in by_seed.items()}
                           for shots, by_seed in runs.items()}  # fmt: skip
    name = "fewshot_recipe.json" if args.recipe else "fewshot.json"
    path = args.json or REPO / "docs" / "results" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data_out, indent=1, allow_nan=False) + "\n")
    print(f"\n{render_fewshot(data_out)}\n\nwrote {path}\nrun directories: {out}")


def recipe_goals(run_dir: Path, shots: int) -> str:
    """The recipe's few-shot goals on one run, each from paired per-episode differences: the gan
    arm lifts the plain learner (and by more than classic at 1 shot), and costs protonet less
    than 1 point."""
    from metaaug.fewshot.stats import paired_comparison

    per_episode = json.loads((run_dir / "fewshot.json").read_text())["per_episode"]
    acc = {ln: {a: np.asarray(v) for a, v in arms.items()} for ln, arms in per_episode.items()}

    def diff(learner: str, arm: str, reference: str) -> str:
        p = paired_comparison(acc[learner][arm], acc[learner][reference])
        d = p.diff
        return f"{100 * d.mean:+.2f} ± {100 * d.half_width:.2f} points (p={p.p_value:.2g})"

    lines = [f"{shots}-shot goals (paired over {len(acc['plain']['none'])} episodes):"]
    lines.append(f"- plain, gan vs none: {diff('plain', 'gan', 'none')} (goal: > 0)")
    if shots == 1:
        lines.append(f"- plain, gan vs classic: {diff('plain', 'gan', 'classic')} (goal: > 0)")
    lines.append(f"- protonet, gan vs none: {diff('protonet', 'gan', 'none')} (goal: > -1)")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
