"""Report sections of the validation studies: Table I, agreement, strategies and fills,
pruning, the faithfulness benchmark and the multitask comparison.

Each is one builder registered with :func:`~.sections.register_section`; importing this module
registers them (:mod:`.build` does).
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from ..attribution.aggregation import BLOCK
from ..multitask.explain import describe_explanation
from ..plotting import label
from ..validation.correlation import spearman
from ..validation.faithfulness_scores import (
    TABLE_COLUMNS,
    across_worlds,
    describe_faithfulness,
    method_label,
)
from ..validation.fills import FILL_COLUMNS
from ..validation.pruning import describe_pruning
from ..validation.strategies import describe_strategies
from .blocks import Section, table_from_frame
from .collect import Artefacts
from .reading import describe_ablation, describe_agreement, headline_block
from .sections import figures_of, register_section


@register_section("strategies", "Strategies and fills")
def strategies_section(sec: Section, folder: Path, arts: Artefacts) -> Section:
    """Strategies compared (Kendall's W per level) and each fill checked against the data."""
    table = pd.read_csv(folder / "strategies.csv")
    concordance = pd.read_csv(folder / "concordance.csv")
    fill = pd.read_csv(folder / "fill_sanity.csv")
    sec.intro = (
        "Do the occlusion strategies agree on the ranking (Kendall's W: 1 = the same ranking "
        "from every fill, 0 = no agreement), and does each fill stay inside the values the "
        "model saw in training? A fill outside the train range (or, for land cover, a value "
        "that is a real class) asks the model something it never saw and can inflate a "
        "modality it barely uses."
    )
    sec.findings = describe_strategies(table, concordance, fill)
    sec.figures = figures_of(
        folder,
        [
            (
                "strategies.png",
                "Influence per modality and fill; hatched: the fill leaves the train range",
            )
        ],
        arts,
    )
    sec.tables.append(
        table_from_frame(
            concordance,
            "Rank concordance of the strategies (concordance.csv)",
            source=arts.relative(folder / "concordance.csv"),
        )
    )
    shown = fill.copy()
    for c in ("outside_share", "below_share", "above_share", "class_code_share"):
        shown[c] = shown[c] * 100
    shown["group"] = shown["group"].map(label)
    sec.tables.append(
        table_from_frame(
            shown,
            "Fill sanity: share of filled values outside the train range, in % "
            "(fill_sanity.csv); flagged rows are highlighted",
            [c for c in FILL_COLUMNS if c != "threshold"],
            {
                "group": "modality",
                "outside_share": "outside (%)",
                "below_share": "below (%)",
                "above_share": "above (%)",
                "class_code_share": "real class codes (%)",
            },
            arts.relative(folder / "fill_sanity.csv"),
        )
    )
    return sec


@register_section("ablation", "Table I")
def ablation_section(sec: Section, folder: Path, arts: Artefacts) -> Section:
    """Table I: all, single-modality and leave-one-out runs."""
    table = pd.read_csv(folder / "table1.csv")
    sec.intro = (
        "The paper's validation: the model retrained with all modalities, with each modality "
        "alone and with each one left out, same seed and schedule, tested on the test split."
    )
    sec.findings = describe_ablation(table)
    drop = [c for c in ("run", "label", "n_seeds") if c in table.columns]
    sec.tables.append(
        table_from_frame(
            table.drop(columns=drop),
            "Table I (table1.csv): test metrics, training seconds per epoch, inference seconds "
            "per sample, parameters",
            source=arts.relative(folder / "table1.csv"),
        )
    )
    return sec


@register_section("agreement", "Agreement")
def agreement_section(sec: Section, folder: Path, arts: Artefacts) -> Section:
    """Rank agreement of the performance deviations with every influence variant."""
    table = pd.read_csv(folder / "agreement.csv")
    values_file = folder / "agreement_values.csv"
    values = pd.read_csv(values_file) if values_file.is_file() else None
    sec.intro = (
        "Per modality, how much worse each retrained model is than the all-modality model "
        "(signed: negative where it does better), against the dataset-level influence, as rank "
        "correlations with bootstrap intervals over test samples. Leave-one-out runs show what "
        "the model loses without a modality given the others; single-modality runs show how "
        "well each modality alone predicts the target."
    )
    sec.findings = describe_agreement(table, values)
    sec.tables.append(
        table_from_frame(
            table,
            "Rank agreement (agreement.csv)",
            [
                "deviation",
                "metric",
                "headline",
                "level",
                "distance",
                "strategy",
                "n_samples",
                "spearman",
                "spearman_low",
                "spearman_high",
                "kendall",
                "pearson",
                "pairs_alike",
                "pairs",
            ],
            source=arts.relative(folder / "agreement.csv"),
        )
    )
    sec.figures = figures_of(
        folder, [("agreement.png", "Normalised deviation against normalised influence")], arts
    )
    # the influence the agreement used: the all-modality runs' attributions
    # (RUN/attribution/<split>/, or RUN/attribution/ when given as --out)
    for png in sorted(folder.glob("runs/all-seed*/attribution/**/influence.png")):
        run = png.relative_to(folder).parts[1]
        sec.figures += figures_of(
            png.parent, [("influence.png", f"Influence of the all-modality run ({run})")], arts
        )
    return sec


@register_section("pruning", "Pruning")
def pruning_section(sec: Section, folder: Path, arts: Artefacts) -> Section:
    """Retraining without the k least influential modalities."""
    table = pd.read_csv(folder / "pruning.csv")
    ranked = table["ranked_by"].iloc[0] if "ranked_by" in table and len(table) else "?"
    sec.intro = (
        f"The modalities ranked by {ranked} and the model retrained without the k least "
        "influential ones: metric change, training and inference time against all modalities."
    )
    sec.findings = describe_pruning(table)
    sec.figures = figures_of(folder, [("pruning.png", "Metric and cost against k")], arts)
    shown = table.drop(columns=[c for c in ("runs", "ranked_by") if c in table.columns])
    sec.tables.append(
        table_from_frame(
            shown, "Pruning (pruning.csv)", source=arts.relative(folder / "pruning.csv")
        )
    )
    return sec


@register_section("faithfulness", "Faithfulness")
def faithfulness_section(sec: Section, folder: Path, arts: Artefacts) -> Section:
    """Every method against the known truth of several worlds (decoys, a correlated but
    non-causal modality, an interaction, mixed scales, real rasters)."""
    table = pd.read_csv(folder / "faithfulness.csv")
    if "world" not in table.columns:  # a benchmark folder from before the worlds
        table.insert(0, "world", "planted")
    sec.intro = (
        "Worlds whose answer is known: does each method rank the modalities by their realised "
        "effect on the target, within the truth's sampling error, and keep the decoy and "
        "non-causal modalities under 5 %? Seeds recovered per world, Spearman ρ and the "
        "largest null-modality share."
    )
    sec.findings = describe_faithfulness(table)
    sec.figures = figures_of(
        folder, [("faithfulness.png", "Seeds recovered per world and null-modality share")], arts
    )
    overall = across_worlds(table)
    overall.insert(0, "name", [method_label(r) for _, r in overall.iterrows()])
    overall["decoy_share_max"] = overall["decoy_share_max"] * 100
    sec.tables.append(
        table_from_frame(
            overall,
            "Across worlds: worlds recovered in every seed (faithfulness.csv)",
            [
                "name",
                "worlds_recovered",
                "worlds",
                "seeds_recovered",
                "seeds",
                "failed_in",
                "decoy_share_max",
            ],
            {"name": "method", "decoy_share_max": "largest null share (%)"},
            arts.relative(folder / "faithfulness.csv"),
        )
    )
    shown = table.copy()
    shown.insert(1, "name", [method_label(r) for _, r in table.iterrows()])
    for c in ("decoy_share_mean", "decoy_share_std"):
        shown[c] = shown[c] * 100
    sec.tables.append(
        table_from_frame(
            shown,
            "Faithfulness per world and method (faithfulness.csv); null share in %",
            ["world", "name", *(c for c in TABLE_COLUMNS if c not in (*BLOCK, "world"))],
            {
                "name": "method",
                "spearman_realised_mean": "ρ realised",
                "spearman_realised_std": "± std",
                "spearman_loo_mean": "ρ leave-one-out",
                "spearman_loo_std": "± std ",
                "decoy_share_mean": "null (%)",
                "decoy_share_std": "± std  ",
            },
            arts.relative(folder / "faithfulness.csv"),
        )
    )
    truth = folder / "truth.csv"
    if truth.is_file():
        raw = pd.read_csv(truth)
        keys = [k for k in ("world", "modality") if k in raw.columns]
        cols = [c for c in ("nominal", "realised", "realised_se") if c in raw.columns]
        t = raw.groupby(keys, sort=False)[cols].mean().reset_index()
        t["modality"] = t["modality"].map(label)
        sec.tables.append(
            table_from_frame(
                t,
                "The truth: realised importance shares over the attributed samples and their "
                "standard errors (mean over seeds)",
                source=arts.relative(truth),
            )
        )
    return sec


@register_section("mtl_compare", "Multitask comparison")
def mtl_compare_section(sec: Section, folder: Path, arts: Artefacts) -> Section:
    """The multitask model against the unimodal and input-fusion baselines."""
    table = pd.read_csv(folder / "mtl_compare.csv")
    sec.intro = (
        "Same seed and schedule: the model on the input modalities alone, with the auxiliary "
        "modalities as inputs (fusion), and with them as auxiliary targets (multitask)."
    )
    for _, r in table.iterrows():
        sec.findings.append(
            f"{r['label']}: {str(r['metric']).upper()} {r['mean']:.3g}"
            + (f" ± {r['std']:.2g}" if pd.notna(r.get("std")) else "")
            + f" over {int(r['n_seeds'])} seed(s), {int(r['parameters_main']):,} parameters "
            "at deployment."
        )
    tests = folder / "mtl_tests.csv"
    if tests.is_file():
        paired = pd.read_csv(tests)
        for _, r in paired.iterrows():
            verdict = "differs from" if r["p_value"] < 0.05 else "does not differ from"
            sec.findings.append(
                f"The multitask model {verdict} the {r['baseline']} baseline (paired Wilcoxon "
                f"over {int(r['n_pairs'])} sample×seed pairs, p = {r['p_value']:.2g})."
            )
        sec.tables.append(
            table_from_frame(paired, "Paired tests (mtl_tests.csv)", source=arts.relative(tests))
        )
    sec.tables.insert(
        0,
        table_from_frame(
            table.drop(columns=[c for c in ("values",) if c in table.columns]),
            "Comparison (mtl_compare.csv)",
            source=arts.relative(folder / "mtl_compare.csv"),
        ),
    )
    return sec


@register_section("mtl_explain", "Multitask explanation")
def mtl_explain_section(sec: Section, folder: Path, arts: Artefacts) -> Section:
    """Main-task errors against the auxiliary heads' errors, and what each head relies on."""
    sec.intro = (
        "Do the auxiliary reconstructions fail where the main task fails? Per sample and per "
        "pixel correlations of the errors, how well a high auxiliary error flags the worst "
        "decile of main-task errors (AUROC; 0.5 is a random flag), and which inputs each head "
        "relies on (occlusion of each input on each head)."
    )
    sec.findings = describe_explanation(folder)
    sec.figures = figures_of(
        folder,
        [
            ("mtl_scatter.png", "Main-task error against each auxiliary error, per sample"),
            ("mtl_pixel_correlation.png", "Pixel-wise correlation of the error maps"),
            ("mtl_sensitivity.png", "Occlusion sensitivity of each head to each input"),
        ],
        arts,
    )
    for name, caption in (
        ("mtl_correlation.csv", "Error correlation across samples"),
        ("mtl_auroc.csv", "Worst-decile AUROC per auxiliary head"),
        ("mtl_sensitivity.csv", "Sensitivity of each head to each input"),
    ):
        if (folder / name).is_file():
            sec.tables.append(
                table_from_frame(
                    pd.read_csv(folder / name),
                    f"{caption} ({name})",
                    source=arts.relative(folder / name),
                )
            )
    return sec


@register_section("subsets", "What each modality is worth")
def subsets_section(sec: Section, folder: Path, arts: Artefacts) -> Section:
    """``modalens subsets``: the metric of every modality subset of one model, performance
    Shapley values of the headline metric, the metric with modalities missing, and how the
    Shapley ranking agrees with occlusion influence of the same run."""
    shap = pd.read_csv(folder / "performance_shapley.csv")
    metric = str(shap["metric"].iloc[0])
    sec.intro = (
        "One model evaluated on every subset of its input modalities (the absent ones filled): "
        f"performance Shapley values say how much of the model's {metric} each modality brings "
        "(positive: the modality improves it; they sum to the gain of all modalities over none). "
        "Meaningful for a model trained with modality dropout (train.modality_dropout)."
    )
    order = shap.sort_values("shapley", ascending=False)
    ranked = zip(order["modality"], order["shapley"], strict=True)
    sec.findings = [
        f"By performance Shapley of {metric}: "
        + " > ".join(f"{label(m)} ({v:.3g})" for m, v in ranked)
        + "."
    ]
    agree = _influence_agreement(shap, folder.parent / "attribution")
    if agree:
        sec.findings.append(agree)
    if "note" in shap.columns:  # one sentence, not a column repeated on every row
        sec.findings.append(f"How to read it: {shap['note'].iloc[0]}.")
    for name, caption in (
        ("performance_shapley.csv", f"Performance Shapley values of {metric} with intervals"),
        ("missing.csv", "The metric with each modality, or pair, missing"),
        ("subsets.csv", "Every subset's pooled test metrics"),
    ):
        if (folder / name).is_file():
            table = pd.read_csv(folder / name).drop(columns=["note"], errors="ignore")
            sec.tables.append(
                table_from_frame(table, f"{caption} ({name})", source=arts.relative(folder / name))
            )
    return sec


def _influence_agreement(shap: pd.DataFrame, attributions: Path) -> str | None:
    """A sentence on the Spearman correlation between performance Shapley and the occlusion
    influence of the run's first attribution with a ranked headline block (None: none)."""
    for summary in sorted(attributions.glob("*/summary.csv")):
        table = pd.read_csv(summary)
        block = headline_block(table)
        if block is None:
            continue
        rows = table[(table[list(BLOCK)].astype(str) == [str(b) for b in block]).all(axis=1)]
        mean = dict(zip(rows["group"].astype(str), rows["mean"], strict=False))
        common = [m for m in shap["modality"].astype(str) if m in mean]
        if len(common) < 3:
            return None
        values = shap.set_index(shap["modality"].astype(str))["shapley"]
        rho = spearman([values[m] for m in common], [mean[m] for m in common])
        return (
            f"Spearman ρ = {rho:.2f} between performance Shapley and occlusion influence "
            f"({', '.join(map(str, block))}; {summary.parent.name}) over {len(common)} modalities."
        )
    return None
