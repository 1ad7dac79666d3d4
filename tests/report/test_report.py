"""The report: artefacts found by their files, sections with findings, tables and figures."""

from __future__ import annotations

import re
import shutil
from html import unescape
from pathlib import Path

import pandas as pd
import pytest

from modalens.cli import main
from modalens.report import build_report, collect
from modalens.report.blocks import format_value
from modalens.report.reading import (
    describe_ablation,
    describe_agreement,
    describe_attribution,
    headline_block,
)


def _summary(
    rows: list[tuple[str, str, str, float]], n: int = 30, tiers: list[int] | None = None
) -> pd.DataFrame:
    """A summary.csv-like frame from (level, strategy, group, mean) rows of ``n`` samples;
    shares and ranks per block computed as attribution's summarize_scores does; tiers as given (in
    row order), else every group its own tier (all separated)."""
    frame = pd.DataFrame(rows, columns=["level", "strategy", "group", "mean"])
    frame.insert(0, "method", "occlusion")
    frame.insert(2, "distance", "euclidean")
    frame["n"] = n
    for c in ("median", "std", "ci_low", "ci_high"):
        frame[c] = frame["mean"]
    block = frame.groupby(["level", "strategy"])["mean"]
    frame["share"] = frame["mean"] / block.transform("sum")
    frame["rank"] = block.rank(ascending=False, method="min").astype(int)
    frame["tier"] = frame["rank"] if tiers is None else tiers
    return frame


def test_reading_names_top_modality_and_level_disagreement() -> None:
    summary = _summary(
        [
            ("output", "zeros", "s2", 6.0),
            ("output", "zeros", "viirs", 1.0),
            ("output", "zeros", "s1", 3.0),
            ("embedding", "zeros", "s2", 2.0),
            ("embedding", "zeros", "viirs", 9.0),
            ("embedding", "zeros", "s1", 1.0),
        ]
    )
    assert headline_block(summary) == ("occlusion", "output", "euclidean", "zeros")
    lines = describe_attribution(summary)
    # first which score to trust, with the paper's embedding level where it ranks otherwise
    assert lines[0].startswith("Trust the output level with the zeros fill")
    paper = "The paper's embedding level ranks otherwise (VIIRS night lights first, 75 %)"
    assert paper in lines[0]
    assert lines[1].startswith("Sentinel-2 carries most of the influence: 60 % at output level")
    assert "Sentinel-2 > Sentinel-1 > VIIRS night lights" in lines[1]
    assert any(
        "disagree on VIIRS night lights" in line and "zeros: 1 vs 3" in line for line in lines
    )


def test_reading_prefers_in_range_fill_and_reports_agreeing_levels() -> None:
    summary = _summary(
        [
            ("output", "ones", "s1", 5.0),
            ("output", "ones", "s2", 1.0),
            ("output", "mean", "s2", 4.0),
            ("output", "mean", "s1", 1.0),
        ]
    )
    assert headline_block(summary)[3] == "mean"
    lines = describe_attribution(summary)
    assert lines[0].startswith("Trust the output level with the mean fill")
    assert "embedding level" not in lines[0]  # not attributed: nothing to contrast
    assert lines[1].startswith("Sentinel-2 carries most")
    assert any("fills disagree on the most influential modality" in line for line in lines)


ROWS = [
    ("output", "mean", "s2", 4.0),
    ("output", "mean", "s1", 3.0),
    ("output", "mean", "viirs", 3.0),
]


def test_reading_states_the_order_with_its_ties_and_words_match_shares() -> None:
    # 40 % is the largest share, not "most"; s1 and viirs cannot be separated
    # (lines[0] says which score to trust, the headline follows)
    lines = describe_attribution(_summary(ROWS, tiers=[1, 2, 2]))
    assert lines[0].startswith("Trust the ")
    assert lines[1].startswith(
        "Sentinel-2 carries the largest share of the influence: 40 % at output level"
    )
    assert (
        "the order is Sentinel-2 > Sentinel-1 ≈ VIIRS night lights (>: bootstrap P ≥ 0.95"
        in (lines[1])
    )
    assert "most of the influence" not in lines[1] and "Only" not in lines[1]
    # a tie at the top is named
    tied = describe_attribution(_summary(ROWS, tiers=[1, 1, 2]))[1]
    assert "40 % at output level" in tied and "cannot separate it from Sentinel-1;" in tied
    assert "Sentinel-2 ≈ Sentinel-1 > VIIRS night lights" in tied
    # above 50 %: "most"; exactly 50 % is not above
    most = [("output", "mean", "s2", 6.0), ("output", "mean", "s1", 4.0)]
    assert (
        "Sentinel-2 carries most of the influence: 60 %" in describe_attribution(_summary(most))[1]
    )
    half = [("output", "mean", "s2", 5.0), ("output", "mean", "s1", 5.0)]
    assert (
        "carries the largest share of the influence: 50 %"
        in describe_attribution(_summary(half, tiers=[1, 1]))[1]
    )


def test_reading_from_few_samples_says_so() -> None:
    # fewer than 10: the caveat instead of a finding, no order with > or ≈
    few = describe_attribution(_summary(ROWS, n=6, tiers=[1, 2, 2]))[1]
    assert few.startswith(
        "Only 6 samples: too few for a finding, at least 10 are needed. By mean alone, "
        "Sentinel-2 carries the largest share"
    )
    assert few.endswith("in the order of the means: Sentinel-2, Sentinel-1, VIIRS night lights.")
    assert ">" not in few and "≈" not in few
    # 10 to 19: the order, with a caveat
    some = describe_attribution(_summary(ROWS, n=15, tiers=[1, 2, 2]))[1]
    assert "Sentinel-2 > Sentinel-1 ≈ VIIRS night lights" in some
    assert some.endswith(
        "Only 15 samples: read with care, intervals from fewer than 20 samples are rough."
    )
    # 20 and more: no caveat
    assert "Only" not in describe_attribution(_summary(ROWS, n=20, tiers=[1, 2, 2]))[1]
    # a summary.csv of an earlier version (no tier column): no order claimed
    old = describe_attribution(_summary(ROWS).drop(columns="tier"))[1]
    assert (
        "by mean the order is Sentinel-2, Sentinel-1, VIIRS night lights (this summary has no tiers"
        in old
    )


def test_explanation_correlation_from_few_samples_is_not_a_finding() -> None:
    from modalens.multitask import describe_explanation

    def tables(n: int) -> dict[str, pd.DataFrame]:
        corr = pd.DataFrame(
            {
                "auxiliary": ["s1"],
                "pearson": [0.92],
                "pearson_low": [0.92],
                "pearson_high": [1.0],
                "spearman": [1.0],
                "spearman_low": [1.0],
                "spearman_high": [1.0],
                "n": [n],
            }
        )
        auroc = pd.DataFrame(
            {
                "auxiliary": ["s1"],
                "auroc": [1.0],
                "random_low": [0.0],
                "random_high": [0.9],
                "n_worst": [1],
            }
        )
        return {"correlation": corr, "auroc": auroc}

    three = describe_explanation(tables(3))
    assert three == [
        "The main-task error against the Sentinel-1 reconstruction error: only 3 samples: too "
        "few for a finding, at least 10 are needed; the correlation is in the table, not read "
        "here.",
        "A high Sentinel-1 error as a flag of the worst main errors: only 3 samples: too few for "
        "a finding, at least 10 are needed; the AUROC is in the table, not read here.",
    ]
    assert not any("Pearson r = 0.92" in line for line in three)
    fifteen = describe_explanation(tables(15))
    assert "Pearson r = 0.92 [0.92, 1.00]" in fifteen[0]
    assert all(
        line.endswith(
            "Only 15 samples: read with care, intervals from fewer than 20 samples are rough."
        )
        for line in fifteen
    )
    assert not any("Only" in line for line in describe_explanation(tables(40)))


def test_ablation_reading() -> None:
    table = pd.DataFrame(
        {
            "setting": ["all", "single-a", "single-b", "leaveout-a", "leaveout-b"],
            "kind": ["all", "single", "single", "leave_one_out", "leave_one_out"],
            "modality": [None, "a", "b", "a", "b"],
            "seed": [0] * 5,
            "mae": [0.10, 0.12, 0.30, 0.20, 0.09],
            "epochs": [2] * 5,
        }
    )
    lines = describe_ablation(table)
    assert lines[0] == "All modalities: MAE 0.1."
    assert "Best single modality: a (MAE 0.12, +20 % against all)." in lines
    assert "Leaving out a hurts most (MAE 0.2, +100 %)." in lines
    assert any(line.startswith("Leaving out b (-10 %) does not worsen MAE") for line in lines)


def _agreement_table(n_modalities: int, n_samples: int) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "deviation": ["single", "single", "leave_one_out", "leave_one_out"],
            "metric": ["mae"] * 4,
            "headline": ["mae"] * 4,
            "method": ["occlusion"] * 4,
            "level": ["embedding", "output", "embedding", "output"],
            "distance": ["euclidean"] * 4,
            "strategy": ["zeros"] * 4,
            "n_modalities": [n_modalities] * 4,
            "n_samples": [n_samples] * 4,
            "spearman": [-0.4, -0.8, 0.2, 0.8],
            "spearman_low": [-1.0, -1.0, -0.4, 0.6],
            "spearman_high": [0.2, -0.6, 0.6, 1.0],
            "pairs_alike": [2, 1, 3, 5],
            "pairs": [n_modalities * (n_modalities - 1) // 2] * 4,
        }
    )


def test_agreement_reading_says_what_each_deviation_measures() -> None:
    lines = describe_agreement(_agreement_table(12, 40))
    assert lines[0].startswith(
        "Leave-one-out deviations measure what the model loses without each modality, given "
        "the others (MAE; negative where it does better without it). Closest to them: the "
        "influence at output level with the zeros fill (Spearman ρ = 0.80, bootstrap interval "
        "0.60 to 1.00 over 40 test samples); the embedding level reaches at most ρ = 0.20."
    )
    assert lines[1].startswith(
        "Single-modality deviations measure how far a model trained on each modality alone "
        "falls short of all modalities: how well each modality alone predicts the target, not "
        "what the full model relies on. Closest to them: the influence at embedding level"
    )
    assert "Every correlation with the single-modality deviations is negative" in lines[2]
    assert not any("agrees best" in line or "too few" in line for line in lines)


def test_agreement_reading_of_few_modalities_and_samples_states_no_finding() -> None:
    lines = describe_agreement(_agreement_table(4, 6))
    assert (
        "Closest to them: the influence at output level with the zeros fill (5 of the 6 "
        "modality pairs ordered alike; Spearman ρ = 0.80 over 4 modalities: too few for a "
        "finding; 6 test samples: too few for an interval)"
    ) in lines[0]
    assert not any("bootstrap interval" in line for line in lines)


def test_agreement_reading_names_a_substitute_metric_and_negative_importance() -> None:
    table = _agreement_table(4, 40).assign(metric="accuracy", headline="iou_positive")
    values = pd.DataFrame(
        {
            "deviation": ["leave_one_out"] * 2,
            "metric": ["accuracy"] * 2,
            "method": ["occlusion"] * 2,
            "level": ["output"] * 2,
            "distance": ["euclidean"] * 2,
            "strategy": ["zeros"] * 2,
            "modality": ["s1", "s2"],
            "deviation_value": [-0.02, 0.1],
        }
    )
    lines = describe_agreement(table, values)
    assert lines[0] == "Deviations in accuracy, not the task's headline metric iou_positive."
    assert lines[-1] == (
        "Retrained without Sentinel-1 (accuracy 0.02 higher), the model does better than with "
        "every modality: a negative leave-one-out importance."
    )


def test_format_value() -> None:
    assert format_value(float("nan")) == "–"
    assert format_value(3.0) == "3"
    assert format_value(0.12345) == "0.123"
    assert format_value(123456) == "123,456"
    assert format_value(True) == "yes"


def test_report_of_a_run_and_its_attribution(results: Path, tmp_path: Path) -> None:
    folder = tmp_path / "copy"
    shutil.copytree(results, folder, symlinks=True)
    arts = collect(folder)
    assert arts.kinds() == ["run", "attribution"]
    path = build_report(folder)
    assert path == folder / "report.html"
    html = path.read_text()
    # every figure embedded, none linked
    images = re.findall(r'<img src="([^"]+)"', html)
    assert len(images) == 1 and images[0].startswith("data:image/png;base64,")
    assert "Test MAE" in html
    # metrics, dataset, summary, pairwise probabilities, versions
    assert html.count('<table class="sortable">') == 5
    summary = pd.read_csv(folder / "attribution" / "summary.csv")
    # the tiny run's test split is too small for a finding, and the reading says so first
    n = int(summary["n"].max())
    assert n < 10 and f"Only {n} sample" in html and "too few for a finding" in html
    assert '<th scope="col">tier</th>' in html and "P(a &gt; b)" in html
    ranked = summary[summary["group"] != "ALL"]
    body = html.split('id="attribution')[1]
    assert body.count("<tr>") >= len(ranked)  # every ranked summary row is in the table
    assert "http://" not in html and "https://" not in html  # opens offline


def test_report_cli_and_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["report", str(tmp_path / "missing")]) == 2
    assert "report folder does not exist" in capsys.readouterr().err
    empty = tmp_path / "empty"
    empty.mkdir()
    assert main(["report", str(empty), "--out", str(tmp_path / "r.html")]) == 0
    assert "Nothing to read yet" in (tmp_path / "r.html").read_text()


def test_runs_of_an_ablation_are_not_separate_runs(tmp_path: Path) -> None:
    abl = tmp_path / "abl"
    run = abl / "runs" / "all-seed0"
    run.mkdir(parents=True)
    (run / "config.yaml").write_text("name: x\n")
    (run / "metrics.csv").write_text("epoch\n0\n")
    pd.DataFrame({"setting": ["all"], "kind": ["all"], "mae": [0.1]}).to_csv(
        abl / "table1.csv", index=False
    )
    arts = collect(tmp_path)
    assert arts.kinds() == ["ablation"]
    assert arts["ablation"] == [abl.resolve()]


STUDIES = Path(__file__).parent / "fixtures" / "studies"


def test_every_study_becomes_a_section_with_findings_and_tables(tmp_path: Path) -> None:
    """Artefacts as the commands write them (copied from real runs of strategies, stratify,
    ablate, agreement, prune, bench faithfulness, mtl compare and views) each give a section."""
    folder = tmp_path / "studies"
    shutil.copytree(STUDIES, folder)
    arts = collect(folder)
    assert arts.kinds() == [
        "attribution",
        "strategies",
        "views",
        "strata",
        "ablation",
        "agreement",
        "pruning",
        "faithfulness",
        "mtl_compare",
        "mtl_explain",
    ]
    html = build_report(folder).read_text()
    text = unescape(html)
    for kind in arts.kinds():
        assert f'<section id="{kind}-' in html, kind
    for heading in (
        "Strategies and fills",
        "Sample views",
        "Strata",
        "Table I",
        "Agreement",
        "Pruning",
        "Faithfulness",
        "Multitask comparison",
        "Multitask explanation",
    ):
        assert f"<h2>{heading}: " in html, heading
    # findings read the tables (numbers from the copied CSVs)
    assert "Kendall's W = 0.92" in text
    assert "Leaving out Sentinel-1 hurts most (MAE 0.136, +86 %)" in text
    assert "p = 0.00049" in text
    # six samples: the caveat comes first, and a 40 % share is "the largest", not "most"
    assert (
        "Only 6 samples: too few for a finding, at least 10 are needed. By mean alone, "
        "Sentinel-2 carries the largest share of the influence: 40 % at output level with the "
        "mean fill" in text
    )
    assert "carries most of the influence" not in text
    # one embedded image: the only view PNG that exists (a missing one is skipped, not broken)
    assert html.count("<img ") == 1
    # the fill sanity rows that are flagged are highlighted
    fill = pd.read_csv(folder / "attribution" / "fill_sanity.csv")
    assert html.count('<tr class="flagged">') == int(fill["flagged"].sum())
