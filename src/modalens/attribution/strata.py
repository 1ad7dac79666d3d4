"""Stratified influence: the dataset-level summary per group of samples (regional case studies).

A *stratum* is a value that splits the attributed samples into groups, given as ``by``:

- ``COLUMN``: a column of the dataset's index table (:func:`modalens.data.index_table`; a
  CSV or DataFrame with an ``id`` column may be passed instead as ``table``);
- ``dominant:MODALITY``: the most frequent class of a categorical modality over the valid
  pixels of each sample's attributed window(s), named by the class names known for its codes
  (ESA WorldCover's ``Tree cover``, ``Built-up`` ...; ``class <code>`` otherwise). Ties go to the
  smaller code; a window without valid pixels gives ``no data``.

:func:`stratify` summarises each stratum's scores with :func:`~.aggregation.summarize_scores` (mean,
bootstrap CI, share and rank per block) and returns one table; ``n`` is the number of samples
in the stratum and ``few_samples`` marks strata below ``min_samples`` (reported, not dropped).
With ``out`` it writes ``stratified.csv`` and ``stratified.png`` + ``.svg``
(:func:`stratified_figure`). :func:`describe_strata` reads such a table out in sentences.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..data.presets import WORLDCOVER_CLASSES, WORLDCOVER_NAMES
from ..data.samples import index_table
from ..data.spec import DatasetSpec
from ..errors import DataError, SpecError
from ..io import atomic_write_csv
from ..plotting import color, label, pyplot, save_figures
from ..training.run import load_run
from .aggregation import BLOCK, choose_block, summarize_scores
from .groups import ALL
from .run import recorded_run

#: the columns of ``stratified.csv``
STRATA_COLUMNS = [
    "by",
    "stratum",
    "n",
    "few_samples",
    "method",
    "level",
    "distance",
    "strategy",
    "group",
    "mean",
    "ci_low",
    "ci_high",
    "share",
    "rank",
]

NO_DATA = "no data"
NOT_IN_TABLE = "not in table"


def read_scores(attr: str | Path | pd.DataFrame) -> tuple[pd.DataFrame, Path | None]:
    """The long-form scores of an attribution folder, ``scores.parquet`` or a DataFrame.

    Args:
        attr: the folder, the parquet file or the table itself.

    Returns:
        ``(scores, attribution folder or None)``.

    Raises:
        DataError: no readable ``scores.parquet``.
    """
    if isinstance(attr, pd.DataFrame):
        return attr, None
    path = Path(attr)
    folder = path if path.is_dir() else path.parent
    if path.is_dir():
        path = path / "scores.parquet"
    if not path.is_file():
        raise DataError(
            "no scores.parquet", str(path), "give the --out folder of modalens attribute"
        )
    return pd.read_parquet(path), folder


def class_names(classes: Sequence[int] | None) -> dict[int, str]:
    """Readable names of a categorical modality's codes (ESA WorldCover's when they match).

    Args:
        classes: the modality's class codes.

    Returns:
        ``{code: name}`` (``class <code>`` where no name is known).
    """
    codes = [int(c) for c in classes or ()]
    known = WORLDCOVER_NAMES if set(codes) <= set(WORLDCOVER_CLASSES) else {}
    return {c: known.get(c, f"class {c}") for c in codes}


def _window(text: Any) -> tuple[int, int, int, int] | None:
    try:
        parts = [int(float(p)) for p in str(text).split(",")]
    except ValueError:
        return None
    return (parts[0], parts[1], parts[2], parts[3]) if len(parts) == 4 else None


def dominant_classes(
    run: Any, modality: str, windows: Mapping[str, Sequence[Any]], names: Mapping[int, str] | None
) -> dict[str, str]:
    """The dominant class of a categorical modality per sample.

    Args:
        run: a loaded run (:func:`modalens.training.run.load_run`).
        modality: the categorical modality's name.
        windows: the attributed windows (``"row,col,h,w"`` text or None) per sample id.
        names: class names by code (default :func:`class_names`).

    Returns:
        ``{sample_id: class name}`` (``no data`` without a valid pixel).

    Raises:
        SpecError: the run's dataset has no such modality or it is not categorical.
    """
    spec: DatasetSpec = run.spec
    mod = next((m for m in spec.modalities if m.name == modality), None)
    if mod is None or not mod.is_categorical:
        cats = [m.name for m in spec.modalities if m.is_categorical]
        raise SpecError(
            f"{modality!r} is not a categorical modality of the run's dataset",
            "--by dominant:MODALITY",
            f"choose one of {', '.join(cats) or '(none: use an index column)'}",
        )
    names = dict(names) if names is not None else class_names(mod.classes)
    reader = run.reader()
    out: dict[str, str] = {}
    for sid, wins in windows.items():
        counts: dict[int, int] = {}
        for win in wins or [None]:
            raw = reader.read_raw(str(sid), _window(win), modalities=[modality])[modality]
            vals = raw[np.isfinite(raw)].astype(np.int64)
            codes, n = np.unique(vals, return_counts=True)
            for c, k in zip(codes.tolist(), n.tolist(), strict=True):
                counts[c] = counts.get(c, 0) + k
        if not counts:
            out[str(sid)] = NO_DATA
            continue
        best = min(counts, key=lambda c: (-counts[c], c))
        out[str(sid)] = names.get(best, f"class {best}")
    reader.close()
    return out


def table_strata(
    table: pd.DataFrame | Mapping[str, Mapping[str, Any]], column: str, ids: Sequence[str]
) -> dict[str, str]:
    """The value of an index-table column per sample.

    Args:
        table: a DataFrame with an ``id`` column or ``{id: row}`` (as ``index_table`` gives).
        column: the column.
        ids: the samples.

    Returns:
        ``{sample_id: value}`` (``not in table`` for ids the table lacks).

    Raises:
        SpecError: the table has no such column (the error lists those it has).
    """
    if isinstance(table, pd.DataFrame):
        if "id" not in table.columns:
            raise DataError("the strata table has no 'id' column", "table", "add an id column")
        rows = {str(r["id"]): r for r in table.astype(str).to_dict(orient="records")}
    else:
        rows = {str(k): dict(v) for k, v in table.items()}
    columns = sorted({c for r in rows.values() for c in r if c != "id"})
    if column not in columns:
        raise SpecError(
            f"the index table has no column {column!r}",
            "--by",
            f"choose one of {', '.join(columns) or '(none)'} or dominant:MODALITY",
        )
    return {str(i): str(rows[str(i)][column]) if str(i) in rows else NOT_IN_TABLE for i in ids}


def _strata(
    scores: pd.DataFrame,
    by: str,
    run: str | Path | None,
    table: pd.DataFrame | str | Path | None,
    data_root: str | Path | None,
    names: Mapping[int, str] | None,
) -> dict[str, str]:
    ids = [str(i) for i in dict.fromkeys(scores["sample_id"].astype(str))]
    if isinstance(table, str | Path):
        table = pd.read_csv(table, dtype=str)
    if not by.startswith("dominant:") and table is not None:
        return table_strata(table, by, ids)
    if run is None:
        raise SpecError(
            "the attribution folder does not name its run",
            "--run",
            "pass --run RUN (the run folder that was attributed)",
        )
    loaded = load_run(run, data_root=data_root)
    if by.startswith("dominant:"):
        wins: dict[str, list[Any]] = {i: [] for i in ids}
        if "window" in scores.columns:
            for sid, win in scores[["sample_id", "window"]].drop_duplicates().itertuples(False):
                wins[str(sid)].append(None if pd.isna(win) else win)
        return dominant_classes(loaded, by.split(":", 1)[1], wins, names)
    index = index_table(loaded.spec)
    if index is None:
        raise SpecError(
            "the run's dataset has no index table to stratify by",
            "--by",
            "use dominant:MODALITY, or pass a table (CSV with id and the column)",
        )
    return table_strata(index, by, ids)


def stratify(
    attr: str | Path | pd.DataFrame,
    run: str | Path | None = None,
    by: str = "dominant:esa_wc",
    *,
    min_samples: int = 3,
    table: pd.DataFrame | str | Path | None = None,
    out: str | Path | None = None,
    data_root: str | Path | None = None,
    names: Mapping[int, str] | None = None,
    n_boot: int = 1000,
    seed: int = 0,
) -> pd.DataFrame:
    """The attribution summary per stratum (see the module docstring).

    Args:
        attr: an attribution folder, its ``scores.parquet`` or the scores themselves.
        run: the attributed run (default: the one the folder records, :func:`recorded_run`).
        by: ``COLUMN`` of the index table or ``dominant:MODALITY``.
        min_samples: strata with fewer samples get ``few_samples = True``.
        table: a CSV path or DataFrame (``id`` + columns) used instead of the index table.
        out: write ``stratified.csv`` and ``stratified.png`` + ``.svg`` into this folder.
        data_root: points the run's spec at another copy of the data.
        names: class names by code for ``dominant:`` (default :func:`class_names`).
        n_boot: bootstrap draws of each interval (0: none).
        seed: bootstrap seed.

    Returns:
        The table (:data:`STRATA_COLUMNS`), strata by decreasing size.

    Raises:
        SpecError: no run where one is needed, an unknown column or modality.
        DataError: unreadable scores.
    """
    scores, folder = read_scores(attr)
    if run is None and folder is not None:
        run = recorded_run(folder)
    if int(min_samples) < 1:
        raise SpecError(f"min_samples must be >= 1, got {min_samples}", "--min-samples", "use 1+")
    if len(scores) == 0:
        return pd.DataFrame(columns=STRATA_COLUMNS)
    strata = _strata(scores, str(by), run, table, data_root, names)
    stratum = scores["sample_id"].astype(str).map(strata)
    sizes = scores.assign(_s=stratum).groupby("_s")["sample_id"].nunique()
    order = sorted(sizes.index, key=lambda s: (-int(sizes[s]), str(s)))
    frames = []
    for name in order:
        part = summarize_scores(scores[stratum == name], n_boot=n_boot, seed=seed)
        part.insert(0, "stratum", name)
        part.insert(0, "by", str(by))
        part["n"] = int(sizes[name])
        part["few_samples"] = int(sizes[name]) < int(min_samples)
        frames.append(part)
    result = pd.concat(frames, ignore_index=True)[STRATA_COLUMNS]
    result["rank"] = result["rank"].astype("Int64")
    if out is not None:
        out = Path(out)
        atomic_write_csv(out / "stratified.csv", result)
        if len(result):
            stratified_figure(result, out / "stratified.png")
    return result


def _block_rows(table: pd.DataFrame, block: Mapping[str, str] | None) -> pd.DataFrame:
    rows = table[(table["group"] != ALL) & table["share"].notna()]
    if rows.empty:
        return rows
    chosen = dict(block) if block else choose_block(rows)
    for key in BLOCK:
        rows = rows[rows[key].astype(str) == chosen[key]]
    return rows


def _stratum_text(by: str, stratum: str) -> str:
    if by.startswith("dominant:"):
        if stratum == NO_DATA:
            return f"scenes without {label(by.split(':', 1)[1])} data"
        text = stratum[:1].lower() + stratum[1:] if stratum[1:2].islower() else stratum
        return f"{text} scenes"
    return f"samples with {by} = {stratum}"


def stratified_figure(
    table: pd.DataFrame, path: str | Path, block: Mapping[str, str] | None = None
) -> Path:
    """Stacked bars: each modality's share of the influence per stratum, for one block.

    Args:
        table: from :func:`stratify`.
        path: the PNG path (an SVG is written beside it).
        block: ``{method, level, distance, strategy}`` (default
            :func:`~.aggregation.choose_block`'s).

    Returns:
        The PNG path.

    Raises:
        DataError: the table has no shares to draw.
    """
    rows = _block_rows(table, block)
    if rows.empty:
        raise DataError("no shares to draw", str(path), "stratify occlusion or Shapley scores")
    by = str(rows["by"].iloc[0])
    strata = list(dict.fromkeys(rows["stratum"]))
    groups = list(dict.fromkeys(rows["group"]))
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(7.5, 0.6 * len(strata) + 1.8))
    left = np.zeros(len(strata))
    for i, g in enumerate(groups):
        vals = np.array(
            [
                float(rows[(rows["stratum"] == s) & (rows["group"] == g)]["share"].sum()) * 100
                for s in strata
            ]
        )
        ax.barh(range(len(strata)), vals, left=left, color=color(i), label=label(g))
        for y, (x0, v) in enumerate(zip(left, vals, strict=True)):
            if v >= 6:
                ax.text(
                    x0 + v / 2,
                    y,
                    f"{v:.0f}",
                    ha="center",
                    va="center",
                    fontsize=8,
                    color="white" if i % 8 in (0, 5, 7) else "black",
                )
        left += vals
    ticks = []
    for s in strata:
        first = rows[rows["stratum"] == s].iloc[0]
        mark = " *" if bool(first["few_samples"]) else ""
        ticks.append(f"{s} (n = {int(first['n'])}){mark}")
    ax.set_yticks(range(len(strata)), ticks)
    ax.invert_yaxis()
    ax.set_xlim(0, 100)
    ax.set_xlabel("share of the summed influence (%)")
    what = "dominant " + label(by.split(":", 1)[1]) + " class" if ":" in by else by
    ax.set_ylabel(f"stratum ({what})")
    r = rows.iloc[0]
    n_total = int(rows.drop_duplicates("stratum")["n"].sum())
    ax.set_title(
        f"Influence per stratum: {label(str(r['method']))}, {label(str(r['level']))}, "
        f"{r['strategy']} fill (n = {n_total} samples)",
        fontsize=10,
    )
    ax.legend(title="modality", loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
    if rows["few_samples"].any():
        ax.set_xlabel(
            "share of the summed influence (%)\n* fewer samples than the minimum: read with care"
        )
    return save_figures(fig, path)


def describe_strata(table: pd.DataFrame, block: Mapping[str, str] | None = None) -> list[str]:
    """Plain-language sentences on a :func:`stratify` table, for one block.

    Args:
        table: from :func:`stratify` (or ``stratified.csv`` read back).
        block: ``{method, level, distance, strategy}`` (default
            :func:`~.aggregation.choose_block`'s).

    Returns:
        One sentence per modality (its share in every stratum), one on the modality ranked
        first per stratum, and one naming strata with too few samples; empty without shares.
    """
    rows = _block_rows(table, block)
    if rows.empty:
        return []
    by = str(rows["by"].iloc[0])
    r = rows.iloc[0]
    dist = "" if r["distance"] == r["level"] else f"{r['distance']} distance, "
    lines = [f"Stratified by {by} ({r['method']}, {r['level']} level, {dist}{r['strategy']} fill)."]
    for g in dict.fromkeys(rows["group"]):
        sub = rows[rows["group"] == g].sort_values("share", ascending=False)
        parts = [
            f"{100 * float(x['share']):.0f} %"
            + (" of the influence" if not k else "")
            + f" in {_stratum_text(by, str(x['stratum']))} (n = {int(x['n'])})"
            for k, (_, x) in enumerate(sub.iterrows())
        ]
        body = parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " and " + parts[-1]
        name = label(str(g))
        lines.append(f"{name} {'carry' if name.endswith('s') else 'carries'} {body}.")
    top = {
        str(s): str(sub.sort_values("share", ascending=False).iloc[0]["group"])
        for s, sub in rows.groupby("stratum", sort=False)
    }
    if len(set(top.values())) > 1:
        lines.append(
            "The most influential modality changes across strata: "
            + "; ".join(f"{label(g)} in {_stratum_text(by, s)}" for s, g in top.items())
            + "."
        )
    elif top:
        lines.append(f"{label(next(iter(top.values())))} ranks first in every stratum.")
    few = [str(s) for s in dict.fromkeys(rows[rows["few_samples"].astype(bool)]["stratum"])]
    if few:
        lines.append(f"Too few samples to read much into: {', '.join(few)} (below the minimum).")
    return lines
