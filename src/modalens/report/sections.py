"""One report section per artefact kind, each built from the files its command wrote.

:data:`BUILDERS` maps an artefact kind of :mod:`.collect` to the function that turns one
folder of that kind into a :class:`~.blocks.Section`: its plain-language findings, tables and
embedded figures. Adding an artefact to the report is one decorated function here.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pandas as pd

from ..attribution.groups import ALL
from ..data.checks import summarize as summarize_data
from ..data.specfile import load_spec
from ..errors import ModalensError
from ..plotting import label
from ..validation.strategies import describe_strategies
from .blocks import Section, figure, table_from_frame
from .collect import Artefacts
from .reading import describe_ablation, describe_agreement, describe_attribution, headline_block

Builder = Callable[[Path, Artefacts], Section]
BUILDERS: dict[str, Builder] = {}
#: section titles per kind (in report order, which is the order of collect.MARKERS)
TITLES: dict[str, str] = {}


def register_section(kind: str, title: str) -> Callable[[Builder], Builder]:
    """Decorator: ``fn(folder, artefacts) -> Section`` builds the sections of ``kind``."""

    def wrap(fn: Builder) -> Builder:
        BUILDERS[kind] = fn
        TITLES[kind] = title
        return fn

    return wrap


def _figures(folder: Path, names: list[tuple[str, str]], arts: Artefacts) -> list:
    return [
        figure(folder / name, caption, arts.relative(folder / name))
        for name, caption in names
        if (folder / name).is_file()
    ]


def _where(folder: Path, arts: Artefacts) -> str:
    """How a section title names its folder: relative to the report root, or the root's name."""
    rel = arts.relative(folder)
    return arts.root.name if rel == "." else rel


def _section_id(kind: str, folder: Path, arts: Artefacts) -> str:
    rel = arts.relative(folder)
    return kind if rel == "." else f"{kind}-" + "".join(c if c.isalnum() else "-" for c in rel)


@register_section("dataset", "Synthetic dataset")
def dataset_section(folder: Path, arts: Artefacts) -> Section:
    """The generator's metadata: samples, split and the planted (and realised) importances."""
    meta = json.loads((folder / "metadata.json").read_text())
    sec = Section(_section_id("dataset", folder, arts), f"Dataset: {_where(folder, arts)}")
    split = meta.get("split", {})
    sec.intro = (
        f"Synthetic data from {meta.get('generator', '?')} (seed {meta.get('seed')}): "
        f"{meta.get('samples')} scenes of {meta.get('size')}×{meta.get('size')} px, "
        + ", ".join(f"{k} {v}" for k, v in split.items())
        + "."
    )
    imp = meta.get("importance", {})
    if imp:
        frame = pd.DataFrame({"modality": [label(k) for k in imp], "planted": list(imp.values())})
        realised = meta.get("realised_importance")
        numeric = isinstance(realised, dict) and all(
            isinstance(v, int | float) for v in realised.values()
        )
        if numeric:
            frame["realised"] = [realised.get(k) for k in imp]
        sec.tables.append(
            table_from_frame(frame, "Planted importances (the truth the attribution should find)")
        )
        sec.findings.append(
            "Planted ranking: " + " > ".join(label(k) for k in sorted(imp, key=lambda k: -imp[k]))
        )
    return sec


@register_section("run", "Trained runs")
def run_section(folder: Path, arts: Artefacts) -> Section:
    """A run folder: its test metrics, dataset summary and config."""
    sec = Section(_section_id("run", folder, arts), f"Run: {_where(folder, arts)}")
    test = folder / "metrics_test.csv"
    if test.is_file():
        metrics = pd.read_csv(test, dtype={"id": str})
        pooled = metrics[metrics["id"] == "all"].drop(columns=["id"])
        if len(pooled):
            sec.tables.append(table_from_frame(pooled, "Test metrics (pooled over valid pixels)"))
            first = [c for c in pooled.columns if c not in ("n", "loss")]
            if first:
                sec.findings.append(
                    "Test "
                    + ", ".join(f"{c.upper()} {pooled[c].iloc[0]:.3g}" for c in first)
                    + f" on {len(metrics) - 1} test samples."
                )
    spec_file = folder / "dataset.yaml"
    if spec_file.is_file():
        try:
            info = summarize_data(load_spec(spec_file))
        except ModalensError as exc:
            sec.findings.append(f"Dataset spec could not be read: {exc}")
        else:
            rows = pd.DataFrame(info["modalities"])
            rows["bands"] = rows["bands"].map(", ".join)
            sec.tables.append(
                table_from_frame(
                    rows,
                    f"Dataset {info['dataset']}: "
                    + ", ".join(f"{k} {v}" for k, v in info["samples"].items())
                    + f" samples; target {info['target']['kind']}",
                )
            )
    config = folder / "config.yaml"
    sec.texts.append(("Run config (config.yaml)", config.read_text()))
    return sec


@register_section("attribution", "Modality influence (occlusion)")
def attribution_section(folder: Path, arts: Artefacts) -> Section:
    """An attribution folder: the reading, the summary table and the influence figure."""
    summary = pd.read_csv(folder / "summary.csv")
    sec = Section(
        _section_id("attribution", folder, arts), f"Modality influence: {_where(folder, arts)}"
    )
    sec.intro = (
        "Each modality is occluded (its channels replaced by a fill) and the change of the "
        "model's embedding (the paper's score), output or loss is measured per test sample; "
        "the table gives the dataset mean with a bootstrap 95 % interval and each modality's "
        "share of the summed influence."
    )
    sec.findings = describe_attribution(summary)
    block = headline_block(summary)
    shown = summary[summary["group"] != ALL].copy()
    shown["share"] = shown["share"] * 100
    if block is not None:
        key = pd.Series(block, index=["method", "level", "distance", "strategy"])
        first = (shown[key.index] == key).all(axis=1)
        shown = pd.concat([shown[first], shown[~first]])
    shown["group"] = shown["group"].map(label)
    sec.tables.append(
        table_from_frame(
            shown,
            "Dataset-level influence (summary.csv); share in %",
            [
                "method",
                "level",
                "distance",
                "strategy",
                "group",
                "n",
                "mean",
                "ci_low",
                "ci_high",
                "share",
                "rank",
            ],
            {
                "group": "modality",
                "ci_low": "95 % CI low",
                "ci_high": "95 % CI high",
                "share": "share (%)",
            },
            arts.relative(folder / "summary.csv"),
        )
    )
    sec.figures = _figures(folder, [("influence.png", "Influence per modality and fill")], arts)
    return sec


@register_section("strategies", "Occlusion strategies and fill sanity (Fig. 6)")
def strategies_section(folder: Path, arts: Artefacts) -> Section:
    """Strategies compared (Kendall's W per level) and each fill checked against the data."""
    table = pd.read_csv(folder / "strategies.csv")
    concordance = pd.read_csv(folder / "concordance.csv")
    fill = pd.read_csv(folder / "fill_sanity.csv")
    sec = Section(
        _section_id("strategies", folder, arts), f"Strategies and fills: {_where(folder, arts)}"
    )
    sec.intro = (
        "Do the occlusion strategies agree on the ranking (Kendall's W: 1 = the same ranking "
        "from every fill, 0 = no agreement), and does each fill stay inside the values the "
        "model saw in training? A fill outside the train range (or, for land cover, a value "
        "that is a real class) asks the model something it never saw and can inflate a "
        "modality it barely uses."
    )
    sec.findings = describe_strategies(table, concordance, fill)
    sec.figures = _figures(
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
            [
                "strategy",
                "group",
                "outside_share",
                "below_share",
                "above_share",
                "class_code_share",
                "flagged",
                "n_values",
            ],
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


@register_section("ablation", "Retraining ablation (Table I)")
def ablation_section(folder: Path, arts: Artefacts) -> Section:
    """Table I: all, single-modality and leave-one-out runs."""
    table = pd.read_csv(folder / "table1.csv")
    sec = Section(_section_id("ablation", folder, arts), f"Table I: {_where(folder, arts)}")
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


@register_section("agreement", "Agreement of influence and retraining (Fig. 5)")
def agreement_section(folder: Path, arts: Artefacts) -> Section:
    """Rank agreement of the performance deviations with every influence variant."""
    table = pd.read_csv(folder / "agreement.csv")
    sec = Section(_section_id("agreement", folder, arts), f"Agreement: {_where(folder, arts)}")
    sec.intro = (
        "Per modality, the performance deviation of the retrained models (|all − single| and "
        "|all − leave-one-out|) against the dataset-level influence, as rank correlations "
        "with bootstrap intervals over test samples."
    )
    sec.findings = describe_agreement(table)
    sec.tables.append(
        table_from_frame(
            table,
            "Rank agreement (agreement.csv)",
            [
                "deviation",
                "metric",
                "level",
                "distance",
                "strategy",
                "n_samples",
                "spearman",
                "spearman_low",
                "spearman_high",
                "kendall",
                "pearson",
            ],
            source=arts.relative(folder / "agreement.csv"),
        )
    )
    sec.figures = _figures(
        folder, [("agreement.png", "Normalised deviation against normalised influence")], arts
    )
    # the influence the agreement used: the all-modality runs' attributions
    for attr in sorted(folder.glob("runs/all-seed*/attribution")):
        name = attr.parent.name
        sec.figures += _figures(
            attr, [("influence.png", f"Influence of the all-modality run ({name})")], arts
        )
    return sec


def build_sections(arts: Artefacts) -> list[Section]:
    """Every section of every artefact found, in the order of the artefact kinds."""
    return [
        BUILDERS[kind](folder, arts)
        for kind in arts.kinds()
        if kind in BUILDERS
        for folder in arts[kind]
    ]
