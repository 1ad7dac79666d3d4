"""One report section per artefact kind, each built from the files its command wrote
(the runs, attributions, sample views and strata here; the validation studies in
:mod:`.studies`).

:data:`BUILDERS` maps an artefact kind of :mod:`.collect` to the function that turns one
folder of that kind into a :class:`~.blocks.Section`: its plain-language findings, tables and
embedded figures. Adding an artefact to the report is one decorated function here.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pandas as pd

from ..attribution.aggregation import BLOCK
from ..attribution.groups import ALL
from ..attribution.run import stale_note
from ..attribution.strata import STRATA_COLUMNS, describe_strata
from ..data.checks import summarize as summarize_data
from ..data.specfile import load_spec
from ..errors import ModalensError
from ..plotting import label
from ..validation.runs import is_count
from ..validation.sanity import SANITY_COLUMNS, SANITY_FILE, SURVIVES, describe_sanity
from .blocks import Section, Table, figure, table_from_frame
from .collect import Artefacts, Skipped
from .reading import describe_attribution, headline_block

Builder = Callable[[Section, Path, Artefacts], Section]
#: artefact kind -> (heading of its sections, the builder that fills one)
BUILDERS: dict[str, tuple[str, Builder]] = {}


def register_section(kind: str, heading: str) -> Callable[[Builder], Builder]:
    """Decorator: ``fn(section, folder, artefacts) -> Section`` fills the section of one folder
    of ``kind``, which arrives with its id and its title (``"<heading>: <folder>"``)."""

    def wrap(fn: Builder) -> Builder:
        BUILDERS[kind] = (heading, fn)
        return fn

    return wrap


def figures_of(folder: Path, names: list[tuple[str, str]], arts: Artefacts) -> list:
    """Embedded figures for the (file name, caption) pairs that exist in ``folder``."""
    return [
        figure(folder / name, caption, arts.relative(folder / name))
        for name, caption in names
        if (folder / name).is_file()
    ]


def folder_label(folder: Path, arts: Artefacts) -> str:
    """How a section title names its folder: relative to the report root, or the root's name."""
    rel = arts.relative(folder)
    return arts.root.name if rel == "." else rel


def section_id(kind: str, folder: Path, arts: Artefacts) -> str:
    """The HTML id of the section of ``kind`` for ``folder`` (``kind-relative-path``)."""
    rel = arts.relative(folder)
    return kind if rel == "." else f"{kind}-" + "".join(c if c.isalnum() else "-" for c in rel)


@register_section("dataset", "Dataset")
def dataset_section(sec: Section, folder: Path, arts: Artefacts) -> Section:
    """The generator's metadata: samples, split and the planted (and realised) importances."""
    meta = json.loads((folder / "metadata.json").read_text())
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


@register_section("run", "Run")
def run_section(sec: Section, folder: Path, arts: Artefacts) -> Section:
    """A run folder: its test metrics, dataset summary and config (and first, for a run whose
    training did not finish, a note saying so)."""
    if folder in arts.notes:
        sec.findings.append(f"Unfinished: {arts.notes[folder]}.")
    test = folder / "metrics_test.csv"
    if test.is_file():
        metrics = pd.read_csv(test, dtype={"id": str})
        pooled = metrics[metrics["id"] == "all"].drop(columns=["id"])
        if len(pooled):
            shown = pooled[[c for c in pooled.columns if not is_count(c) or c == "n"]]
            sec.tables.append(table_from_frame(shown, "Test metrics (pooled over valid pixels)"))
            first = [c for c in pooled.columns if c != "loss" and not is_count(c)]
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


@register_section("attribution", "Modality influence")
def attribution_section(sec: Section, folder: Path, arts: Artefacts) -> Section:
    """An attribution folder: the reading, the summary table and the influence figure."""
    summary = pd.read_csv(folder / "summary.csv")
    sec.intro = (
        "Each modality is occluded (its channels replaced by a fill) and the change of the "
        "model's embedding (the paper's score), output or loss is measured per test sample; "
        "the table gives the dataset mean with a bootstrap 95 % interval, each modality's "
        "share of the summed influence, its rank by mean and its tier: modalities in one tier "
        "cannot be separated by the data (a new tier needs a bootstrap probability of at least "
        "0.95 that every modality above beats every one below, from at least 10 samples; "
        "pairwise.csv holds the probabilities)."
    )
    sec.findings = describe_attribution(summary)
    if folder in arts.notes:  # made from a run whose training did not finish
        sec.findings.insert(0, f"Unfinished: {arts.notes[folder]}.")
    stale = stale_note(folder)
    if stale is not None:
        sec.findings.insert(0, stale[0].upper() + stale[1:] + ".")
    block = headline_block(summary)
    shown = summary[summary["group"] != ALL].copy()
    shown["share"] = shown["share"] * 100
    if block is not None:
        key = pd.Series(block, index=BLOCK)
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
                "tier",
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
    if block is not None and (folder / "pairwise.csv").is_file():
        sec.tables.append(pairwise_table(folder, block, arts))
    sec.figures = figures_of(folder, [("influence.png", "Influence per modality and fill")], arts)
    if (folder / SANITY_FILE).is_file():
        add_sanity(sec, folder, arts)
    return sec


def pairwise_table(folder: Path, block: tuple, arts: Artefacts) -> Table:
    """The headline block's rows of ``pairwise.csv``, one per pair (the larger mean as ``a``),
    the most clearly separated first."""
    pairs = pd.read_csv(folder / "pairwise.csv")
    key = pd.Series(block, index=BLOCK)
    first = (pairs["mean_diff"] > 0) | (
        (pairs["mean_diff"] == 0) & (pairs["group_a"].astype(str) < pairs["group_b"].astype(str))
    )
    rows = pairs[(pairs[BLOCK].astype(str) == key).all(axis=1) & first]
    rows = rows.sort_values("p_greater", ascending=False, kind="stable").copy()
    for c in ("group_a", "group_b"):
        rows[c] = rows[c].map(label)
    method, level, _distance, strategy = block
    return table_from_frame(
        rows,
        f"Can the data separate two modalities? {label(level)}, {strategy} fill ({method}): "
        "bootstrap probability that a has more influence than b (pairwise.csv)",
        ["group_a", "group_b", "n", "mean_diff", "p_greater"],
        {"group_a": "a", "group_b": "b", "mean_diff": "mean a − b", "p_greater": "P(a > b)"},
        arts.relative(folder / "pairwise.csv"),
    )


def add_sanity(sec: Section, folder: Path, arts: Artefacts) -> None:
    """The model-parameter randomisation check of an attribution (``sanity.csv``): its
    reading (flagged rankings first) and its table."""
    table = pd.read_csv(folder / SANITY_FILE)
    reading = describe_sanity(table)
    sec.findings += sorted(reading, key=lambda text: not text.startswith("Flag"))
    shown = table.assign(modules=table["modules"].fillna("(trained)"))
    sec.tables.append(
        table_from_frame(
            shown,
            "Model-parameter randomisation check (sanity.csv): Spearman rho of each ranking with "
            f"the trained model's; flagged: rho >= {SURVIVES} with every weight re-initialised",
            SANITY_COLUMNS,
            {"rho_samples": "rho per sample (mean)", "p_chance": "chance of rho as high"},
            arts.relative(folder / SANITY_FILE),
        )
    )


@register_section("views", "Sample views")
def views_section(sec: Section, folder: Path, arts: Artefacts) -> Section:
    """Sample views: one figure per chosen or top-k sample (``views/index.csv``)."""
    index = pd.read_csv(folder / "index.csv", dtype={"sample_id": str})
    base = folder.parent  # index paths are relative to the folder that holds views/
    sec.intro = (
        "Per sample: its influence bars beside the modalities, the target and the prediction, "
        "and the per-modality sensitivity maps."
    )
    reasons = index.groupby("sample_id", sort=False)["reason"].apply(lambda r: "; ".join(r))
    for sid, why in reasons.items():
        png = base / index.loc[index["sample_id"] == sid, "png"].iloc[0]
        if png.is_file():
            sec.figures.append(figure(png, f"Sample {sid} ({why})", arts.relative(png)))
    sec.findings.append(f"{len(reasons)} samples shown.")
    return sec


@register_section("strata", "Strata")
def strata_section(sec: Section, folder: Path, arts: Artefacts) -> Section:
    """Influence per stratum (an index column or the dominant class of a modality)."""
    table = pd.read_csv(folder / "stratified.csv", dtype={"stratum": str})
    by = ", ".join(dict.fromkeys(table["by"].astype(str))) if len(table) else "?"
    sec.intro = f"The influence summarised per stratum ({by}); small strata are marked."
    sec.findings = describe_strata(table) if len(table) else ["No strata."]
    sec.figures = figures_of(folder, [("stratified.png", "Share of influence per stratum")], arts)
    shown = table.copy()
    shown["group"] = shown["group"].map(label)
    shown["share"] = shown["share"] * 100
    sec.tables.append(
        table_from_frame(
            shown,
            "Influence per stratum (stratified.csv); share in %",
            [c for c in STRATA_COLUMNS if c not in ("method", "distance")],
            {"group": "modality", "share": "share (%)", "few_samples": "few samples"},
            arts.relative(folder / "stratified.csv"),
        )
    )
    return sec


def build_sections(arts: Artefacts) -> list[Section]:
    """Every section of every artefact found, in the order of the artefact kinds; a folder
    whose files cannot be read is left out and added to ``arts.skipped`` with the reason."""
    sections = []
    for kind in arts.kinds():
        if kind not in BUILDERS:
            continue
        heading, build = BUILDERS[kind]
        for folder in arts[kind]:
            title = f"{heading}: {folder_label(folder, arts)}"
            start = Section(section_id(kind, folder, arts), title)
            try:
                sections.append(build(start, folder, arts))
            except (OSError, ValueError, KeyError) as exc:  # e.g. a truncated or edited table
                why = f"its files cannot be read ({type(exc).__name__}: {exc})".replace("\n", " ")
                arts.skipped.append(Skipped(folder, why, "rerun the command that wrote it"))
    return sections


def skipped_section(arts: Artefacts) -> Section | None:
    """The section listing the folders left out of the report (None when there are none)."""
    if not arts.skipped:
        return None
    frame = pd.DataFrame(
        {
            "folder": [arts.relative(s.path) for s in arts.skipped],
            "why": [s.why for s in arts.skipped],
            "how to finish it": [s.fix for s in arts.skipped],
        }
    )
    sec = Section("skipped", "Not in this report")
    sec.intro = (
        "Folders left out: work an interrupted (or still running) command has not finished, or "
        "files that cannot be read. Nothing of theirs is shown below."
    )
    sec.tables.append(table_from_frame(frame, "Folders left out of this report"))
    return sec
