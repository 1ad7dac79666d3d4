"""Do the occlusion strategies agree, and do their fills stay in the data? (the paper's Fig. 6)

:func:`compare_strategies` reads an attribution folder's ``summary.csv`` (``modalens
attribute``) and writes into it:

- ``strategies.csv`` -- per level, distance, strategy and group (the occlusion rows, ``ALL``
  left out): the mean influence, its ``share`` of the block's summed influence (the shares of a
  block sum to 1), its ``rank`` (1 = most influential) and the fill sanity of that strategy and
  group (``outside_share``, ``flagged``; NaN / False for groups that are not modalities);
- ``concordance.csv`` -- per level and distance: Kendall's W
  (:func:`~.correlation.kendall_w`, tie-corrected) of the strategies' rankings of the groups;
- ``fill_sanity.csv`` -- per strategy and modality, the shares of filled values outside the
  train range (:func:`~.fills.fill_sanity`), flagged above ``threshold``;
- ``strategies.png`` / ``strategies.svg`` -- grouped bars
  (:func:`~.strategy_figure.strategy_figure`).

:func:`describe_strategies` turns the three tables into short sentences for a report.
"""

from __future__ import annotations

import json
import math
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..attribution.run import SOURCE_FILE, recorded_run
from ..attribution.strategies import STRATEGIES
from ..display import tables_html
from ..errors import DataError, SpecError
from ..io import atomic_write_csv
from ..plotting import label
from ..training.run import load_run
from .correlation import kendall_w, shares
from .fills import fill_sanity, train_statistics
from .strategy_figure import strategy_figure

STRATEGY_COLUMNS = [
    "level",
    "distance",
    "strategy",
    "group",
    "mean",
    "share",
    "rank",
    "outside_share",
    "flagged",
]
CONCORDANCE_COLUMNS = ["level", "distance", "n_strategies", "n_groups", "kendall_w"]
ALL_GROUP = "ALL"


@dataclass
class StrategiesResult:
    """What :func:`compare_strategies` computed and wrote.

    Attributes:
        strategies: ``strategies.csv`` (:data:`STRATEGY_COLUMNS`).
        concordance: ``concordance.csv`` (:data:`CONCORDANCE_COLUMNS`).
        fill: ``fill_sanity.csv`` (:data:`~.fills.FILL_COLUMNS`).
        lines: :func:`describe_strategies` of the three.
        paths: the files written, by kind (``strategies``, ``concordance``, ``fill``, ``png``,
            ``svg``).
    """

    strategies: pd.DataFrame
    concordance: pd.DataFrame
    fill: pd.DataFrame
    lines: list[str]
    paths: dict[str, Path] = field(default_factory=dict)

    def _repr_html_(self) -> str:
        tables = {"strategies.csv": self.strategies, "concordance.csv": self.concordance}
        return tables_html("Occlusion strategies", {**tables, "fill_sanity.csv": self.fill})


def read_summary(attr_dir: str | Path) -> pd.DataFrame:
    """The occlusion rows of an attribution folder's ``summary.csv`` (``ALL`` left out).

    Raises:
        DataError: no ``summary.csv``, or it has no occlusion rows.
    """
    path = Path(attr_dir) / "summary.csv"
    if not path.is_file():
        raise DataError(
            "no summary.csv in the attribution folder",
            str(path.parent),
            "give the output folder of modalens attribute",
        )
    s = pd.read_csv(path)
    s = s[(s["method"] == "occlusion") & (s["group"].astype(str) != ALL_GROUP)].copy()
    if s.empty:
        raise DataError("summary.csv has no occlusion rows", str(path), "rerun modalens attribute")
    s["group"] = s["group"].astype(str)
    return s


def strategy_table(summary: pd.DataFrame) -> pd.DataFrame:
    """Share and rank of every group per (level, distance, strategy) block of a summary.

    Args:
        summary: occlusion rows of ``summary.csv`` (:func:`read_summary`).

    Returns:
        Columns ``level, distance, strategy, group, mean, share, rank`` (rank 1 = largest mean,
        ties share the smaller rank).
    """
    rows = []
    for _, block in summary.groupby(["level", "distance", "strategy"], sort=False):
        mean = block["mean"].to_numpy(dtype=np.float64)
        share = shares(mean) if np.isfinite(mean).all() else np.full(len(mean), np.nan)
        rank = pd.Series(mean).rank(ascending=False, method="min").to_numpy()
        for (_, r), sh, rk in zip(block.iterrows(), share, rank, strict=True):
            rows.append(
                {
                    "level": r["level"],
                    "distance": r["distance"],
                    "strategy": r["strategy"],
                    "group": r["group"],
                    "mean": float(r["mean"]),
                    "share": float(sh),
                    "rank": int(rk) if np.isfinite(rk) else pd.NA,
                }
            )
    out = pd.DataFrame(rows, columns=STRATEGY_COLUMNS[:7])
    out["rank"] = out["rank"].astype("Int64")
    return out


def concordance_table(table: pd.DataFrame) -> pd.DataFrame:
    """Kendall's W of the strategies' rankings of the groups, per (level, distance).

    Args:
        table: :func:`strategy_table`.

    Returns:
        :data:`CONCORDANCE_COLUMNS` (strategies with a missing mean are left out).
    """
    rows = []
    for (level, distance), block in table.groupby(["level", "distance"], sort=False):
        wide = block.pivot(index="strategy", columns="group", values="mean").dropna()
        rows.append(
            {
                "level": level,
                "distance": distance,
                "n_strategies": int(wide.shape[0]),
                "n_groups": int(wide.shape[1]),
                "kendall_w": kendall_w(wide.to_numpy(dtype=np.float64)),
            }
        )
    return pd.DataFrame(rows, columns=CONCORDANCE_COLUMNS)


def _source(attr_dir: Path) -> dict[str, Any]:
    path = attr_dir / SOURCE_FILE
    try:
        return json.loads(path.read_text()) if path.is_file() else {}
    except json.JSONDecodeError:
        return {}


def compare_strategies(
    attr_dir: str | Path,
    run: str | Path | None = None,
    *,
    split: str | None = None,
    threshold: float = 0.01,
    samples: int | None = 16,
    data_root: str | Path | None = None,
    figure: bool = True,
    progress: bool = True,
) -> StrategiesResult:
    """Compare an attribution's strategies and check their fills (see the module docstring).

    Args:
        attr_dir: the output folder of ``modalens attribute`` (with ``summary.csv``).
        run: the run folder it was made from (default: the one its ``source.json`` names,
            :func:`~modalens.attribution.run.recorded_run`).
        split: whose samples are filled (default: the attribution's split, else ``test``).
        threshold: an outside share above it flags a strategy x modality (0.01 = 1 %).
        samples: at most this many samples are filled (None: the whole split).
        data_root: points the run's spec at another copy of the data.
        figure: also draw ``strategies.png`` and ``strategies.svg``.
        progress: show progress.

    Returns:
        The :class:`StrategiesResult` (its files are in ``attr_dir``).

    Raises:
        DataError: no summary, or no run given and none recorded.
        SpecError: a threshold outside [0, 1] or a non-positive sample count.
    """
    out = Path(attr_dir)
    summary = read_summary(out)
    source = _source(out)
    if run is None:
        run = recorded_run(out)
        if run is None:
            raise DataError(
                "the attribution folder does not record its run",
                str(out),
                "pass the run folder: modalens strategies ATTR_DIR --run RUN",
            )
    if samples is not None and int(samples) < 1:
        raise SpecError(f"samples must be at least 1, got {samples}", "--samples", "e.g. 16")
    split = split or str(source.get("split") or "test")
    loaded = load_run(run, data_root=data_root)
    table = strategy_table(summary)
    names = [s for s in dict.fromkeys(table["strategy"]) if s in STRATEGIES.names()]
    unknown = sorted(set(table["strategy"]) - set(names))
    if unknown:
        warnings.warn(f"strategies not registered here, not checked: {unknown}", stacklevel=2)
    config = _source_config(out)
    stats = train_statistics(loaded, cache=out / "train_statistics.json", progress=progress)
    fill = fill_sanity(
        loaded,
        names,
        split=split,
        samples=samples,
        threshold=threshold,
        draws=int(config.get("draws", 1)),
        seed=int(config.get("seed", 0)),
        statistics=stats,
        progress=progress,
    )
    flags = fill[["strategy", "group", "outside_share", "flagged"]]
    table = table.merge(flags, on=["strategy", "group"], how="left")
    table["flagged"] = table["flagged"].fillna(False).astype(bool)
    table = table[STRATEGY_COLUMNS]
    concordance = concordance_table(table)
    paths = {
        "strategies": out / "strategies.csv",
        "concordance": out / "concordance.csv",
        "fill": out / "fill_sanity.csv",
    }
    for key, frame in (("strategies", table), ("concordance", concordance), ("fill", fill)):
        atomic_write_csv(paths[key], frame)
    if figure:
        n = int(summary["n"].max()) if "n" in summary else 0
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            paths["png"] = strategy_figure(
                table,
                concordance,
                summary,
                out / "strategies.png",
                n_samples=n,
                threshold=threshold,
            )
        paths["svg"] = paths["png"].with_suffix(".svg")
    lines = describe_strategies(table, concordance, fill)
    return StrategiesResult(table, concordance, fill, lines, paths)


def _source_config(out: Path) -> dict[str, Any]:
    path = out / "parts" / "config.json"
    try:
        return json.loads(path.read_text()) if path.is_file() else {}
    except json.JSONDecodeError:
        return {}


def _agreement(w: float) -> str:
    if math.isnan(w):
        return "cannot be compared"
    if w >= 0.8:
        return "agree"
    if w >= 0.5:
        return "partly agree"
    return "disagree"


def _percent(v: float) -> str:
    return f"{100 * v:.0f} %" if v >= 0.01 or v == 0 else f"{100 * v:.1f} %"


def describe_strategies(
    strategies: pd.DataFrame, concordance: pd.DataFrame, fill: pd.DataFrame
) -> list[str]:
    """Short plain-language sentences on strategy agreement and fill sanity, for a report.

    Args:
        strategies: ``strategies.csv`` (:data:`STRATEGY_COLUMNS`).
        concordance: ``concordance.csv`` (:data:`CONCORDANCE_COLUMNS`).
        fill: ``fill_sanity.csv`` (:data:`~.fills.FILL_COLUMNS`).

    Returns:
        Sentences such as "At output level the strategies agree (W = 0.93)." and "`ones`
        leaves the train range for Sentinel-2 (100 % of filled values)."
    """
    lines: list[str] = []
    several = concordance["distance"].nunique() > 1 if len(concordance) else False
    for _, c in concordance.iterrows():
        named = several and c["distance"] != c["level"]  # the loss level has no distance
        where = label(c["level"]) + (f", {label(c['distance'])}" if named else "")
        w = float(c["kendall_w"])
        text = f"At {where} the {int(c['n_strategies'])} strategies {_agreement(w)}"
        lines.append(text + (f" (Kendall's W = {w:.2f})." if not math.isnan(w) else "."))
        block = strategies[
            (strategies["level"] == c["level"]) & (strategies["distance"] == c["distance"])
        ]
        top = block[block["rank"] == 1].groupby("group", sort=False)["strategy"].apply(list)
        if len(top) == 1:
            lines.append(f"Every strategy ranks {label(top.index[0])} first at {where}.")
        elif len(top) > 1:
            parts = "; ".join(f"{label(g)} ({', '.join(s)})" for g, s in top.items())
            lines.append(
                f"The most influential modality at {where} depends on the strategy: {parts}."
            )
    flagged = fill[fill["flagged"].astype(bool)]
    for strategy, rows in flagged.groupby("strategy", sort=False):
        categorical = rows["class_code_share"].notna()
        continuous, classes = rows[~categorical], rows[categorical]
        if len(continuous):
            parts = ", ".join(
                f"{label(r['group'])} ({_percent(r['outside_share'])}"
                + (" of the filled values)" if i == 0 else ")")
                for i, (_, r) in enumerate(continuous.iterrows())
            )
            lines.append(f"`{strategy}` leaves the train range for {parts}.")
        for _, r in classes.iterrows():
            if strategy == "nodata":
                lines.append(
                    f"`nodata` gives {label(r['group'])} a code no class maps to "
                    "(outside the class list by design)."
                )
            else:
                lines.append(
                    f"`{strategy}` gives {label(r['group'])} values that are no class code "
                    f"({_percent(r['outside_share'])} of the filled values)."
                )
    donors = set(STRATEGIES.names(lambda s: s.needs_batch))
    codes = fill[(fill["class_code_share"].fillna(0) > 0.5) & ~fill["strategy"].isin(donors)]
    for strategy, rows in codes.groupby("strategy", sort=False):
        groups = ", ".join(label(g) for g in rows["group"])
        lines.append(
            f"`{strategy}` fills {groups} with real class codes "
            f"({_percent(float(rows['class_code_share'].min()))} of the filled values): the "
            "model sees a class, not an absence."
        )
    if len(fill) and flagged.empty:
        t = float(fill["threshold"].iloc[0])
        lines.append(
            f"No strategy leaves the train range for more than {_percent(t)} of its values."
        )
    return lines
