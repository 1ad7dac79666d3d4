"""The benchmark figures the library quotes are those of the benchmark run kept in the docs."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from modalens.evidence import BENCHMARK_WORLDS, level_evidence
from modalens.validation.faithfulness_scores import across_worlds, markdown

DOCS = Path(__file__).resolve().parents[1] / "docs" / "benchmarks" / "faithfulness"


def test_quoted_level_evidence_matches_the_kept_benchmark_run() -> None:
    worlds = pd.read_csv(DOCS / "faithfulness_worlds.csv")
    occl = worlds[(worlds["method"] == "occlusion") & (worlds["strategy"] == "mean")]
    for level, (won, total, failed) in BENCHMARK_WORLDS.items():
        row = occl[occl["level"] == level].iloc[0]
        assert (int(row["worlds_recovered"]), int(row["worlds"])) == (won, total)
        assert str(row["failed_in"]) == failed
    loss = "recovered 3 of 5 worlds in every seed (failed in planted, real)"
    assert level_evidence("loss") == loss
    assert level_evidence("nonsense") is None


def test_kept_tables_are_what_the_scoring_code_makes_of_the_kept_seeds() -> None:
    from modalens.validation.faithfulness_scores import summarize_seeds

    seeds = pd.read_csv(DOCS / "faithfulness_seeds.csv")
    table = summarize_seeds(seeds)
    kept = pd.read_csv(DOCS / "faithfulness_worlds.csv")
    got = across_worlds(table)
    assert list(got["worlds_recovered"]) == list(kept["worlds_recovered"])
    text = (DOCS / "faithfulness.md").read_text()
    assert markdown(table).strip().splitlines()[2] in text
    page = (DOCS.parents[1] / "validation.md").read_text()  # "Which score to trust"
    rows = [line for line in page.splitlines() if line.startswith("| ") and "/3 (ρ" in line]
    assert len(rows) >= 5 and all(r in text for r in rows)  # the page's rows are the benchmark's
