"""The plain-text side of :func:`~.agree.agreement`: its table as lines, and the notes that
keep it honest.

- :func:`format_agreement`: one line per deviation kind and block (rho, tau, r with their
  intervals, the modality pairs ordered alike) and closing notes;
- :func:`metric_note`: the note when the deviations are not in the task's headline metric;
- :func:`size_caveats`: the notes when there are fewer than :data:`MIN_FINDING` modalities
  (a rank correlation over a handful of values describes two rankings, it is no finding) or
  test samples (too few for a bootstrap interval).
"""

from __future__ import annotations

import pandas as pd

#: fewer modalities than this (for a correlation) or test samples (for an interval) describe
#: the rankings at hand but are too few for a finding (the project's one threshold)
from ..evidence import MIN_FINDING


def metric_note(table: pd.DataFrame) -> str | None:
    """The line saying the deviations do not use the task's headline metric, if they do not.

    Args:
        table: :attr:`~.agree.AgreementResult.table` (or ``agreement.csv`` read back; a
            table without a ``headline`` column says nothing).

    Returns:
        E.g. ``"deviations in accuracy, not the task's headline metric iou_water"``, or
        None when they use the headline.
    """
    if not len(table) or "headline" not in table.columns:
        return None
    used, headline = str(table["metric"].iloc[0]), table["headline"].iloc[0]
    if pd.isna(headline) or headline == "":
        return f"deviations in {used}; the task's headline metric is unknown"
    if str(headline) != used:
        return f"deviations in {used}, not the task's headline metric {headline}"
    return None


def format_agreement(table: pd.DataFrame) -> str:
    """Plain-text lines of an agreement table: one per deviation kind and block.

    Args:
        table: :attr:`~.agree.AgreementResult.table` (or ``agreement.csv`` read back).

    Returns:
        The lines, joined, with closing lines on modalities, samples, metric and draws, on a
        metric other than the task's headline, and on too few modalities or samples for the
        correlations or intervals to be findings.
    """
    if len(table) == 0:
        return "(no agreement rows)"

    def stat(row: pd.Series, name: str, symbol: str) -> str:
        v, lo, hi = row[name], row[f"{name}_low"], row[f"{name}_high"]
        text = f"{symbol} {v:+.2f}" if pd.notna(v) else f"{symbol}   n/a"
        return text + (f" [{lo:+.2f}, {hi:+.2f}]" if pd.notna(lo) else "")

    symbols = (("spearman", "rho"), ("kendall", "tau"), ("pearson", "r"))
    lines = []
    for _, row in table.iterrows():
        block = f"{row['method']}/{row['level']}/{row['distance']}/{row['strategy']}"
        pairs = f"  pairs alike {int(row['pairs_alike'])}/{int(row['pairs'])}"
        lines.append(
            f"{row['deviation']:<13} {block:<38} "
            + "  ".join(stat(row, n, s) for n, s in symbols)
            + pairs
        )
    first = table.iloc[0]
    n_mod, n_samples = int(first["n_modalities"]), int(first["n_samples"])
    lines.append(
        f"({n_mod} modalities, {n_samples} test samples, "
        f"metric {first['metric']}, {int(first['n_boot'])} bootstrap draws)"
    )
    note = metric_note(table)
    if note:
        lines.append(f"Note: {note}.")
    lines.extend(f"Note: {c}." for c in size_caveats(n_mod, n_samples))
    return "\n".join(lines)


def size_caveats(n_modalities: int, n_samples: int) -> list[str]:
    """Why the correlations or their intervals are not findings, if they are not.

    Args:
        n_modalities: the modalities each correlation is computed over.
        n_samples: the test samples the intervals resample.

    Returns:
        Zero, one or two short clauses (fewer than :data:`MIN_FINDING` of either).
    """
    out = []
    if n_modalities < MIN_FINDING:
        out.append(
            f"each correlation is over {n_modalities} modalities only: it describes these "
            f"rankings (see the pairs ordered alike) but is too few values to be a finding"
        )
    if n_samples < MIN_FINDING:
        out.append(f"the intervals resample {n_samples} test samples: too few to be a finding")
    return out
