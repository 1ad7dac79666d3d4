"""The figures the README and the docs quote are those of the runs kept beside the docs.

The demo's figures come from the kept demo run in ``docs/benchmarks/demo/`` (what
``modalens demo`` printed and the small tables it wrote; ``benchmarks/keep_demo_run.py`` renews
them), the faithfulness benchmark's from ``docs/benchmarks/faithfulness/``
(tests/test_evidence.py), constants from the code. Benchmark speeds are printed by the scripts
in ``benchmarks/`` that the pages name beside them. A page that quotes a figure differently from
its source fails here; so does a table built from a kept run that no longer matches it.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
DEMO = ROOT / "docs" / "benchmarks" / "demo"
LOG = (DEMO / "demo.log").read_text()
README = (ROOT / "README.md").read_text()
GROUPS = ("s2", "s1", "esa_wc", "viirs")


def _page(name: str) -> str:
    return (ROOT / "docs" / name).read_text()


def _log_line(start: str) -> str:
    return next(line for line in LOG.splitlines() if line.startswith(start))


def strategies_table() -> str:
    """The table of docs/validation.md: each fill's loss-level shares, its first modality at the
    paper's embedding level, and the modalities it fills outside their train range (kept demo
    run: ``strategies.csv``, ``fill_sanity.csv``)."""
    table = pd.read_csv(DEMO / "strategies.csv")
    fills = pd.read_csv(DEMO / "fill_sanity.csv")
    lines = [
        "| strategy | loss level: s2 / s1 / esa_wc / viirs | embedding level: first | "
        "outside the train range |",
        "|---|---|---|---|",
    ]
    for strategy in dict.fromkeys(table["strategy"]):
        rows = table[table["strategy"] == strategy]
        loss = rows[rows["level"] == "loss"].set_index("group")
        shares = " / ".join(f"{100 * loss.loc[g, 'share']:.0f}" for g in GROUPS)
        emb = rows[rows["level"] == "embedding"].sort_values("rank").iloc[0]
        out = fills[(fills["strategy"] == strategy) & fills["flagged"]]
        outside = ", ".join(f"{r.group} {100 * r.outside_share:.0f} %" for r in out.itertuples())
        lines.append(
            f"| {strategy} | {shares} % | {emb['group']} ({100 * emb['share']:.0f} %) | "
            f"{outside or 'none'} |"
        )
    return "\n".join(lines)


def test_demo_metrics_quoted_in_the_readme_are_the_kept_runs() -> None:
    metrics = pd.read_csv(DEMO / "metrics_test.csv").set_index("id").loc["all"]
    assert f"test MAE {metrics['mae']:.4f}, RMSE {metrics['rmse']:.4f}" in README
    assert "test MAE 0.0453, RMSE 0.0607" in README  # the demo's numbers must not move


def test_demo_lines_quoted_in_the_readme_are_printed_by_the_demo() -> None:
    answer = _log_line("default answer (loss level, mean fill):")
    quoted = answer.split(";")[0]
    assert f"`{quoted}`" in README
    agree = _log_line("At loss level the 7 strategies")
    assert f"`{agree}`" in README
    w_emb = float(_log_line("At embedding level").split("W = ")[1].rstrip(").").strip())
    assert f"embedding level W = {w_emb:.2f}" in README


def test_kendall_w_quoted_in_the_docs_is_the_kept_runs() -> None:
    w = pd.read_csv(DEMO / "concordance.csv").set_index("level")["kendall_w"]
    page = _page("validation.md")
    for level in ("loss", "output", "embedding"):
        assert f"{level} level W = {w[level]:.2f}" in page, level
        assert f"W = {w[level]:.2f}" in LOG


def test_strategies_table_is_made_from_the_kept_run() -> None:
    assert strategies_table() in _page("validation.md")


def test_strata_sentences_quoted_are_printed_by_the_demo() -> None:
    page = _page("validation.md")
    start = LOG.index("Stratified by dominant:esa_wc")
    printed = LOG[start:].splitlines()[:2]
    assert all(line in page for line in printed), printed


def test_statistics_quoted_on_the_data_page_are_the_code_and_the_kept_run() -> None:
    from modalens.data.presets.mapinwild import S1_MEAN, S1_STD, VIIRS_MEAN, VIIRS_STD

    page = " ".join(_page("data.md").split())
    assert (
        f"S1 mean {S1_MEAN[0]:.2f}/{S1_MEAN[1]:.2f} dB, VIIRS mean {VIIRS_MEAN:.2f}".replace(
            "-", "−"
        )
        in page
    )
    assert f"stds {S1_STD[0]:.2f}/{S1_STD[1]:.2f} and {VIIRS_STD:.2f}" in page
    stats = json.loads((DEMO / "stats.json").read_text())
    s1, viirs = stats["modalities"]["s1"], stats["modalities"]["viirs"]
    quoted = (
        f"{stats['n_samples']} synthetic train scenes: S1 means "
        f"{s1['mean'][0]:.2f}/{s1['mean'][1]:.2f} dB, stds {s1['std'][0]:.2f}/{s1['std'][1]:.2f}; "
        f"VIIRS mean {viirs['mean'][0]:.2f}, std {viirs['std'][0]:.2f}"
    ).replace("-", "−")
    assert quoted in page


def test_parameter_count_quoted_is_the_models() -> None:
    from modalens.models import UNet, count_parameters

    n = count_parameters(UNet(in_channels=14, out_channels=1, base_width=64, depth=4, head="dense"))
    assert f"**{n:,}**" in _page("training.md")
