"""How many samples a statement needs, and the words that say so.

A reading (the report's sentences, the CLI's order line) states a correlation, an interval or
a separation of groups as a finding only when it rests on at least :data:`MIN_FINDING`
samples; below :data:`FEW_SAMPLES` it says how few there are. A percentile bootstrap of a
handful of samples gives intervals far narrower than the truth (three samples have ten
distinct resamples), so a number from them is shown in the tables but not read as a result.
"""

from __future__ import annotations

#: fewer samples than this: no correlation, interval or separation is stated as a finding
MIN_FINDING = 10
#: fewer samples than this: a reading says how few samples it rests on
FEW_SAMPLES = 20


def enough_samples(n: int) -> bool:
    """Whether ``n`` samples are enough to state a correlation or interval as a finding."""
    return int(n) >= MIN_FINDING


def sample_caveat(n: int, sentence: bool = False, noun: str = "sample") -> str:
    """The caveat a reading from ``n`` samples carries, empty from :data:`FEW_SAMPLES` on.

    Args:
        n: the number of samples the statement rests on.
        sentence: capitalised and ending with a full stop (a sentence of its own), else a
            lower-case clause.
        noun: what is counted, singular (``"test sample"``: "only 6 test samples: ...").

    Returns:
        ``"only 6 samples: too few for a finding, at least 10 are needed"`` below
        :data:`MIN_FINDING`, ``"only 15 samples: read with care, ..."`` below
        :data:`FEW_SAMPLES`, else ``""``.
    """
    n = int(n)
    if n >= FEW_SAMPLES:
        return ""
    what = f"only {n} {noun}{'' if n == 1 else 's'}: "
    if n < MIN_FINDING:
        what += f"too few for a finding, at least {MIN_FINDING} are needed"
    else:
        what += f"read with care, intervals from fewer than {FEW_SAMPLES} samples are rough"
    return what[0].upper() + what[1:] + "." if sentence else what


#: what the faithfulness benchmark measured per level with the default train-mean fill: worlds
#: it recovered in every seed, of how many, and in which it failed. Copied from the benchmark's
#: ``faithfulness_worlds.csv`` kept in ``docs/benchmarks/faithfulness/`` (a test checks that
#: they agree); the README's "Which score to trust" shows the whole table.
BENCHMARK_WORLDS: dict[str, tuple[int, int, str]] = {
    "loss": (3, 5, "planted, real"),
    "output": (0, 5, "planted, correlated, interaction, scales, real"),
    "embedding": (0, 5, "planted, correlated, interaction, scales, real"),
}


def level_evidence(level: str) -> str | None:
    """``"recovered 5 of 5 worlds in every seed"`` (and where it failed) for a level the
    faithfulness benchmark measured, else None."""
    if level not in BENCHMARK_WORLDS:
        return None
    won, worlds, failed = BENCHMARK_WORLDS[level]
    text = f"recovered {won} of {worlds} worlds in every seed"
    return f"{text} (failed in {failed})" if failed else text
