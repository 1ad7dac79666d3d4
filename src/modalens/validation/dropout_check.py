"""One modality-dropout model against the ablation's retraining: :func:`dropout_vs_ablation`.

``modalens ablate`` answers "how much worse without each modality" with 2N+1 trainings. A model
trained with ``train.modality_dropout`` answers it from one training: ``modalens subsets``
scores every subset of its inputs (:func:`~.subsets_run.evaluate_subsets`). This module checks
the shortcut against the real thing. From one run config and per seed it trains the ablation
(:func:`~.ablation.ablate`) and the same all-modality model with modality dropout, scores the
dropout model's subsets and compares, writing into ``OUT``::

    ablation/                  the ablation (every run, Table I)
    dropout/runs/all-seed<k>/  the dropout model per seed, with its subsets-test/ folder
    dropout_check.csv          per seed: Spearman rho of the single and leave-one-out rows,
                               mean |difference| of those metrics, the all-modality metric with
                               and without dropout, compute of each approach and their ratio
    dropout_rows.csv           per seed and Table I row: retrained and subset metric

The dropout model trains :data:`EPOCH_FACTOR` times the config's epochs (one model learns every
subset; see docs/training.md for what dropout costs at equal epochs), and its all-modality
metric is compared with the ablation's all-modality run, trained for the config's epochs.
    dropout_check.md           the tables and one sentence per target

Compute is measured, not counted: per run the training seconds (epochs x measured seconds per
epoch, the ablation's Table I columns) and, for the subsets, ``2^N - 1`` forward passes over the
test split at the dropout run's measured seconds per sample. As a noise floor the leave-one-out
ranking of each retrained seed is also compared with the next seed's (``spearman_loo_seeds``):
retraining itself does not reproduce a ranking better than that.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..display import tables_html
from ..io import atomic_write_csv, atomic_write_table, check_output, pipe_table
from ..progress import say
from ..tasks.headline import worse_by
from ..training.dropout import ModalityDropout
from .ablation import ablate
from .faithfulness_scores import spearman_rho
from .runs import run_setting
from .settings import parse_seeds, read_config, run_config
from .subsets_run import evaluate_subsets

#: the dropout used when none is given: ``train.modality_dropout``'s defaults
DEFAULT_DROPOUT: dict[str, Any] = ModalityDropout().model_dump()

#: the dropout model trains this many times the ablation runs' epochs: it learns every subset
#: at once (with the same epochs its all-modality metric fell short, docs/validation.md)
EPOCH_FACTOR = 2.0

#: the targets: rankings as retraining's, the all-modality metric kept, a fraction of the compute
TARGET_RHO, TARGET_ALL, TARGET_COMPUTE = 0.9, 0.05, 0.25


@dataclass
class DropoutCheckResult:
    """The outcome of :func:`dropout_vs_ablation`.

    Attributes:
        out: the folder written.
        table: ``dropout_check.csv`` (one row per seed).
        rows: ``dropout_rows.csv`` (per seed and Table I row).
        sentences: one plain sentence per target.
    """

    out: Path
    table: pd.DataFrame
    rows: pd.DataFrame
    sentences: list[str]

    def _repr_html_(self) -> str:
        return tables_html("Modality dropout vs retraining", {"": self.table, "rows": self.rows})


def _train_seconds(row: Mapping[str, Any]) -> float:
    return float(row["epochs"]) * float(row["train_s_per_epoch"])


def _seed_rows(
    seed: int,
    rows: Mapping[str, Mapping[str, Any]],
    subsets: pd.DataFrame,
    modalities: Sequence[str],
    metric: str,
) -> list[dict[str, Any]]:
    """Per Table I row of ``seed``: the retrained metric beside the dropout model's."""
    by = {str(r["subset"]): r for r in subsets.to_dict(orient="records")}
    plan = [("all", "all", list(modalities))]
    plan += [(f"single-{m}", "single", [m]) for m in modalities]
    if len(modalities) > 2:
        plan += [(f"leaveout-{m}", "leave_one_out", [o for o in modalities if o != m])
                 for m in modalities]  # fmt: skip
    out = []
    for name, kind, used in plan:
        retrained, filled = float(rows[name][metric]), float(by["+".join(used)][metric])
        out.append({
            "seed": seed, "setting": name, "kind": kind, "metric": metric,
            "retrained": retrained, "dropout_subset": filled,
            "abs_diff": abs(filled - retrained),
        })  # fmt: skip
    return out


def _deviations(rows: list[dict[str, Any]], kind: str, column: str, metric: str) -> list[float]:
    """How much worse than the all-modality row each row of ``kind`` is (in plan order)."""
    base = next(r[column] for r in rows if r["kind"] == "all")
    return [worse_by(r[column], base, metric) for r in rows if r["kind"] == kind]


def _seed_summary(
    seed: int,
    rows: list[dict[str, Any]],
    metric: str,
    ablation_s: float,
    dropout_row: Mapping[str, Any],
    shapley: pd.DataFrame,
    n_subsets: int,
) -> dict[str, Any]:
    single_r = _deviations(rows, "single", "retrained", metric)
    single_d = _deviations(rows, "single", "dropout_subset", metric)
    loo_r = _deviations(rows, "leave_one_out", "retrained", metric)
    loo_d = _deviations(rows, "leave_one_out", "dropout_subset", metric)
    all_r = next(r["retrained"] for r in rows if r["kind"] == "all")
    all_d = next(r["dropout_subset"] for r in rows if r["kind"] == "all")
    train_s = _train_seconds(dropout_row)
    subsets_s = n_subsets * float(dropout_row["n_test"]) * float(dropout_row["infer_s_per_sample"])
    diffs = [r["abs_diff"] for r in rows if r["kind"] != "all"]
    return {
        "seed": seed,
        "metric": metric,
        "spearman_single": spearman_rho(single_r, single_d),
        "spearman_loo": spearman_rho(loo_r, loo_d) if loo_r else math.nan,
        "spearman_shapley_loo": spearman_rho(shapley["shapley"], loo_r) if loo_r else math.nan,
        "mean_abs_diff": float(np.mean(diffs)) if diffs else math.nan,
        "all_retrained": all_r,
        "all_dropout": all_d,
        "all_worse_rel": worse_by(all_d, all_r, metric) / abs(all_r) if all_r else math.nan,
        "ablation_s": ablation_s,
        "dropout_train_s": train_s,
        "subsets_s": subsets_s,
        "compute_ratio": (train_s + subsets_s) / ablation_s if ablation_s > 0 else math.nan,
    }


def _noise_floor(table: pd.DataFrame, rows: pd.DataFrame, metric: str) -> None:
    """``spearman_loo_seeds``: each retrained seed's leave-one-out ranking against the next's."""
    seeds = list(table["seed"])
    per = {
        s: _deviations(rows[rows["seed"] == s].to_dict(orient="records"), "leave_one_out",
                       "retrained", metric)
        for s in seeds
    }  # fmt: skip
    table["spearman_loo_seeds"] = [
        spearman_rho(per[s], per[seeds[(i + 1) % len(seeds)]])
        if len(seeds) > 1 and per[s]
        else math.nan
        for i, s in enumerate(seeds)
    ]


def _markdown(frame: pd.DataFrame) -> list[str]:
    def cell(v: Any) -> str:
        return f"{v:.4g}" if isinstance(v, float) else str(v)

    rows = [[cell(v) for v in r] for r in frame.itertuples(index=False)]
    return pipe_table([str(c) for c in frame.columns], rows)


def describe_dropout_check(table: pd.DataFrame) -> list[str]:
    """One sentence per target of the comparison (ranking, all-modality metric, compute).

    Args:
        table: ``dropout_check.csv``.
    """
    n = len(table)
    lo = [c for c in ("spearman_single", "spearman_loo") if table[c].notna().any()]
    worst = float(table[lo].min().min()) if lo else math.nan
    held = bool((table[lo] >= TARGET_RHO).all().all()) if lo else False
    out = [
        f"Rankings: the dropout model's single and leave-one-out rows rank the modalities as "
        f"retraining does with rho >= {TARGET_RHO} in {'every' if held else 'not every'} seed "
        f"(lowest rho {worst:.2f} over {n} seed{'s' if n != 1 else ''})."
    ]
    if "spearman_loo_seeds" in table and table["spearman_loo_seeds"].notna().any():
        floor = float(table["spearman_loo_seeds"].min())
        out.append(
            f"Retraining with another seed reproduces its own leave-one-out ranking with rho "
            f"down to {floor:.2f}: differences below that are the data's, not the shortcut's."
        )
    rel = float(table["all_worse_rel"].max())
    how = f"at most {rel:.1%} worse" if rel > 0 else f"at least {-rel:.1%} better"
    out.append(
        f"All-modality {table['metric'].iloc[0]}: {how} with dropout than the ablation's "
        f"all-modality run ({'within' if rel <= TARGET_ALL else 'outside'} the "
        f"{TARGET_ALL:.0%} target; the dropout model trains {EPOCH_FACTOR:g}x as many epochs)."
    )
    ratio = float(table["compute_ratio"].max())
    out.append(
        f"Compute: one dropout training and its subsets cost at most {ratio:.2f}x the "
        f"ablation's training ({'within' if ratio <= TARGET_COMPUTE else 'above'} the "
        f"{TARGET_COMPUTE:.2f} target)."
    )
    return out


def dropout_run_config(
    run_cfg: Mapping[str, Any], dropout: Mapping[str, Any], epoch_factor: float = EPOCH_FACTOR
) -> dict[str, Any]:
    """``run_cfg`` with ``train.modality_dropout`` set and ``epoch_factor`` times its epochs
    (a cosine schedule spanning the run is stretched with it).

    Args:
        run_cfg: the all-modality run's config (:func:`~.settings.run_config`).
        dropout: ``train.modality_dropout``.
        epoch_factor: epochs of the dropout model over the config's.
    """
    train = dict(run_cfg.get("train") or {})
    epochs = train.get("epochs")
    if epochs is not None and epoch_factor != 1.0:
        longer = max(1, round(int(epochs) * epoch_factor))
        sched = train.get("scheduler")
        if isinstance(sched, Mapping) and sched.get("T_0") == epochs:
            train["scheduler"] = {**sched, "T_0": longer}
        train["epochs"] = longer
    train["modality_dropout"] = dict(dropout)
    return {**run_cfg, "train": train}


def dropout_vs_ablation(
    config: str | Path | Mapping[str, Any],
    out: str | Path,
    seeds: str | int | Sequence[int] = (0,),
    dropout: Mapping[str, Any] | None = None,
    overrides: Mapping[str, Any] | None = None,
    progress: bool = True,
    epoch_factor: float = EPOCH_FACTOR,
) -> DropoutCheckResult:
    """Compare one modality-dropout model's subsets with the ablation's retraining.

    Args:
        config: the base run config (YAML path or dict), as for :func:`~.ablation.ablate`.
        out: the folder (created; a rerun reuses finished runs and subsets).
        seeds: the seeds, e.g. ``"0,1,2"``.
        dropout: ``train.modality_dropout`` of the dropout model (default
            :data:`DEFAULT_DROPOUT`).
        overrides: nested dict merged over the config (``{"data": {"root": ...}}``).
        progress: print a line per run.
        epoch_factor: the dropout model's epochs over the config's (:data:`EPOCH_FACTOR`;
            its compute counts them).

    Returns:
        The :class:`DropoutCheckResult` (also written, see the module docstring).

    Raises:
        SpecError: a bad config, seed, dropout setting or ``out``.
    """
    out = check_output(out, "folder")
    seeds = parse_seeds(seeds)
    drop = dict(dropout or DEFAULT_DROPOUT)
    abl = ablate(config, out / "ablation", seeds, overrides, progress)
    cfg, _ = read_config(config, overrides)
    every = abl.settings[0]
    table, all_rows = [], []
    for seed in seeds:
        say(f"seed {seed}: the all-modality model with modality dropout", progress)
        run_cfg = dropout_run_config(run_config(cfg, every, seed), drop, epoch_factor)
        rec = run_setting(every, seed, run_cfg, out / "dropout")
        res = evaluate_subsets(rec.path, "test", progress=False)
        ablated = [r for r in abl.records if r.seed == seed]
        rows = _seed_rows(seed, {r.setting.name: r.row for r in ablated},
                          res.table, abl.modalities, res.metric)  # fmt: skip
        ablation_s = sum(_train_seconds(r.row) for r in ablated)
        n_subsets = 2 ** len(abl.modalities) - 1
        table.append(
            _seed_summary(seed, rows, res.metric, ablation_s, rec.row, res.shapley, n_subsets)
        )
        all_rows += rows
    frame, rows_frame = pd.DataFrame(table), pd.DataFrame(all_rows)
    _noise_floor(frame, rows_frame, str(frame["metric"].iloc[0]))
    sentences = describe_dropout_check(frame)
    atomic_write_csv(out / "dropout_rows.csv", rows_frame)
    text = "\n".join(
        ["# Modality dropout vs retraining", "", *sentences, "", *_markdown(frame), "",
         *_markdown(rows_frame), ""]
    )  # fmt: skip
    atomic_write_table(out / "dropout_check.csv", frame, text)
    return DropoutCheckResult(out, frame, rows_frame, sentences)
