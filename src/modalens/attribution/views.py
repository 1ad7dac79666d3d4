"""Sample views, like the paper's Fig. 3/4: one figure per sample.

:func:`sample_views` draws, for chosen ids or the ``top_k`` samples per modality (ranked by
that modality's influence in an attribution folder's ``scores.parquet``), one figure each:

- top row: the sample's influence per modality (bars; the dataset mean over the attributed
  samples as a marker), then the target and the prediction -- continuous targets on a shared
  red-to-green scale with a colour bar, class rasters in a class palette, scene labels as the
  most probable labels against the true ones;
- middle row: every modality as :mod:`.render` draws it (S2 RGB, S1 VH in dB, WorldCover in its
  official colours, night lights, generic bands for other datasets);
- bottom row: each modality's occlusion sensitivity map under its image (scene classifiers:
  per window, :mod:`.scenemaps`), computed by
  :func:`~.maps.occlusion_map_fn` through the sliding window, on one colour scale.

Files: ``OUT/views/<sample_id>.png`` and ``.svg``, and ``OUT/views/index.csv`` with
:data:`INDEX_COLUMNS` (``png``/``svg`` relative to ``OUT``).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from ..data.samples import sample_ids
from ..errors import DataError, SpecError
from ..io import atomic_write_csv, check_output
from ..plotting import color, label, pixel_size_text, pyplot, save_figures
from ..progress import bar, warn
from ..training.run import Run, load_run
from ..training.runfolder import RunFolder
from ..training.tiling import sliding_window
from .aggregation import PREFERRED
from .engine import OcclusionEngine
from .figures import value_label
from .groups import ALL, groups_for
from .maps import occlusion_map_fn
from .options import AttributionOptions
from .render import Picture, class_picture, draw_picture, limits, modality_picture
from .run import run_options, stale_note
from .scenemaps import scene_sensitivity
from .strategies import STRATEGIES

#: the fill of the views' sensitivity maps when the scores do not name one: the options' default
DEFAULT_FILL = AttributionOptions().strategies[0]

INDEX_COLUMNS = ["sample_id", "reason", "modality", "influence", "png", "svg"]

#: colour bar label of the sensitivity maps (|prediction - occluded prediction|)
SHORT_QUANTITY = "|Δ prediction| (normalised units)"

#: the colour bar label of a scene classifier's (per window) sensitivity map
SCENE_SHORT_QUANTITY = "mean |Δ class probability| per window"


def read_scores(attr_dir: str | Path) -> pd.DataFrame:
    """``scores.parquet`` of an attribution folder.

    Raises:
        DataError: the folder has no scores.
    """
    path = Path(attr_dir) / "scores.parquet"
    if not path.exists():
        raise DataError(
            "no scores.parquet in the attribution folder",
            str(attr_dir),
            "run `modalens attribute RUN --out DIR` first and pass that DIR",
        )
    return pd.read_parquet(path)


def _pick(values: list[str], want: str | None, preferred: Sequence[str], what: str) -> str:
    if want is not None:
        if want not in values:
            raise SpecError(
                f"no {what} {want!r} in the scores", f"--{what}", f"choose from {', '.join(values)}"
            )
        return want
    return next((p for p in preferred if p in values), values[0])


def influence_block(
    scores: pd.DataFrame, level: str | None = None, strategy: str | None = None
) -> tuple[pd.DataFrame, dict[str, str]]:
    """Per sample and modality one influence value (mean over draws and windows) of one block
    of occlusion scores.

    Args:
        scores: long-form scores.
        level: the level (default: the first of :data:`~.aggregation.PREFERRED` present, the
            loss level of the default attribution first).
        strategy: the strategy (default: the first of
            :data:`~.aggregation.PREFERRED` present, the train mean first).

    Returns:
        ``(table indexed by sample id with one column per modality, the block's keys)``.

    Raises:
        SpecError: the scores lack the level or strategy.
        DataError: the scores hold no occlusion rows.
    """
    s = scores[(scores["method"] == "occlusion") & (scores["group"] != ALL)]
    if len(s) == 0:
        raise DataError("the scores hold no occlusion rows", "scores.parquet", "attribute again")
    lv = _pick(list(dict.fromkeys(s["level"])), level, PREFERRED["level"], "level")
    s = s[s["level"] == lv]
    distance = _pick(list(dict.fromkeys(s["distance"])), None, ("euclidean",), "distance")
    s = s[s["distance"] == distance]
    st = _pick(list(dict.fromkeys(s["strategy"])), strategy, PREFERRED["strategy"], "strategy")
    s = s[s["strategy"] == st]
    groups = list(dict.fromkeys(s["group"]))
    table = s.pivot_table(index="sample_id", columns="group", values="value", aggfunc="mean")
    table.index = table.index.astype(str)
    keys = {"method": "occlusion", "level": lv, "distance": distance, "strategy": st}
    return table[groups], keys


def select_samples(
    table: pd.DataFrame | None, ids: Sequence[str] | None, top_k: int | None
) -> list[dict[str, Any]]:
    """Index rows (without files) of the samples to draw: ``ids`` (reason ``requested``, the
    modality of highest influence when scores are known) and, per modality, the ``top_k``
    samples of highest influence (reason ``top <rank> by <modality> influence``)."""
    rows: list[dict[str, Any]] = []
    for sid in ids or []:
        row: dict[str, Any] = {"sample_id": str(sid), "reason": "requested"}
        if table is not None and str(sid) in table.index:
            vals = table.loc[str(sid)]
            row.update(modality=str(vals.idxmax()), influence=float(vals.max()))
        rows.append(row)
    if top_k:
        assert table is not None
        for m in table.columns:
            best = table[m].dropna().sort_values(ascending=False, kind="stable").head(top_k)
            for rank, (sid, v) in enumerate(best.items(), start=1):
                rows.append(
                    {
                        "sample_id": str(sid),
                        "reason": f"top {rank} by {label(m)} influence",
                        "modality": str(m),
                        "influence": float(v),
                    }
                )
    return rows


def file_stem(sample_id: str) -> str:
    """A file name for a sample id (characters other than letters, digits, ``.-_`` -> ``_``)."""
    return re.sub(r"[^A-Za-z0-9._-]", "_", str(sample_id)) or "_"


def target_name(run: Run) -> str:
    """A readable name of the run's target (the first folder of its source, e.g.
    ``naturalness index`` for ``NI/{id}.tif``)."""
    src = run.spec.target.source
    first = Path(src.template).parts[0] if src is not None else "target"
    return label(first) if "{" not in first else "target"


def _target_panels(run: Run, sid: str, reader: Any, tile: int, overlap: int) -> list[Picture]:
    t = run.spec.target
    pred, valid = sliding_window(
        run.predict_fn(), reader, sid, tile=tile, overlap=overlap,
        out_channels=run.task.n_outputs, multiple=run.downsampling, return_valid=True,
    )  # fmt: skip
    target, tvalid = reader.read_target(sid)
    name = target_name(run)
    if t.is_continuous:
        truth = np.where(tvalid, target[0] * t.scale, np.nan)
        guess = np.where(valid, pred[0] * t.scale, np.nan)
        lo, hi = limits(truth, guess, lo=0.0, hi=100.0)
        return [
            Picture(truth, f"target: {name}", "RdYlGn", lo, hi, f"{name} (shared scale)"),
            Picture(guess, f"prediction: {name}", "RdYlGn", lo, hi, f"{name} (shared scale)"),
        ]
    codes = np.asarray(t.class_codes or range(run.task.n_outputs), dtype=np.float64)
    truth = np.where(tvalid & (target >= 0), codes[np.clip(target, 0, None)], np.nan)
    guess = np.where(valid, codes[pred.argmax(0)], np.nan)
    classes = tuple(int(c) for c in codes)
    names = {c: str(n) for c, n in zip(classes, t.classes or classes, strict=False)}
    return [
        class_picture(truth, classes, names, f"target: {name}"),
        class_picture(guess, classes, names, "prediction"),
    ]


def _sensitivity(run: Run, sid: str, reader: Any, strategy: str, tile: int, overlap: int) -> Any:
    grp = groups_for(run.spec, "modalities")
    opts = run_options(run, AttributionOptions(strategies=(strategy,), levels=("output",)))
    if not run.task.dense:  # a scene classifier: per window (scenemaps)
        engine = OcclusionEngine(run.model, grp, opts)
        return scene_sensitivity(run, sid, reader, engine, strategy)[0]
    fn = occlusion_map_fn(run.model, grp, strategy, opts)
    return sliding_window(
        fn, reader, sid, tile=tile, overlap=overlap, out_channels=len(grp),
        multiple=run.downsampling, fill=float("nan"),
    )  # fmt: skip


def _scene_labels(ax: Any, run: Run, sid: str, reader: Any, top: int = 6) -> None:
    image, valid = reader.read_inputs(sid)
    with torch.inference_mode():
        probs = (
            run.module.infer(
                torch.from_numpy(image)[None].to(run.device), torch.from_numpy(valid)[None]
            )[0]
            .float()
            .cpu()
            .numpy()
        )
    truth = reader.scene_labels(sid) > 0.5
    names = [str(c) for c in (run.spec.target.classes or range(len(probs)))]
    picked = set(np.argsort(-probs)[:top]) | set(np.flatnonzero(truth))
    shown = sorted(picked, key=lambda i: probs[i])
    y = np.arange(len(shown))
    ax.barh(y, probs[shown], color=[color(4) if truth[i] else "0.85" for i in shown])
    for yi, i in zip(y, shown, strict=True):
        name = names[i] if len(names[i]) <= 48 else names[i][:46] + "..."
        ax.text(0.01, yi, name, va="center", ha="left", fontsize=7)
    ax.set_yticks([])
    ax.set_ylabel("label", fontsize=8)
    ax.set_xlim(0, 1)
    ax.axvline(0.5, color="black", linewidth=0.6, linestyle="--")
    ax.set_xlabel("predicted probability (dashed: 0.5 threshold)", fontsize=8)
    ax.set_title(f"prediction vs truth: top {top} labels and every true one", fontsize=8)
    import matplotlib.patches as mpatches

    ax.legend(
        handles=[mpatches.Patch(color=color(4), label="true label"),
                 mpatches.Patch(color="0.85", label="not a true label")],
        fontsize=6, loc="lower right",
    )  # fmt: skip


def _bars(ax: Any, values: pd.Series | None, table: pd.DataFrame | None, keys: dict) -> None:
    if values is None or table is None:
        ax.text(0.5, 0.5, "no attribution scores\nfor this sample", ha="center", va="center")
        ax.set_axis_off()
        return
    mods = list(values.index)
    y = np.arange(len(mods))[::-1]
    ax.barh(y, values.to_numpy(float), color=[color(i) for i in range(len(mods))])
    ax.plot(table[mods].mean().to_numpy(float), y, "D", color="black", markersize=4,
            label=f"mean over n = {len(table)} sample{'s' if len(table) > 1 else ''}")  # fmt: skip
    ax.set_yticks(y, [label(m) for m in mods], fontsize=7)
    ax.set_xlabel(value_label(keys["method"], keys["level"], keys["distance"]), fontsize=7)
    ax.set_title(
        f"influence on this sample ({label(keys['level'])}, {label(keys['strategy'])} fill)",
        fontsize=8,
    )
    ax.legend(fontsize=6, loc="lower right")
    ax.grid(axis="x", alpha=0.3)


def view_figure(
    run: Run,
    sid: str,
    *,
    reason: str = "requested",
    table: pd.DataFrame | None = None,
    keys: dict | None = None,
    strategy: str = DEFAULT_FILL,
    tile: int = 256,
    overlap: int = 64,
) -> Any:
    """The figure of one sample (see the module docstring).

    Args:
        run: the loaded run.
        sid: the sample id.
        reason: why it is shown (in the title).
        table: :func:`influence_block`'s table (None: no bars).
        keys: its block keys.
        strategy: fill of the sensitivity maps.
        tile: sliding-window tile.
        overlap: sliding-window overlap.

    Returns:
        The matplotlib Figure.
    """
    plt = pyplot()
    reader = run.reader()
    mods = run.spec.modalities
    dense = run.task.dense
    ncols = max(len(mods), 3 if dense else 2)
    nrows = 3
    fig = plt.figure(figsize=(3.1 * ncols if dense else 4.2 * ncols, 3.5 * nrows + 0.8))
    gs = fig.add_gridspec(nrows, ncols, hspace=0.55 if dense else 0.45, wspace=0.25)
    span = ncols - 2 if dense else -(-ncols // 2)
    values = table.loc[sid] if table is not None and sid in table.index else None
    _bars(fig.add_subplot(gs[0, :span]), values, table, keys or {})
    if dense:
        for j, pic in enumerate(_target_panels(run, sid, reader, tile, overlap)):
            draw_picture(fig, fig.add_subplot(gs[0, span + j]), pic)
    else:
        _scene_labels(fig.add_subplot(gs[0, span:]), run, sid, reader)
    raw = reader.read_raw(sid)
    for j, m in enumerate(mods):
        draw_picture(fig, fig.add_subplot(gs[1, j]), modality_picture(m, raw[m.name]))
    maps = _sensitivity(run, sid, reader, strategy, tile, overlap)
    lo, hi = limits(maps, lo=0.0, hi=99.0)
    quantity = SHORT_QUANTITY if dense else SCENE_SHORT_QUANTITY
    for j, m in enumerate(mods):
        pic = Picture(maps[j], "", "magma", 0.0, hi or 1.0, quantity)
        title = f"sensitivity to {label(m.name)} ({label(strategy)} fill)"
        draw_picture(fig, fig.add_subplot(gs[2, j]), pic, title=title)
    grid = reader.grid(sid)
    crs = grid.crs.to_string() if grid.crs is not None else "no CRS"
    pixels = pixel_size_text(grid.crs, grid.transform)
    fig.suptitle(
        f"Sample {sid}: {grid.height} x {grid.width} px, {pixels}, {crs}\n{reason}",
        fontsize=10,
    )
    fig.subplots_adjust(top=0.92 if dense else 0.9, bottom=0.08)
    return fig


def sample_views(
    run: str | Path,
    attr_dir: str | Path | None = None,
    ids: Sequence[str] | None = None,
    top_k: int | None = None,
    out: str | Path | None = None,
    *,
    split: str = "test",
    strategy: str | None = None,
    level: str | None = None,
    tile: int = 256,
    overlap: int = 64,
    data_root: str | Path | None = None,
    progress: bool = False,
) -> list[Path]:
    """Write sample views (see the module docstring) of a trained run.

    Args:
        run: the run folder.
        attr_dir: its attribution folder (default: ``RUN/attribution/<split>`` when attributed,
            else the newest ``RUN/attribution/<split>-*``).
        ids: samples to draw.
        top_k: also the ``top_k`` samples per modality by influence (needs scores).
        out: the output folder (views go to ``OUT/views``; default ``RUN``).
        split: the split whose attribution is the default.
        strategy: strategy of the bars and maps (default: as :func:`influence_block` picks).
        level: level of the bars (default: as :func:`influence_block`, loss level first).
        tile: sliding-window tile (a multiple of the model's downsampling).
        overlap: sliding-window overlap.
        data_root: points the run's spec at another copy of the data.
        progress: show a progress bar.

    Returns:
        The PNG and SVG files and ``index.csv``.

    Raises:
        SpecError: neither ids nor top_k, or an unknown level/strategy.
        DataError: unknown sample ids or missing scores.
    """
    if not ids and not top_k:
        raise SpecError("no samples chosen", "--ids/--top-k", "pass --ids a,b or --top-k K")
    if out is not None:  # checked before any work; the default once the run is found
        out = check_output(out)
    loaded = load_run(run, data_root=data_root)
    out = out if out is not None else check_output(run)
    if attr_dir is None and RunFolder(run).attributions(split):
        attr_dir = RunFolder(run).attributions(split)[0]
    table, keys = None, None
    if attr_dir is not None:
        table, keys = influence_block(read_scores(attr_dir), level, strategy)
        if (stale := stale_note(attr_dir)) is not None:  # bars of an older model beside maps
            warn(f"{attr_dir}: {stale}")
    elif top_k:
        raise DataError(
            "--top-k needs attribution scores", str(run), "pass --scores ATTR_DIR (attribute first)"
        )
    splits = sample_ids(loaded.spec)
    known = {str(i) for split_ids in splits.values() for i in split_ids}
    unknown = [str(i) for i in ids or [] if str(i) not in known]
    if unknown:
        example = ", ".join(map(str, list(splits.get(split, []))[:3]))
        raise DataError(
            f"unknown sample id(s) {', '.join(unknown[:5])}",
            str(run),
            f"use ids of the run's data, e.g. {example} ({split} split)",
        )
    strategy = strategy or (keys["strategy"] if keys else DEFAULT_FILL)
    if STRATEGIES.get(strategy).needs_batch:
        strategy = DEFAULT_FILL  # maps need a single-scene fill
    rows = select_samples(table, ids, top_k)
    views = out / "views"
    written: list[Path] = []
    drawn: set[str] = set()
    todo = list(dict.fromkeys(r["sample_id"] for r in rows))
    reasons = {sid: "; ".join(r["reason"] for r in rows if r["sample_id"] == sid) for sid in todo}
    for sid in bar(todo, progress, desc="views", unit="sample"):
        fig = view_figure(
            loaded, sid, reason=reasons[sid], table=table, keys=keys, strategy=strategy,
            tile=tile, overlap=overlap,
        )  # fmt: skip
        png = save_figures(fig, views / f"{file_stem(sid)}.png", dpi=120)
        written += [png, png.with_suffix(".svg")]
        drawn.add(sid)
    for r in rows:
        stem = file_stem(r["sample_id"])
        r["png"], r["svg"] = f"views/{stem}.png", f"views/{stem}.svg"
    index = pd.DataFrame(rows).reindex(columns=INDEX_COLUMNS)
    atomic_write_csv(views / "index.csv", index)
    return [*written, views / "index.csv"]
