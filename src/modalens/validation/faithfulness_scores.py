"""Scoring the faithfulness benchmark: every method against the known truth, per world and seed.

Per world and seed, :func:`seed_rows` takes the truth (per test sample and modality the realised
importance, :mod:`modalens.data.synthetic.worlds`), the leave-one-out deviations (the second
reference) and the all-modality run's attribution summary, and gives one row per method -- each
(method, level, distance, strategy) block of the summary and leave-one-out retraining itself --
with Spearman's rho against the realised importance, the nominal weights and the leave-one-out
deviations, the largest share of the influence a *null* modality gets (the decoy, or a
modality correlated with the target but absent from its formula: ``|v_m| / sum |v|``), and
whether the method *recovers* the world in that seed (:func:`recovers`): every pair of
modalities it orders differently from the truth differs in realised importance by less than one
standard error of that difference over the test samples, and no null modality gets
:data:`RECOVER_DECOY` or more. :func:`summarize_seeds` gives mean ± std over seeds per world and
method; :func:`describe_faithfulness` says in plain words which methods recover every world;
:func:`markdown` writes the tables.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from ..attribution.aggregation import BLOCK
from ..io import pipe_table
from ..tasks.headline import worse_by
from .correlation import shares, spearman

#: a method recovers a world when every null modality (decoy, non-causal) gets less than this
#: share of its influence (and it misorders no pair the truth separates, :func:`recovers`)
RECOVER_DECOY = 0.05


TRUTH_COLUMNS = ["world", "seed", "modality", "nominal", "realised", "realised_se", "null"]

SEED_COLUMNS = [
    "world",
    "seed",
    *BLOCK,
    "spearman_realised",
    "spearman_nominal",
    "spearman_loo",
    "decoy_share",
    "recovered",
    "misordered",
]

TABLE_COLUMNS = [
    "world",
    *BLOCK,
    "n_seeds",
    "spearman_realised_mean",
    "spearman_realised_std",
    "spearman_loo_mean",
    "spearman_loo_std",
    "decoy_share_mean",
    "decoy_share_std",
    "recovers",
    "n_recovered",
    "n_exact",
]

#: the method name of leave-one-out retraining in the tables
LOO = "leave_one_out"

#: the method of one modality-dropout model's subset scores (``modalens subsets``), at the level
#: :data:`DROPOUT_LEVEL`; its "strategies": ``leave_one_out`` (how much worse the model is with
#: each modality filled) and ``performance_shapley`` (exact Shapley values of the metric)
DROPOUT_METHOD, DROPOUT_LEVEL = "modality_dropout", "dropout model"

#: the methods that train models of their own: references beside the attribution methods
REFERENCES = (LOO, DROPOUT_METHOD)


def loo_deviation(all_row: Mapping[str, Any], loo_row: Mapping[str, Any], metric: str) -> float:
    """How much worse the model is without a modality (negative: better without it).

    Args:
        all_row: the all-modality run's Table I row.
        loo_row: the leave-one-out run's row.
        metric: the metric compared (``mae``...).

    Returns:
        ``loo - all`` for metrics where lower is better, ``all - loo`` otherwise
        (:func:`~modalens.tasks.headline.worse_by`): positive when the modality helped.
    """
    return worse_by(float(loo_row[metric]), float(all_row[metric]), metric)


def spearman_rho(x: Sequence[float] | np.ndarray, y: Sequence[float] | np.ndarray) -> float:
    """Spearman's rho of two value vectors as a float (NaN where undefined)."""
    value = float(spearman(np.asarray(x, float), np.asarray(y, float)))
    return value if math.isfinite(value) else math.nan


def _null_share(values: np.ndarray, modalities: Sequence[str], null: Sequence[str]) -> float:
    idx = [list(modalities).index(m) for m in null if m in modalities]
    if not idx:
        return math.nan
    return float(np.abs(shares(values))[idx].max())


def truth_table(
    world: str,
    seed: int,
    per_sample: np.ndarray,
    modalities: Sequence[str],
    nominal: Mapping[str, float],
    null: Sequence[str],
) -> pd.DataFrame:
    """This world and seed's rows of ``truth.csv``: realised share over the test samples and its
    standard error (the per-sample values' standard error over the summed mean).

    Args:
        world: the world's name.
        seed: the seed.
        per_sample: realised importance ``[samples, modalities]`` of the attributed samples.
        modalities: the modalities (columns of ``per_sample``).
        nominal: planted weights where the world has them (others: NaN).
        null: modalities absent from the target's formula.
    """
    total = per_sample.mean(axis=0).sum()
    n = per_sample.shape[0]
    se = per_sample.std(axis=0, ddof=1) / math.sqrt(n) if n > 1 else np.full(len(modalities), 0.0)
    return pd.DataFrame(
        [
            {
                "world": world,
                "seed": seed,
                "modality": m,
                "nominal": nominal.get(m, math.nan),
                "realised": float(per_sample[:, k].mean() / total) if total > 0 else math.nan,
                "realised_se": float(se[k] / total) if total > 0 else math.nan,
                "null": m in null,
            }
            for k, m in enumerate(modalities)
        ],
        columns=TRUTH_COLUMNS,
    )


def misordered(values: np.ndarray, per_sample: np.ndarray) -> list[tuple[int, int, float, float]]:
    """The pairs a method orders against the truth by more than the truth's sampling error.

    A pair ``(i, j)`` counts when the method's order of ``values`` differs from the order of the
    realised means and the realised difference ``d = r_i - r_j`` (per test sample) has a mean at
    least one standard error (``std(d) / sqrt(n)``) away from 0. Pairs the truth does not
    separate (equal means, e.g. two null modalities) never count.

    Args:
        values: the method's influence per modality.
        per_sample: realised importance ``[samples, modalities]``.

    Returns:
        ``(i, j, mean difference, standard error)`` per such pair.
    """
    n = per_sample.shape[0]
    truth = per_sample.mean(axis=0)
    bad = []
    for i in range(len(values)):
        for j in range(i + 1, len(values)):
            t = np.sign(truth[i] - truth[j])
            if t == 0 or np.sign(values[i] - values[j]) == t:
                continue
            d = per_sample[:, i] - per_sample[:, j]
            se = float(d.std(ddof=1) / math.sqrt(n)) if n > 1 else 0.0
            if abs(float(d.mean())) >= se:
                bad.append((i, j, float(d.mean()), se))
    return bad


def seed_rows(
    world: str,
    seed: int,
    truth: pd.DataFrame,
    per_sample: np.ndarray,
    loo: Mapping[str, float],
    summary: pd.DataFrame,
    *,
    levels: Mapping[str, Sequence[str]],
    metric: str,
    extra: Mapping[tuple[str, str, str, str], Sequence[float]] | None = None,
) -> pd.DataFrame:
    """The per-seed rows of ``faithfulness_seeds.csv``.

    Args:
        world: the world's name.
        seed: the seed.
        truth: this world and seed's rows of ``truth.csv`` (:func:`truth_table`).
        per_sample: realised importance ``[samples, modalities]`` in ``truth``'s order.
        loo: leave-one-out deviation per modality (:func:`loo_deviation`).
        summary: the all-modality run's attribution ``summary.csv``.
        levels: per attribution method the levels scored (``{"occlusion": [...], "shapley":
            ["output"]}``).
        metric: the metric of the leave-one-out deviations.
        extra: further methods scored like leave-one-out retraining (a modality that makes
            the model better when absent gets no share): per ``(method, level, distance,
            strategy)`` one value per modality in ``truth``'s order -- the modality-dropout
            model's subsets (:data:`DROPOUT_METHOD`).

    Returns:
        One row per method block, one for leave-one-out retraining and one per ``extra``
        method (columns :data:`SEED_COLUMNS`).
    """
    mods = list(truth["modality"])
    null = list(truth.loc[truth["null"].astype(bool), "modality"])
    realised = truth["realised"].to_numpy(float)
    nominal = truth["nominal"].to_numpy(float)
    loo_v = np.array([loo[m] for m in mods], float)
    rows = []

    def add(block: Sequence[str], values: np.ndarray, null_values: np.ndarray) -> None:
        bad = misordered(values, per_sample)
        share = _null_share(null_values, mods, null)
        rows.append(
            {
                "world": world,
                "seed": seed,
                **dict(zip(BLOCK, block, strict=True)),
                "spearman_realised": spearman_rho(values, realised),
                "spearman_nominal": spearman_rho(values, nominal),
                "spearman_loo": spearman_rho(values, loo_v),
                "decoy_share": share,
                "recovered": not bad and not (share >= RECOVER_DECOY),
                "misordered": "; ".join(
                    f"{mods[i]} vs {mods[j]} (truth differs by {d:+.3g}, se {se:.2g})"
                    for i, j, d, se in bad
                ),
            }
        )

    data = summary[summary["group"].astype(str).isin(mods)]
    for key, block in data.groupby(BLOCK, sort=False):
        method, level = str(key[0]), str(key[1])
        if level not in levels.get(method, ()):
            continue
        means = block.set_index("group")["mean"].reindex(mods)
        if means.isna().any():
            continue
        values = means.to_numpy(float)
        add([str(k) for k in key], values, values)
    # leave-one-out retraining: how much worse without each modality (better-without -> 0 share)
    add([LOO, "retraining", metric, ""], loo_v, np.maximum(loo_v, 0.0))
    for block, given in (extra or {}).items():
        v = np.asarray(given, float)
        add(list(block), v, np.maximum(v, 0.0))
    return pd.DataFrame(rows, columns=SEED_COLUMNS)


def _std(values: pd.Series) -> float:
    v = values.dropna().to_numpy(float)
    return float(v.std(ddof=1)) if len(v) > 1 else 0.0 if len(v) else math.nan


def summarize_seeds(seeds: pd.DataFrame) -> pd.DataFrame:
    """``faithfulness.csv``: per world and method mean ± std over seeds and whether it recovers
    the world in every seed (``n_recovered`` of ``n_seeds``; ``n_exact``: seeds where its ranking
    is the realised one, rho = 1).

    Args:
        seeds: the rows of :func:`seed_rows` for every world and seed.

    Returns:
        The table (columns :data:`TABLE_COLUMNS`), per world best first (seeds recovered, mean
        rho, then null share).
    """
    rows = []
    for key, g in seeds.groupby(["world", *BLOCK], sort=False, dropna=False):
        rho = g["spearman_realised"]
        decoy = g["decoy_share"]
        recovered = g["recovered"].astype(str).str.lower().isin(("true", "1"))
        rows.append(
            {
                **dict(zip(["world", *BLOCK], key, strict=True)),
                "n_seeds": int(g["seed"].nunique()),
                "spearman_realised_mean": float(rho.mean()),
                "spearman_realised_std": _std(rho),
                "spearman_loo_mean": float(g["spearman_loo"].mean()),
                "spearman_loo_std": _std(g["spearman_loo"]),
                "decoy_share_mean": float(decoy.mean()) if decoy.notna().any() else math.nan,
                "decoy_share_std": _std(decoy),
                "recovers": bool(recovered.all()),
                "n_recovered": int(recovered.sum()),
                "n_exact": int((rho >= 1.0 - 1e-9).sum()),
            }
        )
    table = pd.DataFrame(rows, columns=TABLE_COLUMNS)
    order = table.assign(
        _w=table["world"].map({w: i for i, w in enumerate(dict.fromkeys(table["world"]))}),
        _n=-table["n_recovered"],
        _r=-table["spearman_realised_mean"].fillna(-2),
        _d=table["decoy_share_mean"].fillna(0),
    ).sort_values(["_w", "_n", "_r", "_d"], kind="stable")
    return table.loc[order.index].reset_index(drop=True)


def across_worlds(table: pd.DataFrame) -> pd.DataFrame:
    """Per method: in how many worlds it recovers the truth in every seed, and seeds recovered
    over all worlds (``faithfulness_worlds.csv``), best first.

    Args:
        table: :func:`summarize_seeds`'s table.
    """
    t = table.copy()
    if "world" not in t.columns:  # a table from before the worlds: one world
        t.insert(0, "world", "planted")
    t["recovers"] = t["recovers"].astype(str).str.lower().isin(("true", "1"))
    if "n_recovered" not in t.columns:
        t["n_recovered"] = np.where(t["recovers"], t["n_seeds"], 0)
    rows = []
    for key, g in t.groupby(BLOCK, sort=False, dropna=False):
        rows.append(
            {
                **dict(zip(BLOCK, key, strict=True)),
                "worlds": int(g["world"].nunique()),
                "worlds_recovered": int(g["recovers"].sum()),
                "seeds_recovered": int(g["n_recovered"].sum()),
                "seeds": int(g["n_seeds"].sum()),
                "failed_in": ", ".join(g.loc[~g["recovers"], "world"].astype(str)),
                "decoy_share_max": float(g["decoy_share_mean"].max()),
                "spearman_realised_min": float(g["spearman_realised_mean"].min()),
            }
        )
    out = pd.DataFrame(rows)
    if not len(out):
        return out
    return out.sort_values(
        ["worlds_recovered", "seeds_recovered", "spearman_realised_min"],
        ascending=False,
        kind="stable",
    ).reset_index(drop=True)


def method_label(row: Mapping[str, Any]) -> str:
    """A readable name of a method row (``output-level occlusion with mean fill``).

    Args:
        row: a row with ``method``, ``level``, ``strategy``.

    Returns:
        The name, e.g. ``embedding-level occlusion with zeros fill``, ``output-level
        permutation``, ``Shapley values (output level, mean fill)``, ``leave-one-out
        retraining``.
    """
    method, level, strategy = str(row["method"]), str(row["level"]), str(row["strategy"])
    if method == LOO:
        return "leave-one-out retraining"
    if method == DROPOUT_METHOD:
        what = "performance Shapley" if strategy == "performance_shapley" else "each left out"
        return f"one dropout model, {what}"
    if method == "shapley":
        return f"Shapley values ({level} level, {strategy} fill)"
    if strategy == "permute":
        return f"{level}-level permutation"
    return f"{level}-level {method} with {strategy} fill"


def _pct(value: float) -> str:
    return "n/a" if not math.isfinite(value) else f"{100 * value:.1f} %"


def describe_faithfulness(table: pd.DataFrame) -> list[str]:
    """Plain-language sentences on a ``faithfulness.csv`` table: which methods recover every
    world, and where the others fail.

    Args:
        table: the table of :func:`summarize_seeds` (or read back from ``faithfulness.csv``).

    Returns:
        Sentences: the methods that recover every world in every seed (or, if none does, the
        closest and where it fails), the paper's embedding level, the method giving a null
        modality the most, and how leave-one-out retraining (the second reference) compares.
    """
    if table is None or not len(table):
        return ["No faithfulness results."]
    if "world" not in table.columns:
        table = table.assign(world="planted")
    worlds = across_worlds(table)
    methods = worlds[~worlds["method"].isin(REFERENCES)]
    n_w = int(methods["worlds"].max()) if len(methods) else 0
    out = []
    good = methods[methods["worlds_recovered"] == methods["worlds"]]
    rule = (
        f"every pair it orders against the truth lies within one standard error of the truth, "
        f"and no decoy or non-causal modality gets {100 * RECOVER_DECOY:.0f} % or more"
    )
    out.append(
        f"{len(good)} of {len(methods)} attribution methods recover all {n_w} worlds in every "
        f"seed ({rule})."
    )
    for _, row in good.head(4).iterrows():
        out.append(
            f"{method_label(row).capitalize()} recovers every world "
            f"({row['seeds_recovered']}/{row['seeds']} world-seeds; largest null share "
            f"{_pct(row['decoy_share_max'])})."
        )
    if not len(good) and len(methods):
        best = methods.iloc[0]
        out.append(
            f"The closest is {method_label(best)}: {best['worlds_recovered']}/{best['worlds']} "
            f"worlds, fails in {best['failed_in']}."
        )
    emb = methods[methods["level"] == "embedding"]
    if len(emb):
        best = emb.iloc[0]
        out.append(
            f"At embedding level (the paper's distance) the best is {method_label(best)}: "
            f"{best['worlds_recovered']}/{best['worlds']} worlds"
            + (f", fails in {best['failed_in']}." if best["failed_in"] else ".")
        )
    t = table[~table["method"].isin(REFERENCES)]
    if t["decoy_share_mean"].notna().any():
        worst = t.loc[t["decoy_share_mean"].idxmax()]
        out.append(
            f"{method_label(worst).capitalize()} gives a null modality the most influence: "
            f"{_pct(worst['decoy_share_mean'])} in the {worst['world']} world."
        )
    loo = worlds[worlds["method"] == LOO]
    if len(loo):
        row = loo.iloc[0]
        out.append(
            f"Leave-one-out retraining, the second reference, recovers "
            f"{row['worlds_recovered']}/{row['worlds']} worlds "
            f"({row['seeds_recovered']}/{row['seeds']} world-seeds)."
        )
    for _, row in worlds[worlds["method"] == DROPOUT_METHOD].iterrows():
        out.append(
            f"{method_label(row).capitalize()} (modalens subsets) recovers "
            f"{row['worlds_recovered']}/{row['worlds']} worlds "
            f"({row['seeds_recovered']}/{row['seeds']} world-seeds)."
        )
    return out


def markdown(table: pd.DataFrame, sentences: Sequence[str] = ()) -> str:
    """The tables as Markdown: per method the seeds it recovers in each world, then per world
    rho and null share as mean ± std.

    Args:
        table: the :func:`summarize_seeds` table.
        sentences: plain-language lines written under it.

    Returns:
        Markdown text.
    """
    worlds = list(dict.fromkeys(table["world"]))
    overall = across_worlds(table)
    cell = table.set_index(["world", *BLOCK])
    rows: list[list[str]] = []
    for _, row in overall.iterrows():
        cells = []
        for w in worlds:
            key = (w, *(row[b] for b in BLOCK))
            if key not in cell.index:
                cells.append("-")
                continue
            r = cell.loc[key]
            cells.append(
                f"{int(r['n_recovered'])}/{int(r['n_seeds'])} (ρ {r['spearman_realised_mean']:.2f}"
                f", null {_pct(r['decoy_share_mean'])})"
            )
        rows.append([method_label(row), *cells, f"{row['worlds_recovered']}/{row['worlds']}"])
    text = "\n".join(pipe_table(["method", *worlds, "worlds recovered"], rows)) + "\n"
    if sentences:
        text += "\n" + "\n".join(f"- {s}" for s in sentences) + "\n"
    return text
