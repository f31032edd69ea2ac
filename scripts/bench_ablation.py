"""Issue 22's ablation: which mechanisms make generated images help a few-shot classifier.

Designs, each meta-trained per seed (`experiment=omniglot_cpu`, Omniglot split by alphabet;
a seed sets the split, the GAN, the backbone and the episodes):

    dagan          the recipe's DAGAN-style pair, adapted 50 steps per episode class
    dagan+class    the same with the class term (gan.class_loss=--class-loss)
    fusion         gan=fusion, sampled from the shots with no fine-tune
    fusion+class   the same with the class term
    dagan+class+div  dagan+class with G's mode-seeking term (gan.diversity=--diversity, no
                   default: its weight is chosen on meta-val first): the DAGAN-style pair
                   draws one image per shot whatever z (docs/choices.md)

Variants of the gan arm's trust (views of its images, `arms.<name>.of`, docs/fewshot.md):
`gan` (as made), `gan_f` (filtered), `gan_w` (weight --weight), `gan_fw` (both), each alone
and with classic augmentation (`classic+gan_f`, ...), learners plain and protonet.

    --stage val    every design x variant on meta-val episodes (fewshot.classes=val,
                   --val-episodes); the choice is the design x variant whose classic+variant
                   gains most over classic for the plain learner, mean over seeds and shots.
    --stage test   on meta-test episodes (--episodes, 600), after the val stage: each
                   mechanism alone and the choice, the ablation table. dagan with every
                   variant (filter alone, weight alone, both), dagan+class and fusion as
                   made (the class term alone, fusion alone), and the design val chose with
                   every variant; the choice is read from the val stage's JSON, never made
                   on meta-test. A design x variant no mechanism needs is left out: the
                   plain CNN fitted per arm and episode is most of the cost. dagan's runs
                   are the same whatever val chooses: `--designs dagan` may run before it.

Each design's images are measured too (ablation_generation.py): its train run taken up at
the last checkpoint with ten meta-test classes drawn with the seed, `metaaug train`'s figures
beside scratch, pretrain and copy_shots, kept at `<store>/seed<S>/<design>_targets.json` (one
kept without scratch and pretrain is measured again). They are on meta-test classes, so no
choice reads them; the stage JSON reports them (`generation`).

Kept across sessions (--store, default docs/results/ablation_runs): each finished fewshot
run's per-episode figures go to `<store>/seed<S>/<design>_<stage>_<K>shot.json` (commit them),
and a run kept there is never run again, so the bench can be spread over sessions on fresh
checkouts, a few runs each (--designs, --seeds, --shots select them; --status lists what is
kept and what remains). The JSON of a stage (docs/results/ablation.json, ablation_val.json;
`make results` renders it) is written once every design of the asked seeds and shots is kept,
with issue 22's few-shot goals read for the choice (`fewshot_goals`, ablation_goals.py).
A design's GAN is trained again in a session that needs it and has not got it: each kept run
names the CPU its GAN and episodes ran on. A run longer than a session goes on in the next:
`--keep-unfinished` keeps the episodes each unfinished run has scored
(`<store>/seed<S>/<design>_<stage>_<K>shot.unfinished.jsonl`, commit them), and a later bench
on a CPU of the same name and instructions goes on from them. The GAN it trains again must be
the same to the bit: metaaug fewshot refuses episodes scored with other weights (a line
naming them; delete the .unfinished.jsonl to start that run over).

Within a session (--root, default outputs/ablation): a train or fewshot run whose output
exists is reused; one an interrupted bench left unfinished is moved aside
(`<name>.unfinished1`) and run again, a train run from its last checkpoint (`resume=`). Not a
test: on 2 cores a design trains in about 15 minutes a seed; a 600-episode 5-shot run of the
ten arms takes hours.

    python scripts/bench_ablation.py --stage val --status
    python scripts/bench_ablation.py --stage val --seeds 0 --designs dagan,fusion --shots 1
    python scripts/bench_ablation.py --stage val --seeds 0,2,3     # every run not yet kept
    python scripts/bench_ablation.py --stage test --seeds 0,2,3
    python scripts/bench_ablation.py --quick --stage test --store /tmp/kept  # digits, tiny
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from ablation_generation import BASELINES, figures
from ablation_generation import summary as generation_summary
from ablation_goals import episode_gain, fewshot_goals
from ablation_progress import progress
from bench_runs import (
    JOURNAL,
    keep,
    keep_unfinished,
    kept,
    restore_unfinished,
    rounded,
    scored,
    take_up,
)
from bench_runs import metaaug as run
from fewshot_summary import summarize
from machine import cpu_name
from recipe_summary import interval

REPO = Path(__file__).resolve().parents[1]
OMNIGLOT = REPO.parent / "shared" / "data" / "omniglot"
DESIGNS = {"dagan": [], "dagan+class": ["gan.class_loss={w}"],
           "fusion": ["gan=fusion", "gan.width=16", "finetune.steps=0"],
           "fusion+class": ["gan=fusion", "gan.width=16", "finetune.steps=0",
                            "gan.class_loss={w}"],
           "dagan+class+div": ["gan.class_loss={w}", "gan.diversity={d}"]}  # fmt: skip
VARIANTS = ("gan", "gan_f", "gan_w", "gan_fw")
ALONE = ("dagan", "dagan+class", "fusion")  # dagan as made, and one mechanism each
KEPT = REPO / "docs" / "results" / "ablation_runs"
# the shared Omniglot subset split by alphabet, as every design is trained and measured on it
DATA = ["dataset=omniglot", f"dataset.root={OMNIGLOT}", "dataset.image_size=28",
        "dataset.val_fraction=0.15", "dataset.test_fraction=0.25"]  # fmt: skip


def views(weight: float, variants: tuple[str, ...]) -> list[str]:
    """The overrides that define the trust variants and run `variants`, alone and with
    classic augmentation, beside none and classic."""
    arms = ["none", "classic", *variants, *(f"classic+{v}" for v in variants)]
    return [
        "+arms.gan_f={of:gan,filter:true}", f"+arms.gan_w={{of:gan,weight:{weight}}}",
        f"+arms.gan_fw={{of:gan,filter:true,weight:{weight}}}",
        f"fewshot.arms=[{','.join(arms)}]",
    ]  # fmt: skip


def plan(stage: str, choice: str | None) -> dict[str, tuple[str, ...]]:
    """The variants each design runs with: all of them at val, to choose among; at test those
    that show each mechanism alone (from dagan as made) and the `choice` ("design / variant")
    val made, with every variant of its design. Before val has chosen (`choice` None) test
    runs dagan alone: it runs every variant whatever val chooses."""
    if stage == "val":
        return dict.fromkeys(DESIGNS, VARIANTS)
    if choice is None:
        return {"dagan": VARIANTS}
    chosen = choice.split(" / ")[0]
    return {d: VARIANTS if d in ("dagan", chosen) else ("gan",)
            for d in DESIGNS if d in ALONE or d == chosen}  # fmt: skip


def load(path: Path, settings: dict) -> dict:
    """A kept run, refused if it was measured with other settings than those asked for."""
    report = kept(path) or {}
    if differ := {k for k, v in settings.items() if report.get(k) != v}:
        sys.exit(f"{path} was measured with other {sorted(differ)}: ask for its settings, "
                 "or give another --store")  # fmt: skip
    return report


def current(path: Path) -> bool:
    """Whether a design's images are kept at `path` with every baseline beside them (one
    kept before scratch and pretrain were measured there is not)."""
    report = kept(path)
    return report is not None and set(BASELINES) <= set(report["arms"])


def gains(report: dict, learner: str) -> dict[str, float]:
    """Each variant's paired gain of classic+variant over classic (this run's mean)."""
    arms = report["per_episode"][learner]
    return {v: episode_gain(report, learner, f"classic+{v}", "classic")
            for v in VARIANTS if f"classic+{v}" in arms}  # fmt: skip


def val_choice(path: Path, args: argparse.Namespace) -> str:
    """The design / variant the val stage chose, from its JSON, refused if val tried another
    class term, diversity or weight than test would measure."""
    if not path.is_file():
        sys.exit(f"{path} is missing: run --stage val first (the test stage measures its choice)")
    data = json.loads(path.read_text())
    tried = (data["class_loss"], data.get("diversity", args.diversity), data["weight"])
    if tried != (args.class_loss, args.diversity, args.weight):
        sys.exit(f"{path} chose with --class-loss {tried[0]} --diversity {tried[1]} --weight "
                 f"{tried[2]}: give those, or run --stage val with yours")  # fmt: skip
    return data["choice"]


def provenance(reports: dict) -> dict[str, str]:
    """The CPUs, threads and worker processes of the kept runs a stage's table reads (each
    value once, sorted: runs kept in different sessions may differ), not the aggregating
    command's own settings."""
    runs = [r for by_shots in reports.values() for by_seed in by_shots.values()
            for r in by_seed.values()]  # fmt: skip
    return {key: ", ".join(sorted({str(r[key]) for r in runs if key in r}))
            for key in ("cpu", "threads", "workers")}  # fmt: skip


def summary(
    reports: dict, stage: str, choice: str, seeds: list[int], shots_list: list[int], meta: dict
) -> dict:
    """The stage's JSON: per design, shots, learner and arm the accuracy over seeds and each
    arm against none, the plain learner's classic+variant against classic (paired per
    episode, over seeds), and per design / variant that gain averaged over the shots."""
    out = {"bench": "ablation", "stage": stage, "seeds": seeds, **meta, **provenance(reports),
           "designs": {}}  # fmt: skip
    scores = {}
    for design, by_shots in reports.items():
        table = summarize(by_shots, meta["threads"], [])["shots"]
        # plain: classic+v against classic, paired per episode; per shots, then per seed
        gain = {k: [gains(by_shots[k][s], "plain") for s in seeds] for k in shots_list}
        for shots, per_seed in gain.items():
            for v in per_seed[0]:
                table[str(shots)]["plain"][f"classic+{v}"]["vs_classic"] = interval(
                    [g[v] for g in per_seed]
                )
        out["designs"][design] = table
        for v in gain[shots_list[0]][0]:  # the choice's score: the mean over shots, per seed
            per_seed = [np.mean([gain[k][i][v] for k in shots_list]) for i in range(len(seeds))]
            scores[f"{design} / {v}"] = interval(per_seed)
    out["classic_plus_gain"] = scores
    # val chooses the highest; test reports val's choice
    out["choice"] = max(scores, key=lambda k: scores[k]["mean"]) if stage == "val" else choice
    design, variant = out["choice"].split(" / ")
    out["fewshot_goals"] = fewshot_goals(reports[design], variant)
    return out


def arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stage", choices=("val", "test"), required=True)
    parser.add_argument("--seeds", default="0,2,3")
    parser.add_argument("--shots", default="1,5")
    parser.add_argument("--episodes", type=int, default=600)
    parser.add_argument("--val-episodes", type=int, default=200)
    parser.add_argument("--class-loss", type=float, default=1.0, help="gan.class_loss to try")
    parser.add_argument("--diversity", type=float, help="gan.diversity of dagan+class+div "
                        "(chosen on meta-val; docs/choices.md)")  # fmt: skip
    parser.add_argument("--weight", type=float, default=0.25, help="the weighted views' weight")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--recipe-runs", help="dagan's train run per seed, '{seed}' in it")
    parser.add_argument("--designs", help="comma-separated; default: those the stage runs")
    parser.add_argument("--root", type=Path, default=REPO / "outputs" / "ablation")
    parser.add_argument("--store", type=Path, help="where finished runs' figures are kept "
                        "across sessions (default docs/results/ablation_runs; <root>/kept with "
                        "--quick)")  # fmt: skip
    parser.add_argument("--status", action="store_true", help="list kept and missing runs")
    parser.add_argument("--keep-unfinished", action="store_true", help="keep the scored "
                        "episodes of the unfinished runs under --root in --store, for the next "
                        "session to go on from (commit them)")  # fmt: skip
    parser.add_argument("--json", type=Path, help="default: docs/results/ablation.json (test "
                        "stage) or ablation_val.json (val stage)")  # fmt: skip
    parser.add_argument("--val-json", type=Path, help="where the test stage reads val's "
                        "choice (default: docs/results/ablation_val.json)")  # fmt: skip
    parser.add_argument("--quick", action="store_true", help="digits, tiny budgets")
    return parser.parse_args()


@dataclass(frozen=True)
class Budget:
    """The overrides of every run: data, train, fewshot, and the episodes per stage."""

    data: list[str]
    train: list[str]
    fewshot: list[str]
    episodes: dict[str, int]
    steps: int  # dagan's adaptation per episode class at 2 shots and more
    targets: int  # meta-test classes each design's images are measured on


def budget(args: argparse.Namespace) -> Budget:
    if args.quick:
        return Budget(
            data=["dataset.val_fraction=0.3", "dataset.test_fraction=0.4"],
            train=["gan=dagan", "gan.width=4", "meta_algo.iterations=3", "metric.epochs=1",
                   "metric.min_steps=0", "metric.fidelity.steps_per_class=0",
                   "generate.num_images=8", "validation.every=0", "finetune.steps=2",
                   "metric.kid_subset_size=4", "baselines.pretrain.iterations=3"],
            fewshot=["fewshot.ways=3", "learners.plain.steps=3", "metric.epochs=1",
                     "metric.min_steps=0", "fewshot.queries=3"],
            episodes={"val": 2, "test": 2}, steps=2, targets=2,
        )  # fmt: skip
    if not (OMNIGLOT / "images_background_small1.zip").exists():
        sys.exit(f"the shared Omniglot subset is not at {OMNIGLOT}")
    return Budget(
        data=DATA,
        train=["experiment=omniglot_cpu"], fewshot=[],
        episodes={"val": args.val_episodes, "test": args.episodes}, steps=50, targets=10,
    )  # fmt: skip


def trained(args: argparse.Namespace, b: Budget, seed: int, design: str) -> Path:
    """The run folder of `design` meta-trained for `seed`, trained here unless it is there
    (measuring one target: `generated` measures the design's images)."""
    train_dir = args.root / f"seed{seed}" / design
    if design == "dagan" and args.recipe_runs:
        train_dir = Path(args.recipe_runs.replace("{seed}", str(seed)))
    wanted = overrides(design, args)
    if (train_dir / "checkpoints" / "meta_init.pt").is_file():
        # a run trained with another weight of a term is not this design: never reuse it
        given = (train_dir / ".hydra" / "overrides.yaml").read_text().splitlines() if wanted else []
        if missing := [x for x in wanted if f"- {x}" not in given]:
            sys.exit(f"{train_dir} was trained without {missing}: move it aside, or ask for "
                     "its settings")  # fmt: skip
    else:
        run("train", *b.train, *b.data, *wanted, "target.classes=1",
            "compare_baselines=false", f"seed={seed}", f"hardware.threads={args.threads}",
            *take_up(train_dir), f"hydra.run.dir={train_dir}")  # fmt: skip
        print(f"trained {design}, seed {seed}: {train_dir}", flush=True)
    return train_dir


def overrides(design: str, args: argparse.Namespace) -> list[str]:
    return [x.format(w=args.class_loss, d=diversity(design, args)) for x in DESIGNS[design]]


def diversity(design: str, args: argparse.Namespace) -> float | None:
    """The mode-seeking weight `design` runs with (None: it has no such term)."""
    if not any("{d}" in x for x in DESIGNS[design]):
        return None
    if args.diversity is None:
        sys.exit(f"{design} needs --diversity: the term's weight, chosen on meta-val classes "
                 "(docs/choices.md, the mode-seeking term)")  # fmt: skip
    return args.diversity


def defined(design: str, settings: dict, args: argparse.Namespace) -> dict:
    """`settings` a kept run of `design` must have been measured with: with the diversity
    asked for where the design has the term (runs kept before the term existed have none)."""
    weight = diversity(design, args)
    return settings if weight is None else {**settings, "diversity": weight}


def generated(
    args: argparse.Namespace, b: Budget, seed: int, design: str, path: Path, settings: dict
) -> dict:
    """The design's images of `b.targets` meta-test classes (ablation_generation.py), from
    its train run taken up at its last checkpoint, beside scratch and pretrain (trained
    there: pretrain's updates took about 4 minutes on 2 cores); kept at `path` and read back."""
    out = args.root / f"seed{seed}" / f"{design}_targets"
    metrics = out / "metrics.json"
    done = metrics.is_file() and set(BASELINES) <= set(json.loads(metrics.read_text())["results"])
    if not done:
        last = trained(args, b, seed, design) / "checkpoints" / "last.pt"
        take_up(out)  # an interrupted or older attempt moves aside; it starts from `last`
        run("train", *b.train, *b.data, *overrides(design, args),
            f"target.classes={b.targets}", "compare_baselines=true", f"seed={seed}",
            f"hardware.threads={args.threads}", f"resume={last}",
            f"hydra.run.dir={out}")  # fmt: skip
    got = figures(json.loads(metrics.read_text()))
    got["arms"] = rounded(got["arms"])
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({**settings, "cpu": cpu_name(), "threads": args.threads, **got},
                               separators=(",", ":")) + "\n")  # fmt: skip
    show_progress(path.parents[1], args.stage)
    return load(path, settings)


def measure(
    args: argparse.Namespace,
    b: Budget,
    seed: int,
    design: str,
    variants: tuple[str, ...],
    todo: dict[int, Path],
    settings: dict,
) -> dict[int, dict]:
    """Run the fewshot runs of `design` (trained for `seed` unless its run is there) for the
    shot counts in `todo`, keeping each at its path; their reports, read back as kept."""
    threads = f"hardware.threads={args.threads}"
    checkpoint = trained(args, b, seed, design) / "checkpoints" / "meta_init.pt"
    reports = {}
    for shots, path in todo.items():
        out = run_folder(args.root, path)
        taken = 0  # episodes scored before this run began (its minutes leave them out)
        if not (out / "fewshot.json").is_file():
            # fusion samples with no fine-tune; DAGAN adapts on pairs of shots, so at 1 shot
            # it transforms the shot as is
            steps = 0 if design.startswith("fusion") or shots < 2 else b.steps
            if note := restore_unfinished(unfinished(path), out, cpu_name()):
                print(note, flush=True)
            resume = take_up(out)  # the episodes an interrupted run scored
            if resume:
                taken = scored(Path(resume[0].removeprefix("resume=")) / JOURNAL)
            run("fewshot", *resume, *b.data, *b.fewshot, f"fewshot.classes={args.stage}",
                f"fewshot.shots={shots}", f"fewshot.episodes={b.episodes[args.stage]}",
                "fewshot.learners=[plain,protonet]", *views(args.weight, variants),
                f"arms.gan.checkpoint={checkpoint}", f"arms.gan.steps={steps}",
                f"fewshot.workers={args.workers}", f"seed={seed}", threads,
                f"hydra.run.dir={out}")  # fmt: skip
        keep(path, json.loads((out / "fewshot.json").read_text()),
             {**settings, "cpu": cpu_name(), "threads": args.threads, "workers": args.workers,
              "taken_up": taken, "argv": sys.argv[1:]})  # fmt: skip
        unfinished(path).unlink(missing_ok=True)  # its episodes are in the kept run now
        show_progress(path.parents[1], args.stage)
        # read back, so that a fresh run and a kept one give the same figures
        reports[shots] = load(path, settings)
        print(f"{design}, seed {seed}, {shots} shot(s), {args.stage}: classic+variant - "
              f"classic (plain) {gains(reports[shots], 'plain')}", flush=True)  # fmt: skip
    return reports


def run_folder(root: Path, path: Path) -> Path:
    """The folder under `root` of the fewshot run kept at `path` (`seed<S>/<design>_<stage>_
    <K>shot`, as kept without `.json`)."""
    return root / path.parent.name / path.stem


def unfinished(path: Path) -> Path:
    """Where the scored episodes of the unfinished run to be kept at `path` are kept between
    sessions (`--keep-unfinished`)."""
    return path.with_name(f"{path.stem}.unfinished.jsonl")


def show_progress(store: Path, stage: str) -> None:
    """Write the runs of `stage` kept so far beside `store`, one row each (docs/results.md
    shows them while the stage's table waits for its last run)."""
    path = store.parent / f"ablation_{stage}_runs.json"
    path.write_text(json.dumps(progress(store, stage), indent=1, allow_nan=False) + "\n")


def main() -> None:
    args = arguments()
    b = budget(args)
    seeds = [int(s) for s in args.seeds.split(",")]
    shots_list = [int(s) for s in args.shots.split(",")]
    store = args.store or (args.root / "kept" if args.quick else KEPT)
    choice = None
    if args.stage == "test" and args.designs != "dagan":
        choice = val_choice(args.val_json or REPO / "docs" / "results" / "ablation_val.json", args)
    variants = plan(args.stage, choice)
    designs = args.designs.split(",") if args.designs else list(variants)
    if unknown := set(designs) - set(variants):
        sys.exit(f"--designs: {sorted(unknown)} not run at {args.stage}; it runs "
                 f"{', '.join(variants)}")  # fmt: skip
    stored = {(s, d, k): store / f"seed{s}" / f"{d}_{args.stage}_{k}shot.json"
              for s in seeds for d in designs for k in shots_list}  # fmt: skip
    drawn = {(s, d): store / f"seed{s}" / f"{d}_targets.json" for s in seeds for d in designs}
    drew = {"class_loss": args.class_loss, "quick": args.quick, "classes": b.targets}
    if args.keep_unfinished:
        for (s, d, k), path in stored.items():
            if path.is_file():
                continue
            if n := keep_unfinished(run_folder(args.root, path), unfinished(path), cpu_name()):
                print(f"{unfinished(path)}: {n} scored episodes of seed {s} {d} {k} shot(s)")
        return
    if args.status:
        for (s, d, k), path in stored.items():
            state = "kept" if path.is_file() else "missing"
            if not path.is_file() and (n := scored(unfinished(path))):
                state = f"unfinished, {n} episodes kept"
            print(f"seed {s} {d:13} {k} shot(s): {state}")
        for (s, d), path in drawn.items():
            state = "kept" if current(path) else "missing"
            if path.is_file() and not current(path):
                state = "kept without scratch and pretrain: to be measured again"
            print(f"seed {s} {d:13} images of {b.targets} meta-test classes: {state}")
        if store.is_dir():
            show_progress(store, args.stage)
        return
    reports: dict[str, dict[int, dict[int, dict]]] = {d: {} for d in designs}
    images: dict[str, dict[int, dict]] = {d: {} for d in designs}
    for seed in seeds:
        for design in designs:
            path = drawn[seed, design]
            asked = defined(design, drew, args)
            images[design][seed] = (load(path, asked) if current(path)
                                    else generated(args, b, seed, design, path, asked))  # fmt: skip
            # a kept run counts only if it was measured with the settings asked for now
            settings = defined(design, {
                "class_loss": args.class_loss, "weight": args.weight,
                "episodes": b.episodes[args.stage], "quick": args.quick,
                "variants": list(variants[design])}, args)  # fmt: skip
            paths = {k: stored[seed, design, k] for k in shots_list}
            todo = {k: path for k, path in paths.items() if not path.is_file()}
            got = {k: load(path, settings) for k, path in paths.items() if k not in todo}
            if todo:
                got |= measure(args, b, seed, design, variants[design], todo, settings)
            for shots, report in sorted(got.items()):
                reports[design].setdefault(shots, {})[seed] = report

    if designs != list(variants) or (args.stage == "test" and choice is None):
        print(f"kept under {store}; the {args.stage} JSON is written by a run of every "
              "design (leave out --designs)")  # fmt: skip
        return
    meta = {"threads": args.threads, "workers": args.workers, "class_loss": args.class_loss,
            "diversity": args.diversity, "weight": args.weight,
            "settings": sys.argv[1:]}  # fmt: skip
    out_data = summary(reports, args.stage, choice, seeds, shots_list, meta)
    out_data["generation"] = {d: generation_summary(images[d]) for d in designs}
    name = "ablation.json" if args.stage == "test" else "ablation_val.json"
    path = args.json or REPO / "docs" / "results" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(out_data, indent=1, allow_nan=False) + "\n")
    best = out_data["choice"]
    gain = out_data["classic_plus_gain"][best]["mean"]
    print(f"{'chosen on val' if args.stage == 'val' else 'val chose'}: {best} (classic+ gain "
          f"here {gain:+.4f}); wrote {path}")  # fmt: skip


if __name__ == "__main__":
    main()
