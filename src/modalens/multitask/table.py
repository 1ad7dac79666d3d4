"""The comparison table of ``modalens mtl compare``: ``mtl_compare.csv`` and ``mtl_compare.md``.

One row per model (unimodal, input fusion, multitask) with the columns ``model``, ``label``,
``inputs`` (``+``-joined), ``metric`` (the task's headline metric), ``mean`` and ``std`` (sample
standard deviation, ddof 1; empty with one seed) over seeds, ``values`` (per seed,
``;``-joined), ``n_seeds``, ``n_test`` (test samples), ``parameters`` (trained, every head),
``parameters_main`` (what predicting the main task uses: encoder, decoder, main head),
``train_s_per_epoch`` and ``infer_s_per_sample`` (means over seeds; forward pass of the
deployed model, main head only). The Markdown file shows the table and, under it, the paired
tests of ``mtl_tests.csv``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from ..io import atomic_write_table, pipe_table
from ..validation.settings import Setting

#: the columns of ``mtl_compare.csv``
COLUMNS = [
    "model",
    "label",
    "inputs",
    "metric",
    "mean",
    "std",
    "values",
    "n_seeds",
    "n_test",
    "parameters",
    "parameters_main",
    "train_s_per_epoch",
    "infer_s_per_sample",
]


def build_compare_table(
    rows: Sequence[dict[str, Any]], settings: Sequence[Setting], metric: str
) -> pd.DataFrame:
    """One row per model from the runs' rows (see the module docstring).

    Args:
        rows: the runs' rows (:func:`modalens.validation.runs.table_row` plus
            ``parameters_main``).
        settings: the models, in table order.
        metric: the headline metric column.

    Returns:
        The table with the columns :data:`COLUMNS`.
    """
    frame = pd.DataFrame(list(rows))
    out = []
    for s in settings:
        group = frame[frame["setting"] == s.name] if len(frame) else frame
        if not len(group):
            continue
        values = pd.to_numeric(group.get(metric), errors="coerce")
        out.append(
            {
                "model": s.name,
                "label": s.label,
                "inputs": "+".join(s.use),
                "metric": metric,
                "mean": float(values.mean()),
                "std": float(values.std(ddof=1)) if len(values) > 1 else math.nan,
                "values": ";".join(f"{v:.6g}" for v in values),
                "n_seeds": int(len(group)),
                "n_test": int(pd.to_numeric(group["n_test"]).max()),
                "parameters": int(pd.to_numeric(group["parameters"]).max()),
                "parameters_main": int(pd.to_numeric(group["parameters_main"]).max()),
                "train_s_per_epoch": float(pd.to_numeric(group["train_s_per_epoch"]).mean()),
                "infer_s_per_sample": float(pd.to_numeric(group["infer_s_per_sample"]).mean()),
            }
        )
    return pd.DataFrame(out, columns=COLUMNS)


def _num(value: Any, digits: int = 3) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "-"
    return f"{value:.{digits}g}"


def markdown_compare(
    table: pd.DataFrame, tests: pd.DataFrame, metric: str, lower_is_better: bool
) -> str:
    """The comparison table and the paired tests as Markdown.

    Args:
        table: from :func:`build_compare_table`.
        tests: from :func:`modalens.multitask.compare.paired_tests`.
        metric: the headline metric.
        lower_is_better: its direction (said under the table).

    Returns:
        The Markdown text.
    """
    header = [
        "model",
        "inputs",
        metric.upper(),
        "parameters (trained)",
        "parameters (prediction)",
        "train (s/epoch)",
        "inference (ms/sample)",
    ]
    rows = []
    for _, r in table.iterrows():
        score = _num(r["mean"]) + ("" if pd.isna(r["std"]) else f" ± {_num(r['std'], 2)}")
        rows.append(
            [
                str(r["label"]),
                str(r["inputs"]).replace("+", ", "),
                score,
                f"{int(r['parameters']):,}",
                f"{int(r['parameters_main']):,}",
                _num(r["train_s_per_epoch"]),
                _num(r["infer_s_per_sample"] * 1000),
            ]
        )
    lines = pipe_table(header, rows, ["---", "---"] + ["---:"] * 5)
    if len(table):
        n_seeds = int(table["n_seeds"].max())
        lines.append(
            f"\nTest {metric.upper()} ({'lower' if lower_is_better else 'higher'} is better) on "
            f"{int(table['n_test'].max())} samples, mean ± std over {n_seeds} seed(s)."
        )
    if len(tests):
        lines += [
            "",
            "Paired Wilcoxon signed-rank tests of per-sample main-task loss (multitask − "
            "baseline; negative: the multitask model errs less), pooled over seeds:",
            "",
        ]
        pairs = [
            [
                str(t["baseline"]),
                str(int(t["n_pairs"])),
                _num(t["mean_diff"]),
                _num(t["median_diff"]),
                _num(t["p_value"], 2),
            ]
            for _, t in tests.iterrows()
        ]
        header = ["baseline", "pairs", "mean difference", "median difference", "p-value"]
        lines += pipe_table(header, pairs, ["---"] + ["---:"] * 4)
    return "\n".join(lines) + "\n"


def write_compare_table(
    table: pd.DataFrame,
    tests: pd.DataFrame,
    out: str | Path,
    metric: str,
    lower_is_better: bool,
) -> tuple[Path, Path]:
    """Write ``mtl_compare.csv`` and ``mtl_compare.md`` into ``out`` atomically.

    Args:
        table: from :func:`build_compare_table`.
        tests: the paired tests (shown in the Markdown file).
        out: the comparison folder.
        metric: the headline metric.
        lower_is_better: its direction.

    Returns:
        ``(csv path, markdown path)``.
    """
    out = Path(out)
    markdown = markdown_compare(table, tests, metric, lower_is_better)
    csv_path, md_path = atomic_write_table(out / "mtl_compare.csv", table, markdown)
    return csv_path, md_path
