"""The paper's Table I as ``table1.csv`` and ``table1.md``.

One row per run (setting x seed): ``setting`` (``all``, ``single-<m>``, ``leaveout-<m>``),
``label`` (Table I's wording), ``kind``, ``modality`` (used alone or left out),
``modalities`` (used, ``+``-joined in the dataset's order), ``n_modalities``, ``seed``,
``n_seeds``, the task's pooled test metrics (regression: ``mae``, ``rmse``), ``n_test`` (test
samples), ``epochs``, ``train_s_per_epoch`` (mean training seconds per epoch),
``infer_s_per_sample`` (forward-pass seconds per test sample), ``parameters`` and ``run`` (the
run folder, relative to the ablation folder).

With several seeds, every setting also gets an aggregate row (``seed = "mean"``,
``n_seeds`` = the seeds) holding the mean over its seeds, and ``<column>_std`` columns hold the
sample standard deviation (ddof 1) of the metrics and timings on those rows (empty elsewhere).
The Markdown table shows the aggregate rows as ``mean ± std`` when there are several seeds, the
single run of each setting otherwise.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from ..io import atomic_write_table, pipe_table

#: columns before the metrics and after them (the metrics are the task's)
LEADING = [
    "setting",
    "label",
    "kind",
    "modality",
    "modalities",
    "n_modalities",
    "seed",
    "n_seeds",
]
TRAILING = ["n_test", "epochs", "train_s_per_epoch", "infer_s_per_sample", "parameters", "run"]
TIMINGS = ["train_s_per_epoch", "infer_s_per_sample"]


def build_table(
    rows: Sequence[dict[str, Any]], metrics: Sequence[str], settings_order: Sequence[str]
) -> pd.DataFrame:
    """Table I from per-run rows (see the module docstring).

    Args:
        rows: one dict per run (:func:`~.runs.table_row`).
        metrics: the metric columns, in order.
        settings_order: setting names in table order.

    Returns:
        The table; aggregate rows and ``*_std`` columns only when a setting has several seeds.
    """
    columns = [*LEADING, *metrics, *TRAILING]
    if not rows:
        return pd.DataFrame(columns=columns)
    table = pd.DataFrame(list(rows))
    for col in columns:
        if col not in table.columns:
            table[col] = math.nan
    order = {name: i for i, name in enumerate(settings_order)}
    table["_order"] = table["setting"].map(order)
    table["_seed"] = pd.to_numeric(table["seed"], errors="coerce")
    table = table.sort_values(["_order", "_seed"], kind="stable")
    spread = [*metrics, *TIMINGS]
    several = table.groupby("setting")["seed"].nunique().max() > 1
    if not several:
        return table[columns].reset_index(drop=True)
    out: list[dict[str, Any]] = []
    for _, group in table.groupby("_order", sort=True):
        out.extend(group.to_dict(orient="records"))
        if len(group) < 2:
            continue
        agg = dict(group.iloc[0])
        agg["seed"] = "mean"
        agg["n_seeds"] = int(len(group))
        agg["run"] = ""
        for col in [*spread, "epochs", "parameters", "n_test"]:
            agg[col] = float(pd.to_numeric(group[col], errors="coerce").mean())
        for col in spread:
            agg[f"{col}_std"] = float(pd.to_numeric(group[col], errors="coerce").std(ddof=1))
        out.append(agg)
    result = pd.DataFrame(out)
    std_cols = [f"{c}_std" for c in spread]
    for col in std_cols:
        if col not in result.columns:
            result[col] = math.nan
    return result[[*columns, *std_cols]].reset_index(drop=True)


def _number(value: Any, digits: int = 3) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "-"
    return f"{value:.{digits}g}" if abs(value) < 100 else f"{value:,.0f}"


def _cell(row: pd.Series, col: str, scale: float = 1.0, digits: int = 3) -> str:
    value = pd.to_numeric(row.get(col), errors="coerce")
    text = _number(float(value) * scale if not pd.isna(value) else None, digits)
    std = pd.to_numeric(row.get(f"{col}_std"), errors="coerce")
    if row.get("seed") == "mean" and not pd.isna(std):
        text += f" ± {_number(float(std) * scale, 2)}"
    return text


def markdown_table(table: pd.DataFrame, metrics: Sequence[str], note: str | None = None) -> str:
    """Table I as a Markdown pipe table (aggregate rows only when there are several seeds).

    Args:
        table: from :func:`build_table`.
        metrics: the metric columns shown.
        note: a sentence printed under the table (e.g. the two-modality note).

    Returns:
        The Markdown text.
    """
    several = (table["seed"].astype(str) == "mean").any() if len(table) else False
    shown = table[table["seed"].astype(str) == "mean"] if several else table
    header = [
        "setting",
        "modalities",
        *[m.upper() for m in metrics],
        "train (s/epoch)",
        "inference (ms/sample)",
        "parameters",
    ]
    rows: list[list[str]] = []
    for _, row in shown.iterrows():
        params = pd.to_numeric(row.get("parameters"), errors="coerce")
        cells = [
            str(row["label"]),
            str(row["modalities"]).replace("+", ", "),
            *[_cell(row, m) for m in metrics],
            _cell(row, "train_s_per_epoch"),
            _cell(row, "infer_s_per_sample", scale=1000.0),
            "-" if pd.isna(params) else f"{int(round(float(params))):,}",
        ]
        rows.append(cells)
    text = "\n".join(pipe_table(header, rows, ["---", "---"] + ["---:"] * (len(header) - 2)))
    if len(table):
        seeds = sorted({s for s in table["seed"].astype(str) if s != "mean"}, key=lambda s: int(s))
        n_test = pd.to_numeric(table["n_test"], errors="coerce").max()
        what = "mean ± std over seeds" if several else "seed"
        text += (
            f"\n\nTest metrics on {int(n_test) if not pd.isna(n_test) else '?'} samples; "
            f"{what} {', '.join(seeds)}."
        )
    if note:
        text += f"\n\nNote: {note}."
    return text + "\n"


def write_table(
    table: pd.DataFrame, out: str | Path, metrics: Sequence[str], note: str | None = None
) -> tuple[Path, Path]:
    """Write ``table1.csv`` and ``table1.md`` into ``out`` atomically.

    Args:
        table: from :func:`build_table`.
        out: the ablation folder.
        metrics: the metric columns shown in Markdown.
        note: a sentence under the Markdown table.

    Returns:
        ``(csv path, markdown path)``.
    """
    out = Path(out)
    markdown = markdown_table(table, metrics, note)
    csv_path, md_path = atomic_write_table(out / "table1.csv", table, markdown)
    return csv_path, md_path
