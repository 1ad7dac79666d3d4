"""A short plain-language reading of the attribution, ablation and agreement tables.

Each function takes the table a command wrote and returns a few sentences that say what the
numbers mean ("Sentinel-2 carries most of the influence ..."). They state only what the table
shows; where methods disagree they say so instead of choosing silently. Words match numbers:
"most of the influence" only above a 50 % share, else "the largest share"; an order is stated
with its ties (``>`` only where the data separate two modalities); and a reading from fewer
than :data:`~modalens.evidence.FEW_SAMPLES` samples says how few, below
:data:`~modalens.evidence.MIN_FINDING` instead of a finding (:mod:`modalens.evidence`).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from ..attribution.aggregation import BLOCK, choose_block
from ..attribution.groups import ALL
from ..attribution.options import AttributionOptions
from ..attribution.ranking import TIER_CONFIDENCE, format_order
from ..evidence import enough_samples, level_evidence, sample_caveat
from ..plotting import label
from ..tasks.headline import lower_is_better
from ..validation.agreement_text import MIN_FINDING, metric_note
from ..validation.table import LEADING, TRAILING


def _pct(x: float) -> str:
    return f"{100 * x:.0f} %"


def _ranked(summary: pd.DataFrame) -> pd.DataFrame:
    s = summary[(summary["group"] != ALL) & summary["rank"].notna()]
    return s.sort_values([*BLOCK, "rank"])


def headline_block(summary: pd.DataFrame) -> tuple | None:
    """The (method, level, distance, strategy) block a reader should look at first:
    :func:`~modalens.attribution.aggregation.choose_block`'s choice; ``None`` without ranked
    rows."""
    if len(_ranked(summary)) == 0:
        return None
    return tuple(choose_block(summary).values())


def share_words(share: float) -> str:
    """How a reading names the top share: "carries most of the influence" only above 50 %,
    else "carries the largest share of the influence"."""
    if np.isfinite(share) and share > 0.5:
        return "carries most of the influence"
    return "carries the largest share of the influence"


def _headline(rows: pd.DataFrame, block: tuple) -> str:
    """The first sentence on the headline block's ranked rows (largest mean first): the top
    modality's share in words that match it, and the order with its ties."""
    method, level, _distance, strategy = block
    top = rows.iloc[0]
    n = int(rows["n"].max())
    where = f"{label(level)} with the {strategy} fill ({method}, {n} sample{'' if n == 1 else 's'})"
    head = (
        f"{label(top['group'])} {share_words(float(top['share']))}: {_pct(top['share'])} at {where}"
    )
    names = [label(g) for g in rows["group"]]
    if not enough_samples(n):
        return (
            f"{sample_caveat(n, sentence=True)} By mean alone, {head}; in the order of the "
            f"means: {', '.join(names)}."
        )
    tier = rows["tier"] if "tier" in rows.columns else pd.Series(dtype=float)
    if len(tier) != len(rows) or tier.isna().any():
        return (
            f"{head}; by mean the order is {', '.join(names)} (this summary has no tiers: rerun "
            "modalens attribute to see which modalities the data can separate)."
        )
    tiers_ = [int(t) for t in tier]
    tied = [name for name, t in zip(names[1:], tiers_[1:], strict=True) if t == tiers_[0]]
    if tied:
        head += f", but the data cannot separate it from {', '.join(tied)}"
    text = (
        f"{head}; the order is {format_order(names, tiers_)} (>: bootstrap P ≥ "
        f"{TIER_CONFIDENCE:g} for every pair across it; ≈: the data cannot separate them)."
    )
    caveat = sample_caveat(n, sentence=True)
    return f"{text} {caveat}" if caveat else text


def _trust(s: pd.DataFrame, block: tuple) -> str:
    """Which score to trust and why (the faithfulness benchmark's figures), and what the paper's
    embedding level says where it disagrees with the headline block."""
    method, level, distance, strategy = block
    why = level_evidence(level)
    if level == "embedding":
        return (
            "Read with care: only the paper's embedding level was scored"
            + (f"; in the faithfulness benchmark it {why}" if why else "")
            + ". Attribute with the default level (loss) to check it."
        )
    default = strategy == AttributionOptions().strategies[0] and level == "loss"
    text = f"Trust the {label(level)} with the {strategy} fill"
    text += ", the default" if default else ""
    text += f": in the faithfulness benchmark it {why}" if why else ""
    emb = s[(s["method"] == method) & (s["level"] == "embedding") & (s["strategy"] == strategy)]
    if len(emb) and "euclidean" in set(emb["distance"]):
        emb = emb[emb["distance"] == "euclidean"].sort_values("mean", ascending=False)
        here = s[(s[BLOCK] == pd.Series(block, index=BLOCK)).all(axis=1)]
        if list(emb["group"]) != list(here.sort_values("mean", ascending=False)["group"]):
            paper = level_evidence("embedding")
            text += (
                f". The paper's embedding level ranks otherwise ({label(emb.iloc[0]['group'])} "
                f"first, {_pct(emb.iloc[0]['share'])})"
                + (f"; it {paper}" if paper else "")
                + ": its distances are not calibrated across modalities"
            )
    return text + ' (README, "Which score to trust").'


def describe_attribution(summary: pd.DataFrame) -> list[str]:
    """Sentences on a ``summary.csv``: who carries the influence and the order the data
    support (with ties, from its ``tier`` column), and where levels or strategies disagree on
    the ranking."""
    s = _ranked(summary)
    block = headline_block(summary)
    if block is None:
        return ["No ranked influence rows in this summary."]
    method, level, distance, strategy = block
    rows = s[(s[BLOCK] == pd.Series(block, index=BLOCK)).all(axis=1)]
    out = [_trust(s, block), _headline(rows, block)]
    # levels that disagree for the same method, distance and strategy
    ranks = s.pivot_table(
        index=["method", "distance", "strategy", "group"],
        columns="level",
        values="rank",
        aggfunc="first",
    )
    if {"embedding", "output"} <= set(ranks.columns):
        diff = (ranks["embedding"] - ranks["output"]).abs()
        worst = diff[diff > 0]
        if len(worst):
            g = worst.groupby(level="group").sum().sort_values(ascending=False).index[0]
            sub = ranks.xs(g, level="group").dropna(subset=["embedding", "output"])
            sub = sub[sub["embedding"] != sub["output"]]
            examples = ", ".join(
                f"{st}: {int(r['embedding'])} vs {int(r['output'])}"
                for (_m, _d, st), r in sub.iterrows()
            )
            out.append(
                f"Embedding and output level disagree on {label(g)} (rank at embedding vs output "
                f"level, per fill — {examples}); the paper's score is the embedding level."
            )
        else:
            out.append("Embedding and output level give the same ranking for every fill.")
    # strategies that disagree at the headline level
    lvl = s[(s["method"] == method) & (s["level"] == level) & (s["distance"] == distance)]
    firsts = lvl[lvl["rank"] == 1].groupby("strategy")["group"].first()
    if firsts.nunique() > 1:
        out.append(
            f"The fills disagree on the most influential modality at {label(level)}: "
            + ", ".join(f"{st} → {label(g)}" for st, g in firsts.items())
            + "."
        )
    return out


def metric_columns(table: pd.DataFrame, candidates: Sequence[str] | None = None) -> list[str]:
    """The metric columns of a Table I (those between the leading and trailing columns)."""
    skip = set(LEADING) | set(TRAILING)
    cols = [c for c in table.columns if c not in skip and not c.endswith("_std")]
    return [c for c in cols if candidates is None or c in candidates]


def describe_ablation(table: pd.DataFrame) -> list[str]:
    """Sentences on Table I: the all-modality metric, the best single modality, the most
    harmful omission and the omissions that cost nothing."""
    if "seed" in table.columns and (table["seed"].astype(str) == "mean").any():
        table = table[table["seed"].astype(str) == "mean"]
    metrics = metric_columns(table)
    if not metrics or not (table["kind"] == "all").any():
        return ["Table I has no all-modality row yet (the ablation is not finished)."]
    m = metrics[0]
    lower = lower_is_better(m)
    base = float(table.loc[table["kind"] == "all", m].iloc[0])
    name = m.upper() if lower else m

    def rel(v: float) -> str:
        return f"{100 * (v - base) / abs(base):+.0f} %" if base else "n/a"

    out = [f"All modalities: {name} {base:.3g}."]
    single = table[table["kind"] == "single"].dropna(subset=[m])
    if len(single):
        best = single.sort_values(m, ascending=lower).iloc[0]
        out.append(
            f"Best single modality: {label(best['modality'])} ({name} {best[m]:.3g}, "
            f"{rel(best[m])} against all)."
        )
    loo = table[table["kind"] == "leave_one_out"].dropna(subset=[m])
    if len(loo):
        harm = (loo[m] - base) * (1 if lower else -1)
        worst = loo.loc[harm.idxmax()]
        out.append(
            f"Leaving out {label(worst['modality'])} hurts most ({name} {worst[m]:.3g}, "
            f"{rel(worst[m])})."
        )
        free = loo[harm <= 0]
        if len(free):
            out.append(
                "Leaving out "
                + ", ".join(f"{label(r['modality'])} ({rel(r[m])})" for _, r in free.iterrows())
                + f" does not worsen {name}: candidates to drop."
            )
    return out


def _block_words(row: pd.Series) -> str:
    method = "" if row["method"] == "occlusion" else f"{row['method']} at "
    return f"{method}{label(row['level'])} with the {row['strategy']} fill"


def _closest(grp: pd.DataFrame) -> str:
    """Which influence ranking comes closest, with no more precision than the numbers of
    modalities and test samples allow."""
    best = grp.sort_values("spearman", ascending=False, kind="stable").iloc[0]
    n_mod, n = int(best["n_modalities"]), int(best["n_samples"])
    rho = f"Spearman ρ = {best['spearman']:.2f}"
    parts = []
    if n_mod < MIN_FINDING:
        if "pairs_alike" in best.index and pd.notna(best["pairs_alike"]):
            pairs = f"{int(best['pairs_alike'])} of the {int(best['pairs'])}"
            parts.append(f"{pairs} modality pairs ordered alike")
        parts.append(f"{rho} over {n_mod} modalities: too few for a finding")
    else:
        parts.append(rho)
    lo, hi = best.get("spearman_low", np.nan), best.get("spearman_high", np.nan)
    if n < MIN_FINDING:
        parts.append(f"{n} test samples: too few for an interval")
    elif np.isfinite(lo) and np.isfinite(hi):
        parts[-1] += f", bootstrap interval {lo:.2f} to {hi:.2f} over {n} test samples"
    text = f"Closest to them: the influence at {_block_words(best)} ({'; '.join(parts)})"
    emb = grp[grp["level"] == "embedding"]
    if len(emb) and best["level"] != "embedding":
        text += f"; the embedding level reaches at most ρ = {emb['spearman'].max():.2f}"
    return text


def _negative_importance(values: pd.DataFrame) -> str | None:
    """The modalities the model does better without (negative leave-one-out deviation)."""
    loo = values[values["deviation"] == "leave_one_out"]
    if not len(loo):
        return None
    first = loo[(loo[BLOCK] == loo[BLOCK].iloc[0]).all(axis=1)]
    neg = first[first["deviation_value"] < 0]
    if not len(neg):
        return None
    metric = str(first["metric"].iloc[0])
    name = metric.upper() if lower_is_better(metric) else metric
    way = "lower" if lower_is_better(metric) else "higher"
    names = ", ".join(
        f"{label(r['modality'])} ({name} {abs(r['deviation_value']):.3g} {way})"
        for _, r in neg.iterrows()
    )
    return (
        f"Retrained without {names}, the model does better than with every modality: a "
        "negative leave-one-out importance."
    )


def describe_agreement(table: pd.DataFrame, values: pd.DataFrame | None = None) -> list[str]:
    """Sentences on ``agreement.csv``: what each deviation measures and which influence ranking
    comes closest to it, stated only as precisely as the numbers of modalities and test
    samples allow (:data:`~modalens.validation.agreement_text.MIN_FINDING`).

    Args:
        table: ``agreement.csv``.
        values: ``agreement_values.csv``, to name modalities with a negative leave-one-out
            importance (optional).

    Returns:
        The sentences (leave-one-out first: it is the test of what the model relies on).
    """
    out: list[str] = []
    note = metric_note(table)
    if note:
        out.append(f"{note[0].upper()}{note[1:]}.")
    metric = str(table["metric"].iloc[0]) if len(table) else "the metric"
    metric = metric.upper() if lower_is_better(metric) else metric
    intro = {
        "leave_one_out": (
            "Leave-one-out deviations measure what the model loses without each modality, "
            f"given the others ({metric}; negative where it does better without it)."
        ),
        "single": (
            "Single-modality deviations measure how far a model trained on each modality "
            "alone falls short of all modalities: how well each modality alone predicts the "
            "target, not what the full model relies on."
        ),
    }
    for dev in ("leave_one_out", "single"):
        grp = table[table["deviation"] == dev].dropna(subset=["spearman"])
        if not len(grp):
            continue
        out.append(f"{intro[dev]} {_closest(grp)}.")
        if dev == "single" and np.nanmax(grp["spearman"]) < 0:
            out.append(
                "Every correlation with the single-modality deviations is negative: the "
                "influence ranks highest the modalities that predict best on their own."
            )
    if values is not None and len(values) and "deviation_value" in values.columns:
        negative = _negative_importance(values)
        if negative:
            out.append(negative)
    return out or ["No agreement rows with a correlation."]
