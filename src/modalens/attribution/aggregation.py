"""Dataset-level summaries of the long-form scores (``summary.csv``).

:func:`summarize` averages each sample's draws first (:func:`per_sample`), then gives per
(method, level, distance, strategy, group): ``n`` samples, ``mean``, ``median``, ``std``, a
percentile bootstrap interval of the mean (``ci_low``/``ci_high``, :func:`bootstrap_ci`), the
group's ``share`` of the block's summed influence *magnitude* (``mean / sum(|mean|)``: the
shares of non-negative influences sum to 1; a negative one -- a loss-level score or Shapley
value whose occlusion helps -- keeps its sign, and the magnitudes sum to 1, so no share leaves
[-1, 1]) and its ``rank`` within its block (largest mean first; occlusion and Shapley rows;
the ``ALL`` reference is neither shared nor ranked). :func:`format_summary`
prints it as plain-text tables, one block per (method, level, distance, strategy);
:func:`choose_block` picks one such block (for a ranking or a headline figure).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from ..errors import DataError
from .groups import ALL

KEYS = ["method", "level", "distance", "strategy", "group"]


BLOCK = ["method", "level", "distance", "strategy"]


SUMMARY_COLUMNS = [
    *KEYS,
    "n",
    "mean",
    "median",
    "std",
    "ci_low",
    "ci_high",
    "share",
    "rank",
]


def per_sample(scores: pd.DataFrame) -> pd.DataFrame:
    """One value per sample and key: the mean over draws (NaN draws ignored)."""
    missing = [c for c in ["sample_id", *KEYS, "value"] if c not in scores.columns]
    if missing:
        raise DataError(
            f"scores lack columns {missing}", "scores", "pass the table attribute() returned"
        )
    cols = ["sample_id", *KEYS]
    if "window" in scores.columns:
        cols.insert(1, "window")
    out = scores.groupby(cols, sort=False, dropna=False)["value"].mean().reset_index()
    return out


def bootstrap_ci(
    values: np.ndarray, n_boot: int = 1000, ci: float = 0.95, seed: int = 0
) -> tuple[float, float]:
    """Percentile bootstrap interval of the mean of ``values`` (NaNs dropped); ``(nan, nan)``
    with fewer than two values (one sample says nothing about the spread) or ``n_boot <= 0``."""
    v = np.asarray(values, dtype=np.float64)
    v = v[~np.isnan(v)]
    if v.size < 2 or n_boot <= 0:
        return (np.nan, np.nan)
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, v.size, size=(n_boot, v.size))
    means = v[idx].mean(axis=1)
    lo, hi = np.quantile(means, [(1 - ci) / 2, 1 - (1 - ci) / 2])
    return float(lo), float(hi)


def summarize(
    scores: pd.DataFrame, n_boot: int = 1000, ci: float = 0.95, seed: int = 0
) -> pd.DataFrame:
    """Dataset-level table (see the module docstring); ``n_boot=0`` skips the bootstrap."""
    if len(scores) == 0:
        return pd.DataFrame(columns=SUMMARY_COLUMNS)
    ps = per_sample(scores)
    rows: list[dict[str, Any]] = []
    for key, grp in ps.groupby(KEYS, sort=False, dropna=False):
        v = grp["value"].to_numpy(dtype=np.float64)
        ok = v[~np.isnan(v)]
        lo, hi = bootstrap_ci(ok, n_boot, ci, seed) if n_boot > 0 else (np.nan, np.nan)
        rows.append(
            {
                **dict(zip(KEYS, key, strict=True)),
                "n": int(ok.size),
                "mean": float(ok.mean()) if ok.size else np.nan,
                "median": float(np.median(ok)) if ok.size else np.nan,
                "std": float(ok.std(ddof=1)) if ok.size > 1 else np.nan,
                "ci_low": lo,
                "ci_high": hi,
            }
        )
    out = pd.DataFrame(rows)
    out["share"] = np.nan
    out["rank"] = np.nan
    ranked = (out["group"] != ALL) & (out["method"].isin(["occlusion", "shapley"]))
    for _, idx in out[ranked].groupby(BLOCK, sort=False).groups.items():
        sub = out.loc[idx, "mean"]
        total = sub.abs().sum(min_count=1)
        if total is not None and np.isfinite(total) and total != 0:
            out.loc[idx, "share"] = sub / total
        out.loc[idx, "rank"] = sub.rank(ascending=False, method="min")
    out["rank"] = out["rank"].astype("Int64")
    return out[SUMMARY_COLUMNS]


#: the value taken for a block key left open when several are present: the first present of
#: these, else the first seen. Output level first: on the demo it recovers the planted ranking
#: where the paper's embedding level does not, and it agrees better with leave-one-out
#: retraining (README, "Validation"); the train-mean fill first, as it stays in the data's range
PREFERRED: dict[str, tuple[str, ...]] = {
    "method": ("occlusion", "shapley"),
    "level": ("output", "loss", "embedding"),
    "distance": ("euclidean",),
    "strategy": ("mean", "zeros", "gaussian"),
}


def choose_block(
    summary: pd.DataFrame,
    method: str | None = None,
    level: str | None = None,
    distance: str | None = None,
    strategy: str | None = None,
    where: str = "summary",
) -> dict[str, str]:
    """One (method, level, distance, strategy) block of a summary.

    A key given is required to be present; a key left open takes its only value, else the
    first of :data:`PREFERRED` present, else the first seen (``ALL`` rows and methods without
    shares, e.g. ``interaction``, are not candidates).

    Args:
        summary: a :func:`summarize` table (or any table with the :data:`BLOCK` columns).
        method, level, distance, strategy: the wanted values (None: choose).
        where: the file named in errors.

    Returns:
        ``{"method": ..., "level": ..., "distance": ..., "strategy": ...}``.

    Raises:
        DataError: a wanted value is absent (the error lists those present).
    """
    rows = summary[(summary["group"] != ALL) & summary["method"].isin(["occlusion", "shapley"])]
    wanted = {"method": method, "level": level, "distance": distance, "strategy": strategy}
    chosen: dict[str, str] = {}
    for key in BLOCK:
        present = list(dict.fromkeys(rows[key].astype(str)))
        value = wanted[key]
        if value is None:
            value = next((p for p in PREFERRED.get(key, ()) if p in present), None)
            value = value if value is not None else (present[0] if present else None)
        if value is None or str(value) not in present:
            raise DataError(
                f"no {key} {value!r} among the attribution's rows (present: "
                f"{', '.join(present) or 'none'})",
                where,
                f"choose --{key} from those present",
            )
        chosen[key] = str(value)
        rows = rows[rows[key].astype(str) == chosen[key]]
    return chosen


def _fmt(v: Any, digits: int = 4) -> str:
    if v is None or (isinstance(v, float) and np.isnan(v)) or v is pd.NA:
        return "-"
    if isinstance(v, float | np.floating):
        return f"{v:.{digits}g}"
    return str(v)


def format_summary(
    summary: pd.DataFrame,
    columns: Sequence[str] = ("mean", "ci_low", "ci_high", "median", "std", "share", "rank", "n"),
    digits: int = 4,
) -> str:
    """Plain-text table of a summary, one block per (method, level, distance, strategy).

    The share column is headed ``share*``; a footnote says that shares are signed means over
    the summed magnitudes (and, in a block with a negative mean, what a negative share means).
    """
    if len(summary) == 0:
        return "(no scores)"
    lines: list[str] = []
    for key, grp in summary.groupby(BLOCK, sort=False):
        method, level, distance, strategy = key
        lines.append(f"{method} | level={level} | distance={distance} | strategy={strategy}")
        header = ["group", *("share*" if c == "share" else c for c in columns)]
        body = []
        for _, r in grp.iterrows():
            cells = [str(r["group"])]
            for c in columns:
                v = r[c]
                if c == "share" and not pd.isna(v):
                    cells.append(f"{100 * v:.1f}%")
                elif c in ("rank", "n"):
                    cells.append("-" if pd.isna(v) else str(int(v)))
                else:
                    cells.append(_fmt(v, digits))
            body.append(cells)
        widths = [max(len(h), *(len(b[i]) for b in body)) for i, h in enumerate(header)]
        lines.append(
            "  ".join(
                h.ljust(w) if i == 0 else h.rjust(w)
                for i, (h, w) in enumerate(zip(header, widths, strict=True))
            )
        )
        for b in body:
            lines.append(
                "  ".join(
                    c.ljust(w) if i == 0 else c.rjust(w)
                    for i, (c, w) in enumerate(zip(b, widths, strict=True))
                )
            )
        if "share" in columns and grp["share"].notna().any():
            note = "* share = mean / sum of |mean| over the groups (magnitudes sum to 100 %)"
            if (grp["share"] < 0).any():
                note += "; negative: the score falls when the group is occluded (loss: it hurt)"
            lines.append(note)
        lines.append("")
    return "\n".join(lines).rstrip()
