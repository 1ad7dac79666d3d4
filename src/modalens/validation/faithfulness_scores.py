"""Scoring the faithfulness benchmark: every method against the known truth, per seed and overall.

Per seed, :func:`seed_rows` takes the truth (nominal and realised importance per modality, from
the synthetic data's ``metadata.json``), the leave-one-out deviations (the second reference) and
the all-modality run's attribution summary, and gives one row per method -- each
(method, level, distance, strategy) block of the summary and leave-one-out retraining itself --
with Spearman's rho against the realised importance, the nominal weights and the leave-one-out
deviations, and the decoy's share of the method's influence (``|v_decoy| / sum_m |v_m|``).
:func:`summarize_seeds` gives mean ± std over seeds and whether a method *recovers* the truth;
:func:`describe_faithfulness` says in plain words which methods do; :func:`markdown` writes the
table.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from ..attribution.aggregation import BLOCK
from ..tasks.headline import worse_by
from .correlation import shares, spearman

#: a method recovers the truth when rho >= this in every seed ...
RECOVER_RHO = 0.9

#: ... and it gives the decoy less than this share of its influence on average
RECOVER_DECOY = 0.05


TRUTH_COLUMNS = ["seed", "modality", "nominal", "realised"]

SEED_COLUMNS = [
    "seed",
    *BLOCK,
    "spearman_realised",
    "spearman_nominal",
    "spearman_loo",
    "decoy_share",
]

TABLE_COLUMNS = [
    *BLOCK,
    "n_seeds",
    "spearman_realised_mean",
    "spearman_realised_std",
    "spearman_loo_mean",
    "spearman_loo_std",
    "decoy_share_mean",
    "decoy_share_std",
    "recovers",
    "n_exact",
]

#: the method name of leave-one-out retraining in the tables
LOO = "leave_one_out"


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


def _rho(x: Sequence[float], y: Sequence[float]) -> float:
    value = float(spearman(np.asarray(x, float), np.asarray(y, float)))
    return value if math.isfinite(value) else math.nan


def _decoy_share(values: np.ndarray, modalities: Sequence[str], decoy: str | None) -> float:
    if decoy is None or decoy not in modalities:
        return math.nan
    return float(np.abs(shares(values))[list(modalities).index(decoy)])


def seed_rows(
    seed: int,
    truth: pd.DataFrame,
    loo: Mapping[str, float],
    summary: pd.DataFrame,
    *,
    levels: Mapping[str, Sequence[str]],
    decoy: str | None,
    metric: str,
) -> pd.DataFrame:
    """The per-seed rows of ``faithfulness_seeds.csv``.

    Args:
        seed: the seed.
        truth: this seed's rows of ``truth.csv`` (modality, nominal, realised), in modality order.
        loo: leave-one-out deviation per modality (:func:`loo_deviation`).
        summary: the all-modality run's attribution ``summary.csv``.
        levels: per attribution method the levels scored (``{"occlusion": [...], "shapley":
            ["output"]}``).
        decoy: the decoy modality's name (None: no decoy).
        metric: the metric of the leave-one-out deviations.

    Returns:
        One row per method block and one for leave-one-out retraining (columns
        :data:`SEED_COLUMNS`).
    """
    mods = list(truth["modality"])
    realised = truth["realised"].to_numpy(float)
    nominal = truth["nominal"].to_numpy(float)
    loo_v = np.array([loo[m] for m in mods], float)
    rows = []

    def add(block: Sequence[str], values: np.ndarray, decoy_values: np.ndarray) -> None:
        rows.append(
            {
                "seed": seed,
                **dict(zip(BLOCK, block, strict=True)),
                "spearman_realised": _rho(values, realised),
                "spearman_nominal": _rho(values, nominal),
                "spearman_loo": _rho(values, loo_v),
                "decoy_share": _decoy_share(decoy_values, mods, decoy),
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
    return pd.DataFrame(rows, columns=SEED_COLUMNS)


def _std(values: pd.Series) -> float:
    v = values.dropna().to_numpy(float)
    return float(v.std(ddof=1)) if len(v) > 1 else 0.0 if len(v) else math.nan


def summarize_seeds(seeds: pd.DataFrame) -> pd.DataFrame:
    """``faithfulness.csv``: per method mean ± std over seeds and whether it recovers the truth.

    A method *recovers* the truth when its Spearman rho with the realised importance is at least
    :data:`RECOVER_RHO` in every seed and it gives the decoy less than :data:`RECOVER_DECOY` of
    its influence on average; ``n_exact`` counts the seeds where it ranks every modality as the
    realised importance does (rho = 1).

    Args:
        seeds: the rows of :func:`seed_rows` for every seed.

    Returns:
        The table (columns :data:`TABLE_COLUMNS`), best first (by mean rho, then decoy share).
    """
    rows = []
    for key, g in seeds.groupby(BLOCK, sort=False, dropna=False):
        rho = g["spearman_realised"]
        decoy = g["decoy_share"]
        decoy_mean = float(decoy.mean()) if decoy.notna().any() else math.nan
        decoy_ok = not (decoy_mean >= RECOVER_DECOY)  # NaN (no decoy) does not block
        rows.append(
            {
                **dict(zip(BLOCK, key, strict=True)),
                "n_seeds": int(g["seed"].nunique()),
                "spearman_realised_mean": float(rho.mean()),
                "spearman_realised_std": _std(rho),
                "spearman_loo_mean": float(g["spearman_loo"].mean()),
                "spearman_loo_std": _std(g["spearman_loo"]),
                "decoy_share_mean": decoy_mean,
                "decoy_share_std": _std(decoy),
                "recovers": bool(rho.notna().all() and (rho >= RECOVER_RHO - 1e-9).all())
                and decoy_ok,
                "n_exact": int((rho >= 1.0 - 1e-9).sum()),
            }
        )
    table = pd.DataFrame(rows, columns=TABLE_COLUMNS)
    order = table.assign(
        _r=-table["spearman_realised_mean"].fillna(-2), _d=table["decoy_share_mean"].fillna(0)
    ).sort_values(["_r", "_d"], kind="stable")
    return table.loc[order.index].reset_index(drop=True)


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
    if method == "shapley":
        return f"Shapley values ({level} level, {strategy} fill)"
    if strategy == "permute":
        return f"{level}-level permutation"
    return f"{level}-level {method} with {strategy} fill"


def _pct(value: float) -> str:
    return "n/a" if not math.isfinite(value) else f"{100 * value:.1f} %"


def _rho_text(row: Mapping[str, Any], key: str = "spearman_realised") -> str:
    return f"ρ = {row[f'{key}_mean']:.2f} ± {row[f'{key}_std']:.2f}"


def describe_faithfulness(table: pd.DataFrame) -> list[str]:
    """Plain-language sentences on a ``faithfulness.csv`` table: which methods recover the truth.

    Args:
        table: the table of :func:`summarize_seeds` (or read back from ``faithfulness.csv``).

    Returns:
        Sentences: how many methods recover the realised ranking and the best of them, the
        best embedding-level method, the method giving the decoy most, and how leave-one-out
        retraining (the second reference) compares.
    """
    if table is None or not len(table):
        return ["No faithfulness results."]
    t = table.copy()
    t["recovers"] = t["recovers"].astype(str).str.lower().isin(("true", "1"))
    methods = t[t["method"] != LOO]
    n = int(methods["n_seeds"].max()) if len(methods) else 0
    out = []
    good = methods[methods["recovers"]]
    out.append(
        f"{len(good)} of {len(methods)} attribution methods recover the realised importance "
        f"ranking (ρ ≥ {RECOVER_RHO:.1f} in every one of {n} seeds and under "
        f"{100 * RECOVER_DECOY:.0f} % of the influence on the decoy)."
    )
    for _, row in good.head(3).iterrows():
        out.append(
            f"{method_label(row).capitalize()} recovers the realised ranking exactly in "
            f"{row['n_exact']}/{row['n_seeds']} seeds ({_rho_text(row)}) and gives the decoy "
            f"{_pct(row['decoy_share_mean'])}."
        )
    emb = methods[methods["level"] == "embedding"]
    if len(emb):
        best = emb.iloc[0]
        out.append(
            f"At embedding level (the paper's distance) the best is {method_label(best)} "
            f"({_rho_text(best)}, decoy {_pct(best['decoy_share_mean'])})."
        )
    if methods["decoy_share_mean"].notna().any():
        worst = methods.loc[methods["decoy_share_mean"].idxmax()]
        out.append(
            f"{method_label(worst).capitalize()} gives the pure-noise decoy the most influence: "
            f"{_pct(worst['decoy_share_mean'])} ({_rho_text(worst)})."
        )
    loo = t[t["method"] == LOO]
    if len(loo):
        row = loo.iloc[0]
        out.append(
            f"Leave-one-out retraining, the second reference, ranks like the realised importance "
            f"at {_rho_text(row)} and gives the decoy {_pct(row['decoy_share_mean'])}."
        )
        if len(methods):
            top = methods.sort_values("spearman_loo_mean", ascending=False, kind="stable").iloc[0]
            out.append(
                f"Closest to leave-one-out retraining: {method_label(top)} "
                f"({_rho_text(top, 'spearman_loo')})."
            )
    return out


def markdown(table: pd.DataFrame, sentences: Sequence[str] = ()) -> str:
    """The table as Markdown (one line per method, rho and decoy share as mean ± std).

    Args:
        table: the :func:`summarize_seeds` table.
        sentences: plain-language lines written under it.

    Returns:
        Markdown text.
    """
    lines = [
        "| method | ρ realised | ρ leave-one-out | decoy share | recovers |",
        "|---|---|---|---|---|",
    ]
    for _, row in table.iterrows():
        decoy = row["decoy_share_mean"]
        decoy_txt = (
            "n/a"
            if not math.isfinite(decoy)
            else f"{100 * decoy:.1f} ± {100 * row['decoy_share_std']:.1f} %"
        )
        lines.append(
            f"| {method_label(row)} | {row['spearman_realised_mean']:.2f} ± "
            f"{row['spearman_realised_std']:.2f} | {row['spearman_loo_mean']:.2f} ± "
            f"{row['spearman_loo_std']:.2f} | {decoy_txt} | "
            f"{'yes' if row['recovers'] else 'no'} ({row['n_exact']}/{row['n_seeds']} exact) |"
        )
    text = "\n".join(lines) + "\n"
    if sentences:
        text += "\n" + "\n".join(f"- {s}" for s in sentences) + "\n"
    return text
