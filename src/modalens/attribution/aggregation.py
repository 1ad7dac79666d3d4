"""Dataset-level summaries of the long-form scores (``summary.csv``, ``pairwise.csv``).

:func:`summarize_scores` averages each sample's draws first (:func:`per_sample`), then gives per
(method, level, distance, strategy, group): ``n`` samples, ``mean``, ``median``, ``std``, a
percentile bootstrap interval of the mean (``ci_low``/``ci_high``, :func:`bootstrap_ci`), the
group's ``share`` of the block's summed influence *magnitude* (``mean / sum(|mean|)``: the
shares of non-negative influences sum to 1; a negative one -- a loss-level score or Shapley
value whose occlusion helps -- keeps its sign, and the magnitudes sum to 1, so no share leaves
[-1, 1]), its ``rank`` within its block (largest mean first) and its ``tier``: the rank the
data can support, where groups the paired bootstrap cannot separate share a tier
(:mod:`.ranking` gives the rule; tier 1 = most influential). Ranks, shares and tiers are given
to occlusion and Shapley rows; the ``ALL`` reference is none of them. :func:`pairwise` gives the
probabilities behind the tiers, one row per ordered pair of groups (``pairwise.csv``).
:func:`format_summary` prints the summary as plain-text tables, one block per (method, level,
distance, strategy), each with its order line (:func:`block_order`); :func:`choose_block`
picks one such block (for a ranking or a headline figure).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Any

import numpy as np
import pandas as pd

from ..deprecation import deprecated_alias
from ..errors import DataError
from ..evidence import MIN_FINDING, sample_caveat
from .groups import ALL
from .ranking import TIER_CONFIDENCE, format_order, pairwise_probabilities, tiers

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
    "tier",
]

#: columns of :func:`pairwise` (``pairwise.csv``)
PAIRWISE_COLUMNS = [*BLOCK, "group_a", "group_b", "n", "mean_diff", "p_greater"]

#: the methods whose groups get shares, ranks and tiers
RANKED_METHODS = ("occlusion", "shapley")


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


def _block_matrices(ps: pd.DataFrame) -> Iterator[tuple[tuple, list[str], np.ndarray]]:
    """Per ranked block of a :func:`per_sample` table: its key, its groups (first seen
    first, ``ALL`` left out) and their scores as a ``samples x groups`` matrix (a sample is a
    sample id and, where present, a window)."""
    rows = ps[(ps["group"] != ALL) & ps["method"].isin(RANKED_METHODS)]
    unit = [c for c in ("sample_id", "window") if c in rows.columns]
    for key, grp in rows.groupby(BLOCK, sort=False):
        groups = list(dict.fromkeys(grp["group"]))
        wide = grp.set_index([*unit, "group"])["value"].unstack("group")
        yield key, groups, wide[groups].to_numpy(dtype=np.float64)


def pairwise(scores: pd.DataFrame, n_boot: int = 1000, seed: int = 0) -> pd.DataFrame:
    """The paired bootstrap comparison of every two groups of every block (``pairwise.csv``).

    Per (method, level, distance, strategy) block of occlusion or Shapley rows (``ALL``
    left out) and per ordered pair of its groups: ``n`` samples scored for both,
    ``mean_diff`` (the mean of a's score minus b's over them) and ``p_greater``, the
    probability over ``n_boot`` resamples of the samples (the same resampled samples for
    every group) that a's mean exceeds b's, exact ties counting one half, so the two rows of a
    pair sum to 1 (:func:`~.ranking.pairwise_probabilities`). NaN with fewer than two samples
    or ``n_boot=0``.

    Args:
        scores: the long-form scores (:func:`~.api.attribute`, ``scores.parquet``).
        n_boot: bootstrap resamples.
        seed: the resamples' seed (every block uses it: the same seed, the same table).

    Returns:
        One row per block and ordered pair of distinct groups (:data:`PAIRWISE_COLUMNS`).
    """
    if len(scores) == 0:
        return pd.DataFrame(columns=PAIRWISE_COLUMNS)
    rows: list[dict[str, Any]] = []
    for key, groups, values in _block_matrices(per_sample(scores)):
        res = pairwise_probabilities(values, n_boot, seed)
        head = dict(zip(BLOCK, key, strict=True))
        for a, ga in enumerate(groups):
            for b, gb in enumerate(groups):
                if a != b:
                    rows.append(
                        {
                            **head,
                            "group_a": ga,
                            "group_b": gb,
                            "n": int(res.n[a, b]),
                            "mean_diff": float(res.mean_diff[a, b]),
                            "p_greater": float(res.p[a, b]),
                        }
                    )
    return pd.DataFrame(rows, columns=PAIRWISE_COLUMNS)


def summarize_scores(
    scores: pd.DataFrame,
    n_boot: int = 1000,
    ci: float = 0.95,
    seed: int = 0,
    confidence: float = TIER_CONFIDENCE,
    min_samples: int = MIN_FINDING,
) -> pd.DataFrame:
    """Dataset-level table (see the module docstring).

    Args:
        scores: the long-form scores (:func:`~.api.attribute`, ``scores.parquet``).
        n_boot: bootstrap resamples of the intervals and tiers (0: neither; tiers NaN).
        ci: the intervals' coverage.
        seed: the bootstrap's seed.
        confidence: the probability a group needs to beat another across a tier boundary.
        min_samples: the samples a tier boundary needs (fewer: one tier).

    Returns:
        One row per block and group (:data:`SUMMARY_COLUMNS`).
    """
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
    out["tier"] = np.nan
    ranked = (out["group"] != ALL) & (out["method"].isin(RANKED_METHODS))
    for _, idx in out[ranked].groupby(BLOCK, sort=False).groups.items():
        sub = out.loc[idx, "mean"]
        total = sub.abs().sum(min_count=1)
        if total is not None and np.isfinite(total) and total != 0:
            out.loc[idx, "share"] = sub / total
        out.loc[idx, "rank"] = sub.rank(ascending=False, method="min")
    if n_boot > 0:
        _add_tiers(out, ps, n_boot, seed, confidence, min_samples)
    out["rank"] = out["rank"].astype("Int64")
    out["tier"] = out["tier"].astype("Int64")
    return recommended_order(out[SUMMARY_COLUMNS])


def _add_tiers(
    out: pd.DataFrame,
    ps: pd.DataFrame,
    n_boot: int,
    seed: int,
    confidence: float,
    min_samples: int,
) -> None:
    """Fill the ``tier`` column of the summary ``out`` in place from the per-sample table."""
    position = dict(zip(out[KEYS].itertuples(index=False, name=None), out.index, strict=True))
    for key, groups, values in _block_matrices(ps):
        idx = [position[(*key, g)] for g in groups]
        means = out.loc[idx, "mean"].to_numpy(dtype=np.float64)
        res = pairwise_probabilities(values, n_boot, seed)
        out.loc[idx, "tier"] = tiers(means, res, confidence, min_samples)


#: the value taken for a block key left open when several are present: the first present of
#: these, else the first seen; also the order of the blocks in ``summary.csv`` and the CLI
#: table (the recommended block first). Loss level first, then output level -- the defaults
#: (:data:`~.options.AUTO_LEVEL`), which the faithfulness benchmark found faithful across its
#: worlds where the paper's embedding level was not (README, "Which score to trust"); the
#: train-mean fill first, as it stays in the data's range
PREFERRED: dict[str, tuple[str, ...]] = {
    "method": ("occlusion", "shapley"),
    "level": ("loss", "output", "embedding"),
    "distance": ("euclidean",),
    "strategy": ("mean", "permute", "zeros", "gaussian"),
}


def recommended_order(summary: pd.DataFrame) -> pd.DataFrame:
    """``summary`` with its blocks in :data:`PREFERRED` order (the recommended block first;
    values not listed after those listed, in the order first seen), rows within a block kept.
    """
    if not len(summary):
        return summary
    keys = {}
    for col in BLOCK:
        seen = list(dict.fromkeys(summary[col].astype(str)))
        pref = [v for v in PREFERRED.get(col, ()) if v in seen]
        order = pref + [v for v in seen if v not in pref]
        keys[f"_{col}"] = summary[col].astype(str).map({v: i for i, v in enumerate(order)})
    sort = list(keys)
    return (
        summary.assign(**keys)
        .sort_values(sort, kind="stable")
        .drop(columns=sort)
        .reset_index(drop=True)
    )


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
        summary: a :func:`summarize_scores` table (or any table with the :data:`BLOCK` columns).
        method: the wanted method (None: choose).
        level: the wanted level (None: choose).
        distance: the wanted distance (None: choose).
        strategy: the wanted strategy (None: choose).
        where: the file named in errors.

    Returns:
        ``{"method": ..., "level": ..., "distance": ..., "strategy": ...}``.

    Raises:
        DataError: a wanted value is absent (the error lists those present).
    """
    rows = summary[(summary["group"] != ALL) & summary["method"].isin(RANKED_METHODS)]
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


#: the columns :func:`format_summary` prints by default
SHOWN_COLUMNS = ("mean", "ci_low", "ci_high", "median", "std", "share", "rank", "tier", "n")


def block_order(
    rows: pd.DataFrame,
    name: Callable[[str], str] = str,
    confidence: float = TIER_CONFIDENCE,
) -> str | None:
    """The tiered order of one block's summary rows, with what it rests on.

    Args:
        rows: the :func:`summarize_scores` rows of one (method, level, distance, strategy) block.
        name: how a group is written (e.g. :func:`modalens.plotting.label`).
        confidence: the probability the tiers were cut at (as given to :func:`summarize_scores`).

    Returns:
        E.g. ``"s2 > s1 ≈ esa_wc > viirs (P >= 0.95 between tiers; 30 samples)"``; from
        fewer than 20 samples the parenthesis says how few instead (below 10: too few for a
        finding, and every group shares one tier). None without tiers (no ``tier`` column,
        or a summary made without the bootstrap).
    """
    if "tier" not in rows.columns:
        return None
    r = rows[(rows["group"] != ALL) & rows["tier"].notna()]
    if r.empty:
        return None
    r = r.sort_values(["tier", "mean"], ascending=[True, False], kind="stable")
    order = format_order([name(str(g)) for g in r["group"]], [int(t) for t in r["tier"]])
    n = int(r["n"].max())
    caveat = sample_caveat(n)
    if n < MIN_FINDING:
        return f"{order} ({caveat})"
    return f"{order} (P >= {confidence:g} between tiers; {caveat or f'{n} samples'})"


def format_summary(
    summary: pd.DataFrame,
    columns: Sequence[str] = SHOWN_COLUMNS,
    digits: int = 4,
    confidence: float = TIER_CONFIDENCE,
) -> str:
    """Plain-text table of a summary, one block per (method, level, distance, strategy).

    Under each block's table, its tiered order (:func:`block_order`, where the summary has
    tiers). The share column is headed ``share*``; a footnote says that shares are signed means
    over the summed magnitudes (and, in a block with a negative mean, what a negative share
    means).
    """
    if len(summary) == 0:
        return "(no scores)"
    columns = [c for c in columns if c in summary.columns]
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
                elif c in ("rank", "tier", "n"):
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
        order = block_order(grp, confidence=confidence)
        if order is not None:
            lines.append(f"order: {order}")
        if "share" in columns and grp["share"].notna().any():
            note = "* share = mean / sum of |mean| over the groups (magnitudes sum to 100 %)"
            if (grp["share"] < 0).any():
                note += "; negative: the score falls when the group is occluded (loss: it hurt)"
            lines.append(note)
        lines.append("")
    return "\n".join(lines).rstrip()


#: deprecated name of :func:`summarize_scores` (removed next release)
summarize = deprecated_alias(summarize_scores, "summarize")
