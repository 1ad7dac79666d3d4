"""``modalens prune``: retrain without the k least influential modalities and weigh the cost.

:func:`prune` ranks the config's modalities by an attribution summary (one block chosen by
:func:`modalens.attribution.aggregation.choose_block`: ``method``/``level``/``distance``/
``strategy``, least influential first), then trains -- with the ablation's machinery, one
resumable run per modality subset (:func:`~.settings.subset_setting`, :func:`~.runs.run_setting`)
-- the all-modality model (k = 0) and the models without the k least influential modalities,
k = 1..N-1, and writes::

    OUT/pruning.json                the base config, modalities, seeds, ranking (checked on reruns)
    OUT/runs/<setting>-seed<k>/     one run per modality subset and seed
    OUT/rows/<setting>-seed<k>.json each run's cached row
    OUT/pruning.csv, OUT/pruning.md the table (:data:`PRUNING_COLUMNS`)
    OUT/pruning.png, OUT/pruning.svg metric and time against k (:mod:`.prunefigure`)

A run already finished in an ablation folder (``reuse``) with the same base config, modalities
and seed is read from there instead of retrained. ``within_tolerance`` holds where the main
metric (the task's first: MAE, IoU, mAP) is worse than the all-modality model's by at most
``tolerance`` relative to it (improvements always pass). :func:`describe_pruning` reads the
table out in sentences.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from ..attribution.aggregation import BLOCK, choose_block, summarize_scores
from ..display import tables_html
from ..errors import DataError, SpecError
from ..fingerprint import differences, plain
from ..io import atomic_write_table, check_output, make_folder, pipe_table
from ..plotting import label
from ..progress import say
from ..tasks.headline import lower_is_better
from .prunefigure import draw_pruning, pruning_figure
from .record import PRUNING, RECORD, check_record, read_record, write_record
from .runs import RunRecord, is_finished, run_setting
from .settings import (
    Setting,
    config_modalities,
    parse_seeds,
    read_config,
    run_config,
    subset_setting,
)

#: the columns of ``pruning.csv`` around the task's metrics (and their ``_std``)
LEADING = ["k", "dropped", "kept", "n_seeds"]
TRAILING = [
    "main_metric",
    "delta",
    "rel_delta",
    "tolerance",
    "within_tolerance",
    "train_s_per_epoch",
    "infer_s_per_sample",
    "params",
    "speedup_train",
    "speedup_infer",
    "ranked_by",
    "n_test",
    "runs",
]


@dataclass
class PruningResult:
    """The outcome of :func:`prune`.

    Attributes:
        out: the pruning folder.
        table: the table written to ``pruning.csv``.
        ranking: modalities, least influential first.
        block: the summary block ranked by (method, level, distance, strategy).
        records: one :class:`~.runs.RunRecord` per run, in the order run.
        statuses: runs ``trained``, ``resumed``, ``skipped`` or ``reused`` in this call.
    """

    out: Path
    table: pd.DataFrame
    ranking: list[str]
    block: dict[str, str]
    records: list[RunRecord] = field(default_factory=list)
    statuses: dict[str, int] = field(default_factory=dict)

    def _repr_html_(self) -> str:
        return tables_html(f"Pruning ({self.out})", {"": self.table})

    def plot(self) -> Any:
        """The pruning figure (a :class:`matplotlib.figure.Figure`, not shown or written)."""
        return draw_pruning(self.table)


def read_summary(influence: str | Path | pd.DataFrame) -> tuple[pd.DataFrame, str]:
    """An attribution summary from a folder, a ``summary.csv``, a ``scores.parquet`` or a table.

    Args:
        influence: the attribution folder or file, or a summary / scores DataFrame.

    Returns:
        ``(summary, where)`` (``where`` names the source in errors).

    Raises:
        DataError: nothing readable there.
    """
    if isinstance(influence, pd.DataFrame):
        table = influence
        summary = table if "mean" in table.columns else summarize_scores(table, n_boot=0)
        return summary, "influence"
    path = Path(influence)
    if path.is_dir():
        path = path / "summary.csv" if (path / "summary.csv").is_file() else path / "scores.parquet"
    if path.suffix == ".parquet" and path.is_file():
        return summarize_scores(pd.read_parquet(path), n_boot=0), str(path)
    if not path.is_file():
        raise DataError(
            "no attribution summary.csv or scores.parquet",
            str(influence),
            "give the --out folder of modalens attribute or its summary.csv",
        )
    return pd.read_csv(path), str(path)


def least_influential(
    summary: pd.DataFrame, modalities: Sequence[str], where: str = "summary", **block: str | None
) -> tuple[list[str], dict[str, str]]:
    """The modalities ordered from least to most influential in one block of a summary.

    Args:
        summary: an attribution summary (groups = modalities).
        modalities: the modalities to rank (the config's).
        where: the source named in errors.
        **block: ``method``, ``level``, ``distance``, ``strategy`` (None: chosen).

    Returns:
        ``(ranking, block)``; ties keep the dataset's order.

    Raises:
        DataError: the block is absent or lacks one of ``modalities``.
    """
    chosen = choose_block(summary, where=where, **block)
    rows = summary
    for key, value in chosen.items():
        rows = rows[rows[key].astype(str) == value]
    means = {str(g): float(v) for g, v in zip(rows["group"], rows["mean"], strict=True)}
    missing = [m for m in modalities if m not in means]
    if missing:
        raise DataError(
            f"the attribution has no influence for {missing} (groups: {', '.join(means)})",
            where,
            "attribute the all-modality run of this config with groups = modalities",
        )
    order = sorted(range(len(modalities)), key=lambda i: (means[modalities[i]], i))
    return [modalities[i] for i in order], chosen


def _better_low(metric: str) -> bool:
    return lower_is_better(metric)


def _reusable(reuse: Path | None, cfg: Mapping[str, Any], modalities: Sequence[str]) -> bool:
    if reuse is None or not (reuse / RECORD).is_file():
        return False
    saved = read_record(reuse)
    return list(saved.get("modalities") or []) == list(modalities) and not differences(
        saved.get("config") or {}, plain(cfg), ignore=("data.root",)
    )


def pruning_table(
    rows: Sequence[Mapping[str, Any]],
    metrics: Sequence[str],
    tolerance: float,
    ranked_by: str,
) -> pd.DataFrame:
    """The pruning table from per-run rows (see the module docstring).

    Args:
        rows: one row per run (:func:`~.runs.table_row` plus ``k``, ``dropped``, ``kept``).
        metrics: the task's metric columns (the first is the main metric).
        tolerance: the relative tolerance on the main metric.
        ranked_by: the ranking block, e.g. ``occlusion/embedding/euclidean/zeros``.

    Returns:
        One row per k (mean over seeds, ``<metric>_std`` the sample std), k = 0 first.
    """
    std_cols = [f"{m}_std" for m in metrics]
    columns = [*LEADING, *metrics, *std_cols, *TRAILING]
    if not rows:
        return pd.DataFrame(columns=columns)
    frame = pd.DataFrame(list(rows))
    out: list[dict[str, Any]] = []
    for k, grp in frame.groupby("k", sort=True):
        row: dict[str, Any] = {
            "k": int(k),
            "dropped": grp["dropped"].iloc[0],
            "kept": grp["kept"].iloc[0],
            "n_seeds": int(len(grp)),
        }
        for m in metrics:
            vals = pd.to_numeric(grp[m], errors="coerce")
            row[m] = float(vals.mean())
            row[f"{m}_std"] = float(vals.std(ddof=1)) if len(vals) > 1 else math.nan
        row["train_s_per_epoch"] = float(grp["train_s_per_epoch"].mean())
        row["infer_s_per_sample"] = float(grp["infer_s_per_sample"].mean())
        row["params"] = int(grp["parameters"].iloc[0])
        row["n_test"] = int(grp["n_test"].max())
        row["runs"] = ";".join(str(r) for r in grp["run"])
        out.append(row)
    table = pd.DataFrame(out)
    main = metrics[0]
    ref = table[table["k"] == 0]
    base = float(ref[main].iloc[0]) if len(ref) else math.nan
    table["main_metric"] = main
    table["delta"] = table[main] - base
    table["rel_delta"] = table["delta"] / abs(base) if base else math.nan
    table["tolerance"] = float(tolerance)
    worse = table["rel_delta"] if _better_low(main) else -table["rel_delta"]
    table["within_tolerance"] = (worse <= float(tolerance) + 1e-12) & table["rel_delta"].notna()
    for col, speed in (
        ("train_s_per_epoch", "speedup_train"),
        ("infer_s_per_sample", "speedup_infer"),
    ):
        ref_t = float(ref[col].iloc[0]) if len(ref) else math.nan
        table[speed] = ref_t / table[col]
    table["ranked_by"] = ranked_by
    return table[columns].reset_index(drop=True)


def _names(text: Any) -> list[str]:
    return [t for t in str(text).split("+") if t and t != "nan"]


def _listing(names: Sequence[str]) -> str:
    shown = [label(n) for n in names]
    return shown[0] if len(shown) == 1 else ", ".join(shown[:-1]) + " and " + shown[-1]


def markdown_pruning(table: pd.DataFrame, metrics: Sequence[str]) -> str:
    """The pruning table as Markdown (times in s/epoch and ms/sample).

    Args:
        table: from :func:`pruning_table`.
        metrics: the metric columns shown.

    Returns:
        The Markdown text, with the ranking and tolerance under it.
    """
    if len(table) == 0:
        return "(no runs)\n"
    main = str(table["main_metric"].iloc[0])
    tol = float(table["tolerance"].iloc[0])
    header = ["k", "dropped", "kept", *[m.upper() for m in metrics], f"Δ {main.upper()}"]
    header += ["train (s/epoch)", "× train", "inference (ms/sample)", "× inference", "parameters"]
    header += [f"within {100 * tol:g} %"]
    rows: list[list[str]] = []
    for _, r in table.iterrows():
        cells = [
            str(int(r["k"])),
            ", ".join(_names(r["dropped"])) or "-",
            ", ".join(_names(r["kept"])),
        ]
        for m in metrics:
            text = f"{r[m]:.4g}"
            if not pd.isna(r.get(f"{m}_std")):
                text += f" ± {r[f'{m}_std']:.2g}"
            cells.append(text)
        cells.append("-" if r["k"] == 0 else f"{r['delta']:+.3g} ({100 * r['rel_delta']:+.1f} %)")
        cells += [
            f"{r['train_s_per_epoch']:.3g}",
            f"{r['speedup_train']:.2f}",
            f"{1000 * r['infer_s_per_sample']:.3g}",
            f"{r['speedup_infer']:.2f}",
            f"{int(r['params']):,}",
            "yes" if bool(r["within_tolerance"]) else "no",
        ]
        rows.append(cells)
    lines = pipe_table(header, rows, ["---:", "---", "---"] + ["---:"] * (len(header) - 3))
    seeds = int(table["n_seeds"].max())
    lines += [
        "",
        f"Modalities dropped least influential first by {table['ranked_by'].iloc[0]}; test "
        f"metrics on {int(table['n_test'].max())} samples, mean over {seeds} seed(s); "
        f"× = speed-up against all modalities.",
    ]
    lines += ["", *describe_pruning(table)]
    return "\n".join(lines) + "\n"


def describe_pruning(table: pd.DataFrame) -> list[str]:
    """Plain-language sentences on a pruning table.

    Args:
        table: from :func:`prune` (or ``pruning.csv`` read back).

    Returns:
        Which k is the largest within the tolerance (with its metric change and speed-ups), or
        that none is, and the change at every k; empty without pruned rows.
    """
    pruned = table[table["k"] > 0].sort_values("k")
    if pruned.empty:
        return []
    main = str(pruned["main_metric"].iloc[0]).upper()
    tol = 100 * float(pruned["tolerance"].iloc[0])
    ok = pruned[pruned["within_tolerance"].astype(bool)]
    lines = []
    if len(ok):
        r = ok.iloc[-1]
        k = int(r["k"])
        gap = not pruned[pruned["k"] < k]["within_tolerance"].astype(bool).all()
        lines.append(
            f"Dropping {_listing(_names(r['dropped']))} (k = {k}) keeps {main} within "
            f"{tol:g} % ({100 * r['rel_delta']:+.1f} %) and trains {r['speedup_train']:.2f}× "
            f"and infers {r['speedup_infer']:.2f}× as fast as all modalities"
            + (" (although a smaller k does not)" if gap else "")
            + "."
        )
    else:
        r = pruned.iloc[0]
        lines.append(
            f"Dropping even the least influential modality ({_listing(_names(r['dropped']))}) "
            f"changes {main} by {100 * r['rel_delta']:+.1f} %, beyond the {tol:g} % tolerance."
        )
    for _, r in pruned.iterrows():
        lines.append(
            f"k = {int(r['k'])} (keeping {_listing(_names(r['kept']))}): {main} "
            f"{100 * r['rel_delta']:+.1f} %, {'within' if r['within_tolerance'] else 'beyond'} "
            f"the tolerance; {r['speedup_train']:.2f}× training, {r['speedup_infer']:.2f}× "
            "inference speed."
        )
    return lines


def prune(
    config: str | Path | Mapping[str, Any],
    influence: str | Path | pd.DataFrame,
    out: str | Path,
    tolerance: float = 0.05,
    seeds: str | int | Sequence[int] = (0,),
    *,
    overrides: Mapping[str, Any] | None = None,
    method: str | None = None,
    level: str | None = None,
    distance: str | None = None,
    strategy: str | None = None,
    reuse: str | Path | None = None,
    progress: bool = True,
    timing_samples: int | None = None,
    figure: bool = True,
) -> PruningResult:
    """Train without the k least influential modalities, k = 0..N-1 (see the module docstring).

    Args:
        config: the base run config (YAML path or dict); its ``use``/``drop`` pick the
            modalities to prune from; ``train.seed`` is replaced by each of ``seeds``.
        influence: an attribution folder, its ``summary.csv`` / ``scores.parquet``, or a table.
        out: the pruning folder (created; a rerun continues it).
        tolerance: the relative tolerance on the main metric (0.05 = 5 %).
        seeds: seeds, e.g. ``(0, 1, 2)`` or ``"0,1,2"``.
        overrides: nested dict merged over the config (``{"data": {"root": ...}}``).
        method: the method of the summary block to rank by (None: chosen).
        level: the block's level (None: chosen).
        distance: the block's distance (None: chosen).
        strategy: the block's strategy (None: chosen).
        reuse: an ablation folder whose finished runs of the same config are used.
        progress: print a line per run.
        timing_samples: time inference on this many test samples per run (None: all).
        figure: write ``pruning.png`` + ``.svg``.

    Returns:
        The :class:`PruningResult`.

    Raises:
        SpecError: a bad config, seed, tolerance or ``out``, or ``out`` holding other work.
        DataError: no usable attribution summary, or the dataset cannot be read.
    """
    out = check_output(out, "folder")
    if not 0 <= float(tolerance) < 10:
        raise SpecError(f"tolerance {tolerance} out of range", "--tolerance", "use e.g. 0.05")
    cfg, source = read_config(config, overrides)
    seeds = parse_seeds(seeds)
    modalities = config_modalities(cfg, source)
    if len(modalities) < 2:
        raise SpecError(
            f"nothing to prune: one modality ({modalities[0]})", "use", "keep two or more"
        )
    summary, where = read_summary(influence)
    ranking, block = least_influential(
        summary,
        modalities,
        where,
        method=method,
        level=level,
        distance=distance,
        strategy=strategy,
    )
    ranked_by = "/".join(block[k] for k in BLOCK)
    check_record(out, cfg, modalities, record=PRUNING)
    make_folder(out)
    reuse_dir = _reuse_folder(reuse, cfg, modalities, progress)
    say(f"ranking ({ranked_by}), least influential first: {', '.join(ranking)}", progress)
    plan = [(seed, k, ranking[:k]) for seed in seeds for k in range(len(modalities))]
    rows: list[dict[str, Any]] = []
    records: list[RunRecord] = []
    statuses: dict[str, int] = {}
    metrics: list[str] = []
    for step, (seed, k, dropped) in enumerate(plan, 1):
        kept = [m for m in modalities if m not in dropped]
        setting = subset_setting(modalities, kept)
        head = f"[{step}/{len(plan)}] k = {k} ({setting.short}) seed {seed}"
        record = _pruning_run(setting, seed, cfg, out, reuse_dir, head, progress, timing_samples)
        records.append(record)
        statuses[record.status] = statuses.get(record.status, 0) + 1
        if not metrics:
            metrics = list(record.metrics)
            extra = {"ranking": ranking, "block": block, "tolerance": float(tolerance)}
            write_record(out, cfg, modalities, seeds, metrics=metrics, record=PRUNING, extra=extra)
        say(f"{head}: {record.status} ({record.seconds:.1f} s)", progress)
        rows.append({**record.row, "k": k, "dropped": "+".join(dropped), "kept": "+".join(kept)})
    table = pruning_table(rows, metrics, float(tolerance), ranked_by)
    atomic_write_table(out / "pruning.csv", table, markdown_pruning(table, metrics))
    if figure and len(table):
        pruning_figure(table, out / "pruning.png")
    return PruningResult(out, table, ranking, block, records, statuses)


def _reuse_folder(
    reuse: str | Path | None, cfg: Mapping[str, Any], modalities: list[str], progress: bool
) -> Path | None:
    """The ablation folder whose finished runs pruning takes over (None: none, or ``reuse``
    is not an ablation of this config -- said when progress is on)."""
    if reuse is None:
        return None
    if _reusable(Path(reuse), cfg, modalities):
        return Path(reuse)
    say(f"note: {Path(reuse)} is not an ablation of this config; not reused", progress)
    return None


def _pruning_run(
    setting: Setting,
    seed: int,
    cfg: Mapping[str, Any],
    out: Path,
    reuse: Path | None,
    head: str,
    progress: bool,
    timing_samples: int | None,
) -> RunRecord:
    """Train (or resume) one run of ``setting`` and ``seed`` in ``out``, or take it over from
    the ablation folder ``reuse`` where it finished there (status ``reused``)."""
    name = setting.run_name(seed)
    folder = reuse if reuse is not None and is_finished(reuse / "runs" / name) else out
    if not is_finished(folder / "runs" / name):
        say(f"{head}: training ...", progress)
    config = run_config(cfg, setting, seed)
    record = run_setting(
        setting, seed, config, folder, progress=False, timing_samples=timing_samples
    )
    if folder is not out:
        record.status = "reused"
    return record
