"""``modalens mtl explain``: are the main task's errors explained by the auxiliary tasks'?

:func:`explain` runs a multitask run once over a split (:mod:`.errormaps`), scores the errors
(:mod:`.errorstats`), occludes its inputs for every head (:mod:`.sensitivity`) and writes::

    OUT/mtl_errors.csv              sample_id, main_error, aux_<m>_error ... (mean per sample)
    OUT/mtl_correlation.csv         auxiliary, pearson, pearson_low, pearson_high, spearman,
                                    spearman_low, spearman_high, n (across samples, bootstrap)
    OUT/mtl_pixel_correlation.csv   sample_id, auxiliary, pixel_pearson (within each sample)
    OUT/mtl_auroc.csv               auxiliary, auroc, random_low, random_high, n_worst
    OUT/mtl_sensitivity.csv         input, head, mean, ci_low, ci_high, share
    OUT/mtl_scatter.png/.svg, mtl_pixel_correlation.png/.svg, mtl_sensitivity.png/.svg
    OUT/maps/<id>_<head>_error.tif  every head's error map of the worst samples (GeoTIFF)
    OUT/maps/<id>.png               those maps side by side

Errors are those of :func:`.errormaps.head_error_map`: absolute error (regression, continuous
auxiliary modalities in normalised units) or cross-entropy (categorical heads), averaged over a
sample's valid pixels. A scene-level main task has no error map, so its explanation has no pixel
correlation and its maps show the auxiliary heads only. :func:`describe_explanation` reads the
tables back into plain-language sentences.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..display import tables_html
from ..errors import SpecError
from ..evidence import enough_samples, sample_caveat
from ..io import atomic_write_csv, make_folder
from ..models.multitask import MAIN_HEAD
from ..training.run import load_run
from .errormaps import collect_errors, write_error_maps
from .errorstats import auroc_table, correlation_table, pixel_correlation
from .explain_figures import (
    head_label,
    pixel_figure,
    preview_figure,
    scatter_figure,
    sensitivity_figure,
)
from .sensitivity import sensitivity

#: the tables of an explanation folder, by key
TABLES = {
    "errors": "mtl_errors.csv",
    "correlation": "mtl_correlation.csv",
    "pixel": "mtl_pixel_correlation.csv",
    "auroc": "mtl_auroc.csv",
    "sensitivity": "mtl_sensitivity.csv",
}


@dataclass
class Explanation:
    """The outcome of :func:`explain`: the folder, its tables (keys of :data:`TABLES`) and the
    figures written."""

    out: Path
    tables: dict[str, pd.DataFrame]
    figures: list[Path] = field(default_factory=list)

    def _repr_html_(self) -> str:
        return tables_html(f"Multitask explanation ({self.out})", self.tables)


def explain(
    run_dir: str | Path,
    split: str = "test",
    out: str | Path | None = None,
    *,
    worst: int = 4,
    groups: str = "auto",
    batch_size: int = 8,
    n_boot: int = 1000,
    seed: int = 0,
    with_sensitivity: bool = True,
    data_root: str | Path | None = None,
    progress: bool = True,
) -> Explanation:
    """Explain a multitask run's main-task errors by its auxiliary tasks (module docstring).

    Args:
        run_dir: a trained multitask run folder.
        split: ``train``, ``val`` or ``test``.
        out: the output folder (default ``RUN/mtl_explain/<split>``).
        worst: error maps and previews for this many samples of largest main error.
        groups: input groups of the sensitivity (``auto``, ``modalities`` or ``bands``).
        batch_size: samples per forward pass.
        n_boot: bootstrap resamples (and random flags) of the intervals.
        seed: seed of the bootstrap and the random flags.
        with_sensitivity: run the occlusion sensitivity (one pass per head).
        data_root: the folder holding the run's data when it has moved.
        progress: show progress bars.

    Returns:
        The :class:`Explanation`.

    Raises:
        SpecError: the run has no auxiliary heads.
    """
    run = load_run(run_dir, data_root=data_root)
    names = list(run.module.aux_tasks)
    if not names:
        raise SpecError(
            "the run has no auxiliary heads", str(run_dir), "train one with modalens mtl fit"
        )
    out = Path(out) if out is not None else Path(run_dir) / "mtl_explain" / split
    make_folder(out)
    samples = collect_errors(run, split, batch_size, progress)
    errors = pd.DataFrame(
        {
            "sample_id": [s.sample_id for s in samples],
            "main_error": [s.errors.get(MAIN_HEAD, math.nan) for s in samples],
            **{f"aux_{n}_error": [s.errors.get(n, math.nan) for s in samples] for n in names},
        }
    )
    main = errors["main_error"].to_numpy(float)
    units = {
        head: {"regression": "mean |error|"}.get(t.name, "mean cross-entropy")
        for head, t in {MAIN_HEAD: run.task, **run.module.aux_tasks}.items()
    }
    if run.task.name == "regression" and run.spec.target.scale != 1:
        units[MAIN_HEAD] = f"mean |error|, target / {run.spec.target.scale:g}"
    for n in names:
        if units[n] == "mean |error|":
            units[n] = "mean |error|, normalised"
    aux = {n: errors[f"aux_{n}_error"].to_numpy(float) for n in names}
    pixel_rows = [
        {
            "sample_id": s.sample_id,
            "auxiliary": n,
            "pixel_pearson": pixel_correlation(s.maps[MAIN_HEAD], s.maps[n]),
        }
        for s in samples
        if MAIN_HEAD in s.maps
        for n in names
    ]
    tables = {
        "errors": errors,
        "correlation": correlation_table(main, aux, n_boot=n_boot, seed=seed),
        "pixel": pd.DataFrame(pixel_rows, columns=["sample_id", "auxiliary", "pixel_pearson"]),
        "auroc": auroc_table(main, aux, n_perm=n_boot, seed=seed),
    }
    if with_sensitivity:
        tables["sensitivity"] = sensitivity(
            run, split, groups, batch_size, n_boot=n_boot, seed=seed, progress=progress
        )
    for key, table in tables.items():
        atomic_write_csv(out / TABLES[key], table)
    figures = [scatter_figure(errors, tables["correlation"], out / "mtl_scatter.png", units)]
    if len(tables["pixel"]):
        figures.append(pixel_figure(tables["pixel"], out / "mtl_pixel_correlation.png"))
    if with_sensitivity:
        figures.append(
            sensitivity_figure(tables["sensitivity"], out / "mtl_sensitivity.png", len(samples))
        )
    order = np.argsort(-np.nan_to_num(main, nan=-np.inf), kind="stable")[: max(0, worst)]
    for i in order:
        s = samples[int(i)]
        write_error_maps(s, out / "maps", run_dir)
        figures.append(
            preview_figure(
                s.sample_id, s.maps, s.errors, s.grid, out / "maps" / s.sample_id, units=units
            )
        )
    return Explanation(out, tables, figures)


def _tables(source: str | Path | Mapping[str, pd.DataFrame]) -> dict[str, pd.DataFrame]:
    if isinstance(source, Mapping):
        return dict(source)
    folder = Path(source)
    found = {}
    for key, name in TABLES.items():
        if (folder / name).is_file():
            found[key] = pd.read_csv(folder / name, dtype={"sample_id": str})
    if not found:
        raise SpecError(
            "no multitask explanation tables found", str(folder), "run modalens mtl explain RUN"
        )
    return found


def _ci(lo: float, hi: float) -> str:
    return f" [{lo:.2f}, {hi:.2f}]" if np.isfinite(lo) and np.isfinite(hi) else ""


def _then(sentence: str) -> str:
    return f" {sentence}" if sentence else ""


def describe_explanation(source: str | Path | Mapping[str, Any]) -> list[str]:
    """Plain-language sentences about an explanation (its folder, or :class:`Explanation`'s
    ``tables``): error correlations, pixel correlations, worst-decile AUROCs and the inputs
    each head relies on most. A correlation or AUROC from fewer than 10 samples is not read
    (the sentence says there are too few); from fewer than 20 it carries a caveat
    (:func:`modalens.evidence.sample_caveat`).

    Raises:
        SpecError: a folder without explanation tables.
    """
    t = _tables(source)
    lines: list[str] = []
    for _, r in t.get("correlation", pd.DataFrame()).iterrows():
        name, n = head_label(str(r["auxiliary"])), int(r["n"])
        if not np.isfinite(float(r["pearson"])):
            lines.append(
                f"The {name} error cannot be correlated with the main error ({n} samples)."
            )
            continue
        if not enough_samples(n):
            lines.append(
                f"The main-task error against the {name} reconstruction error: "
                f"{sample_caveat(n)}; the correlation is in the table, not read here."
            )
            continue
        lo, hi = float(r["pearson_low"]), float(r["pearson_high"])
        if np.isfinite(lo) and lo > 0:
            how = "rises with"
        elif np.isfinite(hi) and hi < 0:
            how = "falls as"
        else:
            how = "shows no clear relation (the interval includes 0) to"
        lines.append(
            f"Across {n} samples the main-task error {how} the {name} reconstruction error: "
            f"Pearson r = {r['pearson']:.2f}{_ci(lo, hi)}, Spearman ρ = {r['spearman']:.2f}"
            f"{_ci(float(r['spearman_low']), float(r['spearman_high']))}."
            + _then(sample_caveat(n, sentence=True))
        )
    pix = t.get("pixel", pd.DataFrame())
    for name, g in pix.groupby("auxiliary", sort=False) if len(pix) else []:
        v = g["pixel_pearson"].dropna().to_numpy()
        if v.size:
            lines.append(
                f"Within a sample, main and {head_label(str(name))} errors fall on the same "
                f"pixels to a median Pearson r of {np.median(v):.2f} (positive in "
                f"{int((v > 0).sum())} of {v.size} samples)."
            )
    corr = t.get("correlation", pd.DataFrame())
    sizes = dict(zip(corr["auxiliary"], corr["n"], strict=True)) if len(corr) else {}
    for _, r in t.get("auroc", pd.DataFrame()).iterrows():
        name, a = head_label(str(r["auxiliary"])), float(r["auroc"])
        if not np.isfinite(a):
            continue
        count = sizes.get(r["auxiliary"])
        if count is not None and not enough_samples(count):
            lines.append(
                f"A high {name} error as a flag of the worst main errors: {sample_caveat(count)}; "
                "the AUROC is in the table, not read here."
            )
            continue
        lo, hi = float(r["random_low"]), float(r["random_high"])
        verdict = "better than" if np.isfinite(hi) and a > hi else "not clearly better than"
        lines.append(
            f"A high {name} error flags the worst {int(r['n_worst'])} samples of main error "
            f"with AUROC {a:.2f}, {verdict} a random flag (0.5; 95% of random flags give "
            f"{lo:.2f} to {hi:.2f})."
            + (_then(sample_caveat(count, sentence=True)) if count is not None else "")
        )
    sens = t.get("sensitivity", pd.DataFrame())
    for head, g in sens.groupby("head", sort=False) if len(sens) else []:
        top = g.sort_values("share", ascending=False).head(2)
        parts = [
            f"{head_label(str(i))} ({100 * s:.0f}%)"
            for i, s in zip(top["input"], top["share"], strict=True)
        ]
        lines.append(
            f"The {'main-task' if head == MAIN_HEAD else head_label(str(head))} head relies "
            f"most on {' and '.join(parts)}."
        )
    return lines
