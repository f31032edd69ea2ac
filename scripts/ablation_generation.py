"""What each design of issue 22's ablation draws: its images of meta-test classes, measured by
`metaaug train` (fidelity, novel_fidelity, copies, ceiling, memorization, FID on the domain
classifier) beside scratch, pretrain and copy_shots, the goal's figures for generation.

Each design's meta-trained run is taken up once more from its last checkpoint with
`target.classes` meta-test classes drawn with the seed (no further meta-iteration: the
initialization is the one the few-shot runs sample), so the figures describe the same GAN the
ablation's gan arm uses; scratch and pretrain start from the same random weights and are
fine-tuned as the design is (fusion: not at all). A seed's mean over its targets is one
observation; the interval is over seeds, and each comparison with a baseline is paired per
target (recipe_summary.py says why).
"""

from __future__ import annotations

from typing import Any

from recipe_summary import finite_mean, interval

METRICS = ("fidelity", "novel_fidelity", "copies", "ceiling", "memorization", "fid")
NOVEL_RATIO_GOAL = 0.6  # issue 22: novel_fidelity >= 0.6 x ceiling
COPIES_GOAL = 0.10
BASELINES = ("scratch", "pretrain", "copy_shots")  # the goal: novel_fidelity above each


def figures(report: dict[str, Any]) -> dict[str, Any]:
    """Per target, the main arm's and each baseline's figures from a train run's metrics.json
    (null where a metric could not be measured), keyed `gan` and the baseline's name."""
    main = report["objective"]["arm"]
    targets = report["targets"]

    def per_target(arm: str) -> dict[str, list[float | None]]:
        return {k: [t["results"][arm].get(k) for t in targets] for k in METRICS}

    return {"targets": [t["class_name"] for t in targets],
            "arms": {"gan": per_target(main), **{b: per_target(b) for b in BASELINES}}}  # fmt: skip


def summary(kept: dict[int, dict[str, Any]]) -> dict[str, Any]:
    """A design over seeds (`kept[seed]` = its figures): every metric's mean over each seed's
    targets, then the mean and 95% interval over seeds; novel_fidelity against each baseline
    (paired per target); and the goals."""
    seeds = sorted(kept)
    arms = {
        arm: {k: interval([finite_mean(kept[s]["arms"][arm][k]) for s in seeds]) for k in METRICS}
        for arm in ("gan", *BASELINES)
    }

    def paired(s: int, baseline: str) -> float:
        gan, ref = (kept[s]["arms"][a]["novel_fidelity"] for a in ("gan", baseline))
        return finite_mean([g - c for g, c in zip(gan, ref, strict=True)
                            if g is not None and c is not None])  # fmt: skip

    versus = {b: interval([paired(s, b) for s in seeds]) for b in BASELINES}
    novel, ceiling = arms["gan"]["novel_fidelity"]["mean"], arms["gan"]["ceiling"]["mean"]
    ratio = novel / ceiling if novel is not None and ceiling else None
    copies = arms["gan"]["copies"]["mean"]
    goals = [
        {"goal": f"novel_fidelity >= {NOVEL_RATIO_GOAL} x ceiling (the ratio)", "value": ratio,
         "met": ratio is not None and ratio >= NOVEL_RATIO_GOAL},
        {"goal": f"copies <= {COPIES_GOAL} (the share)", "value": copies,
         "met": copies is not None and copies <= COPIES_GOAL},
    ]  # fmt: skip
    for b in BASELINES:
        low = versus[b]["ci95"][0]
        goals.append({"goal": f"novel_fidelity above {b} (the paired 95% interval's low end > 0)",
                      "value": low, "met": low is not None and low > 0})  # fmt: skip
    return {"seeds": seeds, "targets": {str(s): kept[s]["targets"] for s in seeds},
            "arms": arms, "novel_fidelity_vs": versus, "goals": goals}  # fmt: skip
