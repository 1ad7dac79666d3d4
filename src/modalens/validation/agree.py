"""Agreement of ablation and occlusion: the paper's Fig. 5 and its claim, quantified.

The paper compares, per modality, the *relative performance deviation* ``|MAE_all - MAE_single|``
(Table I) with the dataset-level occlusion influence of the all-modality model and reports a
"high degree of agreement". :func:`agreement` measures it, for two deviations, each *signed* and
in one metric (:func:`~modalens.tasks.headline.worse_by`: how much worse a retrained model is
than the all-modality model, ``run - all`` for a metric where lower is better such as MAE,
``all - run`` for one where higher is better such as IoU):

- ``leave_one_out``: the model retrained without ``m`` against all modalities. Positive: ``m``
  helped -- what is lost without it, given the others; negative: the model is better without
  ``m`` (a negative importance). With two modalities the leave-one-out run of ``m`` is the
  other modality's single run.
- ``single``: the model trained on ``m`` alone against all modalities. Positive: ``m`` alone
  falls short of all modalities by that much; near zero: ``m`` alone predicts the target about
  as well as all of them; negative: ``m`` alone does better. It is the paper's
  ``|MAE_all - MAE_single|`` whenever the single run is the worse one, and it measures how well
  each modality alone predicts the target, not what the full model relies on.

The metric is the task's headline (:func:`~modalens.tasks.headline.headline_metric`: MAE for
regression, the positive class's IoU for a binary segmentation and the macro IoU otherwise, mAP
for classification) unless another is asked for. When the headline has no per-sample values, the
first metric that has them is used instead and a warning names both; ``agreement.csv`` keeps the
``metric`` used beside the task's ``headline``, and :func:`~.agreement_text.format_agreement`
says when they differ.

The deviations are compared with the influence of every (method, level, distance, strategy)
block of the all-modality run's attribution scores (the group ``ALL`` left out). Per pair it
reports Spearman's rho, Kendall's tau-b and Pearson's r of the normalised values (each vector
divided by the sum of its magnitudes, signs kept; r is unchanged by that) over the modalities,
and ``pairs_alike`` of the ``pairs`` of modalities ordered the same way by both, with percentile
bootstrap intervals over test samples: each draw resamples the test samples once, recomputes
every run's metric from the per-sample rows of its ``metrics_test.csv`` (weighted by the valid
count ``n``; ``rmse`` as the root of the weighted mean square, so mae, rmse, loss and pixel
accuracy equal their pooled values, while IoU and F1 become the pixel-weighted mean of the
per-sample scores, not Table I's pooled IoU) and the influences as means of the per-sample
scores of the same samples.

Reading the sign: if influence measures what the model relies on, it should correlate
*positively* with the ``leave_one_out`` deviation. A modality that alone comes close to all of
them (small ``single`` deviation) carries much information by itself, so an influence that
follows each modality's own strength correlates *negatively* with the ``single`` deviation. The
paper sets the single-modality deviation beside the influence as if larger meant more important;
the table reports the correlations as computed, sign included. A rank correlation over fewer
than :data:`~.agreement_text.MIN_FINDING` modalities, or an interval from fewer test samples,
describes these rankings but is too little to be a finding; the plain-text lines
(:func:`~.agreement_text.format_agreement`) and the report's reading say so.

With several seeds the metric of a setting is the mean over seeds (as in Table I's mean rows),
and the influence the mean over the seeds' all-modality runs. Written into the ablation folder:
``agreement.csv`` (one row per deviation x block), ``agreement_values.csv`` (per modality: the
signed deviation, the influence, their shares and share intervals) and ``agreement.png`` /
``.svg`` (:func:`~.figures.agreement_figure`).
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..attribution import attribute_run
from ..attribution.aggregation import BLOCK
from ..attribution.options import PAPER
from ..display import tables_html
from ..errors import DataError, SpecError
from ..io import atomic_write_csv
from ..tasks.headline import headline_metric, worse_by
from .bootstrap import STATISTICS, aggregate, correlation_row, resamples, value_rows
from .figures import agreement_figure, draw_agreement
from .record import read_record
from .runs import NOT_METRICS
from .settings import Setting, leave_one_out, parse_seeds, plan_settings, read_saved_config

#: the fills and levels attributed for the agreement: the defaults (train mean; loss level,
#: output level) beside the paper's four fills and its embedding level
AGREEMENT_STRATEGIES = ("mean", *PAPER["strategies"])
AGREEMENT_LEVELS = ("loss", "output", "embedding")
DEVIATIONS = ("single", "leave_one_out")
COLUMNS = [
    "deviation",
    "metric",
    "headline",
    *BLOCK,
    "n_modalities",
    "n_samples",
    "n_seeds",
    *[f"{s}{suffix}" for s in STATISTICS for suffix in ("", "_low", "_high")],
    "pairs_alike",
    "pairs",
    "n_boot",
]
ALL_GROUP = "ALL"


@dataclass
class AgreementResult:
    """The outcome of :func:`agreement`.

    Attributes:
        table: one row per deviation kind x block (``agreement.csv``).
        values: per deviation kind, block and modality: the signed ``deviation_value``, the
            ``influence``, their shares and share intervals (``agreement_values.csv``).
        metric: the metric the deviations are computed from.
        headline: the task's headline metric (None: unknown); differs from ``metric`` when
            another was asked for or the headline has no per-sample values.
        n_samples: test samples used.
        seeds: seeds used.
        paths: the files written.
    """

    table: pd.DataFrame
    values: pd.DataFrame
    metric: str
    headline: str | None
    n_samples: int
    seeds: tuple[int, ...]
    paths: dict[str, Path] = field(default_factory=dict)

    def _repr_html_(self) -> str:
        return tables_html(f"Agreement ({self.metric})", {"": self.table})

    def plot(self) -> Any:
        """The agreement figure (a :class:`matplotlib.figure.Figure`, not shown or written)."""
        return draw_agreement(self.values, self.table, n_samples=self.n_samples, seeds=self.seeds)


def _per_sample(path: Path) -> pd.DataFrame:
    if not path.is_file():
        raise DataError(
            "an ablation run is not finished (no metrics_test.csv)",
            str(path.parent),
            "rerun modalens ablate with the same arguments",
        )
    table = pd.read_csv(path, dtype={"id": str})
    return table[table["id"] != "all"].reset_index(drop=True)


def _choose_metric(
    table: pd.DataFrame, task: str | None, metric: str | None, where: Path
) -> tuple[str, str | None]:
    """The metric the deviations use and the task's headline metric (see the module docstring);
    warns when the headline has no per-sample values and another metric stands in."""
    usable = [
        c
        for c in table.columns
        if c not in ("id", "n") and pd.to_numeric(table[c], errors="coerce").notna().any()
    ]
    headline = headline_metric(task, table.columns)
    if metric is not None:
        if metric not in usable:
            raise SpecError(
                f"metric {metric!r} has no per-sample values",
                str(where),
                f"choose one of {', '.join(usable)}",
            )
        return metric, headline
    if headline is not None and headline in usable:
        return headline, headline
    others = [c for c in usable if c not in NOT_METRICS]
    used = others[0] if others else "loss"
    why = (
        f"the task's headline metric {headline!r} has no per-sample values"
        if headline is not None
        else f"no headline metric of task {task!r} is known or in the table"
    )
    warnings.warn(f"agreement: {why} in {where}; the deviations use {used!r} instead", stacklevel=3)
    return used, headline


def _load_scores(source: str | Path | pd.DataFrame) -> pd.DataFrame:
    if isinstance(source, pd.DataFrame):
        return source
    path = Path(source)
    file = path / "scores.parquet" if path.is_dir() else path
    if not file.is_file():
        raise DataError(
            "attribution scores not found",
            str(file),
            "give an attribute output folder (with scores.parquet) or its scores.parquet",
        )
    return pd.read_parquet(file) if file.suffix == ".parquet" else pd.read_csv(file)


def _seed_scores(out: Path, seed: int, progress: bool) -> pd.DataFrame:
    run = out / "runs" / f"all-seed{seed}"
    # resumed (and checked against these options) by attribute_run's store
    scores, _ = attribute_run(
        run,
        split="test",
        strategies=AGREEMENT_STRATEGIES,
        distances=("euclidean",),
        levels=AGREEMENT_LEVELS,
        out=run / "attribution" / "test-agreement",
        progress=progress,
    )
    return scores


def _influences(scores: pd.DataFrame, modalities: Sequence[str]) -> dict[tuple, pd.DataFrame]:
    need = {"sample_id", "group", "value", *BLOCK}
    missing = sorted(need - set(scores.columns))
    if missing:
        raise DataError(
            f"attribution scores lack columns {missing}",
            "scores",
            "pass the scores table attribute_run wrote",
        )
    s = scores[scores["group"].astype(str) != ALL_GROUP].copy()
    s["sample_id"] = s["sample_id"].astype(str)
    s["group"] = s["group"].astype(str)
    mean = s.groupby([*BLOCK, "sample_id", "group"], sort=False)["value"].mean()
    out: dict[tuple, pd.DataFrame] = {}
    for key, block in mean.groupby(level=list(range(len(BLOCK))), sort=False):
        wide = block.droplevel(list(range(len(BLOCK)))).unstack("group")
        if set(wide.columns) != set(modalities):
            continue  # band groups or another group set: not comparable with the ablation
        out[tuple(key)] = wide[list(modalities)].dropna()
    return out


def _finished_seeds(out: Path, record: dict, settings: list[Setting]) -> list[int]:
    return [
        int(k)
        for k in record.get("seeds", [])
        if all((out / "runs" / s.run_name(int(k)) / "metrics_test.csv").is_file() for s in settings)
    ]


def _seeds_used(
    out: Path, record: dict, settings: list[Setting], seeds: str | Sequence[int] | None
) -> list[int]:
    if seeds is None:
        used = _finished_seeds(out, record, settings)
        if not used:
            raise DataError(
                "no seed of the ablation has all its runs finished",
                str(out),
                "rerun modalens ablate with the same arguments",
            )
        return used
    used = list(parse_seeds(seeds))
    unknown = [k for k in used if k not in [int(s) for s in record.get("seeds", [])]]
    if unknown:
        raise SpecError(
            f"the ablation has no runs of seed(s) {unknown}",
            str(out),
            f"choose from {record.get('seeds')}",
        )
    return used


def _task(out: Path, record: dict, seed: int) -> str | None:
    """The runs' task: the ablation record's, else the all-modality run's saved config's."""
    if record.get("task"):
        return str(record["task"])
    saved = read_saved_config(out / "runs" / f"all-seed{seed}") or {}
    return str(saved["task"]) if saved.get("task") else None


def _deviations(
    settings: list[Setting], modalities: Sequence[str], setting_metric: Any, metric: str
) -> dict[str, np.ndarray]:
    """Per deviation kind, ``[1 + B, N]`` signed deviations (module docstring): how much worse
    each single-modality or leave-one-out run is than the all-modality run."""
    reference = setting_metric("all")
    out: dict[str, np.ndarray] = {}
    for kind in DEVIATIONS:
        cols = []
        for m in modalities:
            s = (
                next(x for x in settings if x.kind == "single" and x.modality == m)
                if kind == "single"
                else leave_one_out(settings, m)
            )
            missing = np.full(len(reference), np.nan)
            cols.append(worse_by(setting_metric(s.name), reference, metric) if s else missing)
        out[kind] = np.stack(cols, axis=-1)
    return out


def _common_ids(tables: dict, blocks: dict, out: Path) -> list[str]:
    ids = set.intersection(*[set(t["id"]) for t in tables.values()])
    for wide in blocks.values():
        ids &= set(wide.index)
    if not ids:
        raise DataError(
            "the runs and the attribution share no test sample",
            str(out),
            "attribute the all-modality run on the test split",
        )
    return sorted(ids)


def agreement(
    ablation_dir: str | Path,
    attributions: Sequence[str | Path | pd.DataFrame] | None = None,
    *,
    seeds: str | Sequence[int] | None = None,
    metric: str | None = None,
    n_boot: int = 1000,
    ci: float = 0.95,
    seed: int = 0,
    figure: bool = True,
    progress: bool = True,
) -> AgreementResult:
    """Agreement of the ablation's signed performance deviations with the occlusion influence.

    Args:
        ablation_dir: the folder :func:`~.ablation.ablate` wrote.
        attributions: score tables of the all-modality run(s): ``attribute`` output folders,
            ``scores.parquet`` files or DataFrames (averaged per sample). Default: each seed's
            ``runs/all-seed<k>/attribution/test``, attributed first (the paper's four strategies
            at embedding and output level, euclidean distance) when missing.
        seeds: the seeds used, e.g. ``(0, 1)`` or ``"0,1"`` (default: every seed whose runs
            are all finished).
        metric: the per-sample metric of ``metrics_test.csv`` the deviations use (default:
            the task's headline metric; when it has no per-sample values, the first metric
            that has them, with a warning naming both).
        n_boot: bootstrap resamples of the test samples (0: no intervals).
        ci: interval coverage.
        seed: the bootstrap's random seed.
        figure: also draw ``agreement.png`` and ``agreement.svg``.
        progress: show the attribution's progress.

    Returns:
        The :class:`AgreementResult` (its files are in ``ablation_dir``).

    Raises:
        DataError: not an ablation folder, fewer than two modalities, unfinished runs, no
            comparable scores or no common test samples.
        SpecError: a metric without per-sample values, or a seed the ablation has not run.
    """
    out = Path(ablation_dir)
    record = read_record(out)
    modalities = [str(m) for m in record["modalities"]]
    if len(modalities) < 2:
        raise DataError(
            f"agreement needs at least 2 modalities, the ablation has {len(modalities)}",
            str(out),
            "ablate a config that uses several modalities",
        )
    settings = plan_settings(modalities)
    used = _seeds_used(out, record, settings, seeds)
    tables = {
        (s.name, k): _per_sample(out / "runs" / s.run_name(k) / "metrics_test.csv")
        for k in used
        for s in settings
    }
    first_path = out / "runs" / settings[0].run_name(used[0]) / "metrics_test.csv"
    metric, headline = _choose_metric(
        tables[(settings[0].name, used[0])], _task(out, record, used[0]), metric, first_path
    )
    frames = (
        [_load_scores(a) for a in attributions]
        if attributions is not None
        else [_seed_scores(out, k, progress) for k in used]
    )
    blocks = _influences(pd.concat(frames, ignore_index=True), modalities)
    if not blocks:
        raise DataError(
            f"the attribution scores have no block whose groups are the modalities {modalities}",
            "scores",
            "attribute the all-modality run with --groups modalities",
        )
    ids = _common_ids(tables, blocks, out)
    n = len(ids)
    idx, boot = resamples(n, n_boot, seed)

    def setting_metric(name: str) -> np.ndarray:
        per_seed = []
        for k in used:
            t = tables[(name, k)].set_index("id").loc[ids]
            v = pd.to_numeric(t[metric], errors="coerce").to_numpy()
            w = pd.to_numeric(t["n"], errors="coerce").fillna(0).to_numpy()
            per_seed.append(aggregate(v, w, idx, metric))
        return np.mean(per_seed, axis=0)

    deviations = _deviations(settings, modalities, setting_metric, metric)
    counts = {
        "headline": headline,
        "n_modalities": len(modalities),
        "n_samples": n,
        "n_seeds": len(used),
    }
    table, values_table = _compare(blocks, deviations, ids, idx, metric, counts, modalities, ci)
    paths = _write_agreement(out, table, values_table, figure, n, used)
    return AgreementResult(table, values_table, metric, headline, n, tuple(used), paths)


def _compare(
    blocks: dict[tuple, pd.DataFrame],
    deviations: dict[str, np.ndarray],
    ids: list[str],
    idx: np.ndarray,
    metric: str,
    counts: dict[str, Any],
    modalities: Sequence[str],
    ci: float,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """``(agreement table, values table)``: every deviation against every block's influence
    over the resamples ``idx`` of the samples ``ids`` (``counts``: the rows' headline and
    sizes)."""
    boot = idx.shape[0] > 1
    n_boot = idx.shape[0] - 1
    rows: list[dict[str, Any]] = []
    value_table: list[dict[str, Any]] = []
    for key, wide in blocks.items():
        infl = wide.loc[ids].to_numpy(dtype=np.float64)[idx].mean(axis=1)  # [1 + B, N]
        for kind, dev in deviations.items():
            meta = {"deviation": kind, "metric": metric, **dict(zip(BLOCK, key, strict=True))}
            stats = correlation_row(dev, infl, ci, boot)
            rows.append({**meta, **counts, **stats, "n_boot": n_boot})
            value_table.extend(value_rows(meta, modalities, dev, infl, ci, boot))
    return pd.DataFrame(rows, columns=COLUMNS), pd.DataFrame(value_table)


def _write_agreement(
    out: Path,
    table: pd.DataFrame,
    values_table: pd.DataFrame,
    figure: bool,
    n: int,
    seeds: list[int],
) -> dict[str, Path]:
    """Write ``agreement.csv``, ``agreement_values.csv`` and (``figure``) the figure; the
    paths by kind (``csv``, ``values``, ``png``, ``svg``)."""
    paths = {"csv": out / "agreement.csv", "values": out / "agreement_values.csv"}
    for name, frame in (("csv", table), ("values", values_table)):
        atomic_write_csv(paths[name], frame)
    if figure:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            for suffix in ("png", "svg"):
                paths[suffix] = agreement_figure(
                    values_table, table, out / f"agreement.{suffix}", n_samples=n, seeds=seeds
                )
    return paths
