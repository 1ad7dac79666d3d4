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
from ..attribution.ranking import TIER_CONFIDENCE, format_order
from ..evidence import enough_samples, sample_caveat
from ..plotting import label
from ..validation.table import LEADING, TRAILING

#: metrics where lower is better; every other metric is taken as higher-is-better
LOWER_IS_BETTER = {"mae", "rmse", "mse", "loss", "nll"}


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
    out = [_headline(rows, block)]
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
    lower = m.lower() in LOWER_IS_BETTER
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


def describe_agreement(table: pd.DataFrame) -> list[str]:
    """Sentences on ``agreement.csv``: per deviation kind, the influence that agrees best with
    retraining and how the paper's embedding-level score does (from fewer than 10 test samples
    only that they are too few, from fewer than 20 with a caveat)."""
    out: list[str] = []
    words = {"single": "single-modality", "leave_one_out": "leave-one-out"}
    for dev, grp in table.groupby("deviation", sort=False):
        grp = grp.dropna(subset=["spearman"])
        if not len(grp):
            continue
        best = grp.sort_values("spearman", ascending=False).iloc[0]
        n = int(best["n_samples"])
        if not enough_samples(n):
            out.append(
                f"Against the {words.get(dev, dev)} deviations: "
                f"{sample_caveat(n, noun='test sample')}; the correlations are in the table, "
                "not read here."
            )
            continue
        verb = "agrees best" if best["spearman"] > 0 else "comes closest, without agreeing"
        text = (
            f"Against the {words.get(dev, dev)} deviations, {label(best['level'])} with the "
            f"{best['strategy']} fill {verb} (Spearman {best['spearman']:.2f}, "
            + (
                f"95 % interval {best['spearman_low']:.2f} to {best['spearman_high']:.2f}"
                if np.isfinite(best["spearman_low"]) and np.isfinite(best["spearman_high"])
                else "no interval: too few test samples"
            )
            + f", {n} test samples)"
        )
        emb = grp[grp["level"] == "embedding"]
        if len(emb) and best["level"] != "embedding":
            text += f"; the embedding level reaches at most {emb['spearman'].max():.2f}"
        caveat = sample_caveat(n, sentence=True, noun="test sample")
        out.append(text + "." + (f" {caveat}" if caveat else ""))
        if dev == "single" and np.nanmax(grp["spearman"]) < 0:
            out.append(
                "Every single-modality correlation is negative: a modality's own strength alone "
                "is not what occlusion measures (the leave-one-out deviation is the closer test)."
            )
    return out or ["No agreement rows with a correlation."]
