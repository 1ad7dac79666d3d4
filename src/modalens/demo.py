"""``modalens demo``: the main job end to end on built-in synthetic data.

synth (planted importances) -> data check -> fit a small U-Net -> test -> attribute with the
paper's four occlusion strategies and three in-range fills -> dataset-level table, bar
figure, a comparison of the measured ranking with the planted one, the strategies compared and
their fills checked, sample views, influence per land-cover class and an HTML report (with
``--validate`` also the ablation, pruning and the faithfulness benchmark). Every step writes
into one folder and is resumable:
rerunning the demo reuses the data, continues an interrupted fit and skips attributed samples.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pandas as pd

from .attribution.aggregation import BLOCK, block_order, choose_block, format_summary
from .attribution.figures import influence_bar_chart
from .attribution.groups import ALL
from .attribution.run import attribute_run
from .attribution.strata import describe_strata, stratify
from .attribution.views import sample_views
from .data.checks import check_dataset, has_errors
from .data.checks import format_summary as format_data_summary
from .data.checks import summarize as summarize_data
from .data.presets.mapinwild import mapinwild_spec
from .data.samples import UNFINISHED_FILE
from .data.synthetic.generate import generate_synthetic
from .errors import DataError
from .fingerprint import differences
from .io import make_folder
from .report.build import build_report
from .training.evaluate import evaluate
from .training.fit import fit
from .training.runfolder import RunFolder
from .validation.ablation import ablate
from .validation.faithfulness import faithfulness
from .validation.pruning import describe_pruning, prune
from .validation.strategies import compare_strategies

DEMO_IMPORTANCE = {"s2": 0.45, "s1": 0.3, "esa_wc": 0.15, "viirs": 0.1}


#: the paper's four fills, then the in-range ones modalens adds (mean is the default)
STRATEGIES = ["zeros", "ones", "uniform", "gaussian", "mean", "permute", "nodata"]

#: the levels the demo attributes: the default's (loss), output, and the paper's embedding level
DEMO_LEVELS = ("loss", "output", "embedding")


def default_answer(summary: pd.DataFrame, planted: list[str]) -> str:
    """The line stating the default block's answer (the recommended block, loss level with the
    train-mean fill), its order with ties and whether it is the planted ranking."""
    block = choose_block(summary)
    rows = summary[
        (summary[BLOCK] == pd.Series(block)[BLOCK]).all(axis=1) & (summary["group"] != ALL)
    ].sort_values("mean", ascending=False)
    ranking = list(rows["group"])
    verdict = "the planted ranking" if ranking == planted else "NOT the planted ranking"
    return (
        f"default answer ({block['level']} level, {block['strategy']} fill): "
        f"{' > '.join(ranking)} by mean influence, {verdict}; with ties: {block_order(rows)}"
    )


def demo_config_path() -> Path:
    """The packaged demo run config (also at ``configs/demo.yaml`` in the repository)."""
    return Path(__file__).parent / "configs" / "demo.yaml"


def _synth_matches(data: Path, samples: int, size: int, seed: int) -> bool:
    meta = data / "metadata.json"
    if not meta.exists() or (data / UNFINISHED_FILE).exists():
        return False
    try:
        info = json.loads(meta.read_text())
    except json.JSONDecodeError:
        return False
    wanted = {"samples": samples, "size": size, "seed": seed}
    return not differences({k: info.get(k) for k in wanted}, wanted)


def run_demo(
    out: str | Path = "modalens-demo",
    samples: int = 60,
    size: int = 128,
    seed: int = 0,
    progress: bool = True,
    validate: bool = False,
) -> dict[str, Any]:
    """Run the demo into ``out`` and return its key results (metrics, summary, ranking).

    With ``validate`` it also runs the paper's validation on the demo data -- the 9-run
    ablation (Table I) with its agreement, pruning (reusing the ablation's runs) and the
    faithfulness benchmark -- before the report (about 15 minutes on 2 idle CPU cores).
    """

    out = Path(out)
    make_folder(out)
    data = out / "data"
    step = _Steps(8 + (3 if validate else 0))
    planted = _demo_data(data, out, samples, size, seed, progress, step)
    run_dir = out / "run"
    resume = RunFolder(run_dir).config.exists()
    step(f"training a small U-Net ({'resuming' if resume else 'new run'}) in {run_dir}")
    fit(
        demo_config_path(),
        out=run_dir,
        resume=resume,
        overrides={"data": {"root": str(data)}},
        progress=progress,
    )
    metrics = evaluate(run_dir, split="test")
    step("test metrics:\n" + metrics.to_string(index=False), numbered=False)

    step(
        "occluding each modality with the paper's four fills and mean, permute, nodata, at loss "
        "level (the default), output level and the paper's embedding level"
    )
    attr_dir = out / "attribution"
    _scores, summary = attribute_run(
        run_dir,
        split="test",
        strategies=STRATEGIES,
        distances=["euclidean"],
        levels=list(DEMO_LEVELS),
        out=attr_dir,
        progress=progress,
    )
    print(format_summary(summary))

    step("figure and agreement with the planted importances")
    fig = influence_bar_chart(summary, attr_dir / "influence.png")
    planted_rank = sorted(planted, key=lambda k: -planted[k])
    rankings = _compare_rankings(summary, planted, planted_rank)
    print(f"figure: {fig}")
    step("do the fills agree, and do they stay inside the training data?")
    strategies = compare_strategies(attr_dir, run_dir, progress=progress)
    print("\n".join(strategies.lines))
    step("sample views of the most influenced test scenes and influence per land-cover class")
    views = sample_views(run_dir, attr_dir, top_k=1, out=out)
    drawn = {p.stem for p in views if p.suffix == ".png"}
    print(f"views: {len(drawn)} samples drawn in {out / 'views'}")
    strata = stratify(attr_dir, run_dir, "dominant:esa_wc", out=attr_dir)
    print("\n".join(describe_strata(strata)))
    if validate:
        _validate(out, data, attr_dir, progress, step)
    step("writing the HTML report")
    report = build_report(out, title="modalens demo report")
    print(f"report: {report}  (open it in a browser; it needs no network)")
    step(f"done; everything is in {out}", numbered=False)
    return {
        "metrics": metrics,
        "summary": summary,
        "planted_ranking": planted_rank,
        "rankings": rankings,
        "figure": fig,
        "report": report,
    }


class _Steps:
    """Prints the demo's steps, numbered out of ``total``, with the time since the start."""

    def __init__(self, total: int) -> None:
        self.total, self.done, self.t0 = total, 0, time.perf_counter()

    def __call__(self, msg: str, numbered: bool = True) -> None:
        if numbered:
            self.done += 1
            msg = f"{self.done}/{self.total} {msg}"
        print(f"[{time.perf_counter() - self.t0:6.1f}s] {msg}", flush=True)


def _demo_data(
    data: Path, out: Path, samples: int, size: int, seed: int, progress: bool, step: _Steps
) -> dict[str, float]:
    """Write (or reuse) and check the demo's synthetic data; its planted importances.

    Raises:
        DataError: the folder holds data of other settings, or the data fail their check.
    """
    if _synth_matches(data, samples, size, seed):
        step(f"synthetic data already in {data}")
    elif (data / "metadata.json").exists() and not (data / UNFINISHED_FILE).exists():
        raise DataError(
            "the demo folder holds a demo made with other --samples/--size/--seed",
            str(out),
            "give another --out or delete the folder",
        )
    else:
        step(f"writing {samples} synthetic samples of {size}x{size} px to {data}")
        generate_synthetic(
            data,
            samples=samples,
            size=size,
            seed=seed,
            importance=DEMO_IMPORTANCE,
            progress=progress,
            overwrite=True,  # the demo's own folder: an interrupted demo's data is replaced
        )
    planted: dict[str, float] = json.loads((data / "metadata.json").read_text())["importance"]

    step("checking the dataset")
    spec = mapinwild_spec(data)
    problems = check_dataset(spec, progress=False)
    if has_errors(problems):
        raise DataError(
            "the synthetic dataset failed its check", str(data), f"delete {data} and rerun the demo"
        )
    print(format_data_summary(summarize_data(spec)))
    print("planted importances: " + ", ".join(f"{k} {v:.0%}" for k, v in planted.items()))
    return planted


def _compare_rankings(
    summary: pd.DataFrame, planted: dict[str, float], planted_rank: list[str]
) -> dict[str, list[str]]:
    """Print the planted ranking, each level and fill's measured one and the default answer;
    the measured rankings by ``level/strategy``."""
    print(
        f"planted importance ranking  : {' > '.join(planted_rank)}  "
        f"({', '.join(f'{k} {planted[k]:.0%}' for k in planted_rank)})"
    )
    rankings: dict[str, list[str]] = {}
    for level in DEMO_LEVELS:
        for strategy in STRATEGIES:
            rows = summary[
                (summary["level"] == level)
                & (summary["strategy"] == strategy)
                & (summary["group"] != "ALL")
            ].sort_values("mean", ascending=False)
            rankings[f"{level}/{strategy}"] = list(rows["group"])
    for key, ranking in rankings.items():
        agree = sum(a == b for a, b in zip(ranking, planted_rank, strict=False))
        print(
            f"measured {key:<19}: {' > '.join(ranking)}  ({agree}/{len(planted_rank)} "
            "positions as planted)"
        )
    print(default_answer(summary, planted_rank))
    return rankings


def _validate(out: Path, data: Path, attr_dir: Path, progress: bool, step: _Steps) -> None:
    """The demo's ``--validate`` steps: the ablation, pruning and the faithfulness benchmark."""
    step("validation: ablation (Table I, 9 runs) and its agreement with the influence")
    config = demo_config_path()
    overrides = {"data": {"root": str(data)}}
    ablation = ablate(
        config, out / "validation", overrides=overrides, attribute=True, progress=progress
    )
    print(ablation.table_md.read_text().rstrip())
    step("validation: pruning the least influential modalities (reusing the ablation)")
    pruning = prune(
        config,
        attr_dir,
        out / "pruning",
        overrides=overrides,
        reuse=out / "validation",
        progress=progress,
    )
    print("\n".join(describe_pruning(pruning.table)))
    step("validation: faithfulness benchmark (five worlds, one seed; docs/validation.md has three)")
    faith = faithfulness(out / "faithfulness", seeds=(0,), progress=progress)
    print("\n".join(faith.sentences))
