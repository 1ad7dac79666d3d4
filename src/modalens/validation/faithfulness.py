"""``modalens bench faithfulness``: does an attribution method find the importances we planted?

Per seed, :func:`faithfulness` generates synthetic data with known importances, sparse modalities
and a decoy modality of pure noise (:func:`modalens.data.synthetic.generate_synthetic`), trains the
demo model on all modalities and once without each (the ablation's machinery: :mod:`.settings`,
:mod:`.runs`), attributes the all-modality run with every registered occlusion strategy at
embedding, output and loss level plus exact Shapley values
(:func:`modalens.attribution.attribute_run`) and scores every method against the truth
(:mod:`.faithfulness_scores`). The truth is the *realised* importance the generator measured (how
much the target moves with each modality's term), with the nominal weights beside it and
leave-one-out retraining as the second reference. One more all-modality model, trained with
modality dropout (``dropout_p``), gives two more methods from its subsets
(:func:`~.subsets_run.evaluate_subsets`): how much worse it is with each modality filled, and
the performance Shapley values. Written to ``OUT``::

    truth.csv                 seed, modality, nominal, realised
    faithfulness_seeds.csv    per seed and method: Spearman rho with realised / nominal /
                              leave-one-out, decoy share
    faithfulness.csv          per method: mean ± std over seeds, recovers, n_exact
    faithfulness.md           the table and plain-language sentences
    faithfulness.png / .svg   rho per method and decoy share, spread over seeds
    faithfulness.json         the settings and provenance (a rerun with other settings or
                              another modalens is refused, at another thread count it warns)
    seed<k>/data, seed<k>/runs/<setting>-seed<k>, seed<k>/attribution,
    seed<k>/dropout/runs/all-seed<k> (the dropout model and its subsets-test/)

Everything resumes: finished data, runs and attributed samples are reused.
"""

from __future__ import annotations

import copy
import json
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, ClassVar

import numpy as np
import pandas as pd
import yaml
from pydantic import BeforeValidator, Field

from ..attribution import attribute_run
from ..attribution.options import as_names
from ..attribution.strategies import STRATEGIES
from ..data.synthetic import DECOY, parse_sparsity
from ..data.synthetic.planting import normalization_note, normalize_importance, wants_decoy
from ..data.synthetic.worlds import WORLDS, make_world
from ..display import tables_html
from ..errors import SpecError
from ..fingerprint import PROVENANCE, check_provenance, continued, differences, provenance
from ..io import (
    atomic_write_csv,
    atomic_write_json,
    atomic_write_table,
    check_output,
    make_folder,
)
from ..options import ConfigValueError, Options, checked
from ..progress import say
from ..training.configvalues import Int1
from .dropout_check import DEFAULT_DROPOUT, dropout_run_config
from .faithfulness_figure import draw_faithfulness, faithfulness_figure
from .faithfulness_scores import (
    DROPOUT_LEVEL,
    DROPOUT_METHOD,
    across_worlds,
    describe_faithfulness,
    loo_deviation,
    markdown,
    seed_rows,
    summarize_seeds,
    truth_table,
)
from .runs import run_setting
from .settings import (
    Setting,
    config_modalities,
    parse_seeds,
    plan_settings,
    read_config,
    run_config,
)
from .subsets_run import evaluate_subsets

#: the benchmark's default truth: the weakest nominal modality sparse, S1 sparse enough to fall
#: below WorldCover in realised importance, and the decoy
DEFAULT_IMPORTANCE = "s2=0.4,s1=0.3,esa_wc=0.2,viirs=0.1,decoy=0"
DEFAULT_SPARSITY = "s1=0.8,viirs=0.75"

#: levels attributed per method (Shapley values at output level)
METHOD_LEVELS = {"occlusion": ("embedding", "output", "loss"), "shapley": ("output",)}

#: draws of the random strategies (uniform, gaussian, permute)
DRAWS = 3

DEMO_CONFIG = Path(__file__).resolve().parents[1] / "configs" / "demo.yaml"


@dataclass
class FaithfulnessResult:
    """The outcome of :func:`faithfulness`.

    Attributes:
        out: the benchmark folder.
        truth: ``truth.csv``.
        seeds: ``faithfulness_seeds.csv``.
        table: ``faithfulness.csv``.
        sentences: :func:`~.faithfulness_scores.describe_faithfulness` of the table.
        statuses: runs ``trained``, ``resumed`` or ``skipped`` in this call.
        seconds: wall time of this call.
    """

    out: Path
    truth: pd.DataFrame
    seeds: pd.DataFrame
    table: pd.DataFrame
    sentences: list[str]
    statuses: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0

    def _repr_html_(self) -> str:
        return tables_html(f"Faithfulness ({self.out})", {"": self.table})

    def plot(self) -> Any:
        """The faithfulness figure (a :class:`matplotlib.figure.Figure`, not shown or
        written)."""
        n_seeds = self.seeds["seed"].nunique() if "seed" in self.seeds else None
        return draw_faithfulness(self.table, n_seeds=n_seeds)


def _worlds(value: Any) -> tuple[str, ...]:
    names = as_names(value)
    for w in names:
        if w not in WORLDS:
            raise ConfigValueError(f"unknown world {w!r}", f"use {', '.join(WORLDS)}")
    if not names:
        raise ConfigValueError("no world given", f"use {', '.join(WORLDS)}")
    return names


class FaithfulnessSettings(Options):
    """The settings of :func:`faithfulness` (``modalens bench faithfulness``), validated once.

    A bad value is a one-line :class:`~modalens.errors.SpecError` naming the setting and its
    command-line flag. :meth:`record` is what ``faithfulness.json`` keeps (a rerun into the
    same folder with other settings is refused).
    """

    noun: ClassVar[str] = "benchmark setting"

    seeds: Annotated[tuple[int, ...], checked(parse_seeds)] = Field(
        default=(0, 1, 2), description="seeds (data, training and attribution), comma-separated"
    )
    worlds: Annotated[tuple[str, ...], BeforeValidator(_worlds)] = Field(
        default=WORLDS,
        description="worlds, comma-separated: " + ", ".join(WORLDS) + " (real needs the "
        "Sen1Floods11 chip in ../shared)",
    )
    importance: Annotated[str | dict[str, float], checked(normalize_importance, keep=True)] = Field(
        default=DEFAULT_IMPORTANCE,
        description="planted importances of the planted world; decoy=0 adds the pure-noise "
        "decoy modality (a real modality at 0 is a decoy too)",
    )
    sparsity: Annotated[str | dict[str, float] | None, checked(parse_sparsity, keep=True)] = Field(
        default=DEFAULT_SPARSITY,
        description="planted world: share of pixels without a modality's own signal",
    )
    samples: Int1 = Field(default=120, description="scenes per synthetic world and seed")
    size: Int1 = Field(default=32, description="scene (and real tile) size in px")
    epochs: Int1 = Field(default=15, description="training epochs of every run")
    dropout_p: Annotated[float, Field(ge=0.0, lt=1.0)] = Field(
        default=DEFAULT_DROPOUT["p"],
        description="modality-dropout probability of the one dropout model whose subsets "
        "(modalens subsets) are scored as two more methods",
    )

    @classmethod
    def where(cls, key: str) -> str:
        """``samples= / --samples``."""
        return f"{key}= / --{key.replace('_', '-')}"

    def record(self) -> dict[str, Any]:
        """The settings the results depend on, as ``faithfulness.json`` keeps them (the
        seeds apart: more seeds extend a benchmark)."""
        weights = normalize_importance(self.importance)
        return {
            "importance": {m: round(w, 6) for m, w in weights.items()},
            "decoy": wants_decoy(self.importance),
            "sparsity": parse_sparsity(self.sparsity),
            "samples": self.samples,
            "size": self.size,
            "epochs": self.epochs,
            "dropout_p": self.dropout_p,
            "worlds": list(self.worlds),
        }


def _check_record(out: Path, settings: Mapping[str, Any]) -> None:
    """Refuse an output folder that cannot be one (:func:`~modalens.io.check_output`) or a
    benchmark folder made with other ``settings``."""
    check_output(out, "folder")
    path = out / "faithfulness.json"
    if not path.is_file():
        return
    record = json.loads(path.read_text())
    saved = record.get("settings", {})
    diff = differences({k: saved.get(k) for k in settings}, dict(settings))
    if diff:
        raise SpecError(
            f"the benchmark folder was made with other settings ({diff[0]})",
            str(path),
            "give another --out or the same settings",
        )
    check_provenance(  # another version refuses, another thread count warns
        record.get(PROVENANCE),
        provenance(),
        what="the benchmark folder was made with another modalens",
        where=str(path),
        fix="give another --out",
        about=f"the benchmark {out}",
    )


def _provenance(out: Path) -> dict[str, Any]:
    """``{"provenance": ...}`` to record in ``faithfulness.json``: this call's
    (:func:`modalens.fingerprint.provenance`), keeping the thread counts of earlier calls."""
    path = out / "faithfulness.json"
    try:
        old = json.loads(path.read_text()) if path.is_file() else {}
    except json.JSONDecodeError:
        old = {}
    return {PROVENANCE: continued(old, {PROVENANCE: provenance()})[PROVENANCE]}


def world_data(world: str, folder: Path, seed: int, s: Mapping[str, Any]) -> Any:
    """Write (or reuse) one world's data into ``folder`` with the benchmark's settings ``s``
    (:meth:`FaithfulnessSettings.record`): a :class:`~modalens.data.synthetic.worlds.WorldData`."""
    planted = {"importance": _planted_weights(s), "sparsity": s["sparsity"]}
    return make_world(world, folder, seed, s["samples"], s["size"], planted=planted)


def _planted_weights(s: Mapping[str, Any]) -> dict[str, float]:
    """The planted world's importances, with the decoy at 0 when it has one."""
    return {**s["importance"], **({DECOY: 0.0} if s["decoy"] else {})}


def world_config(
    spec: Path, s: Mapping[str, Any], config: str | Path | Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """The run config trained on a world: ``config`` (default the demo's) on ``spec`` with the
    benchmark's epochs, a cosine schedule over them and crops of at most 64 px.

    Raises:
        SpecError: ``config`` is missing or not a mapping.
    """
    if config is None or not isinstance(config, Mapping):
        path = Path(config) if config is not None else DEMO_CONFIG
        if not path.is_file():
            raise SpecError("run config not found", str(path), "check the path given to --config")
        raw = yaml.safe_load(path.read_text())
    else:
        raw = copy.deepcopy(dict(config))
    if not isinstance(raw, dict):
        raise SpecError("the run config is not a mapping", str(config), "see configs/demo.yaml")
    raw["data"] = str(spec)
    epochs, crop = s["epochs"], min(64, s["size"])
    raw["train"] = {
        **(raw.get("train") or {}),
        "epochs": epochs,
        "scheduler": {"name": "cosine_warm_restarts", "T_0": epochs, "T_mult": 1},
        "crop_size": crop,
    }
    cfg, _ = read_config(raw)
    return cfg


def _one_seed(
    world: str, seed: int, folder: Path, s: Mapping[str, Any], config: Any, progress: bool
) -> tuple[pd.DataFrame, pd.DataFrame, dict[str, int]]:
    """Data, runs, attribution and scores of one world and seed: ``(truth, rows, statuses)``."""
    say(f"{world} seed {seed}: data", progress)
    data = world_data(world, folder / "data", seed, s)
    cfg = world_config(data.spec, s, config)
    mods = config_modalities(cfg)
    plan = [p for p in plan_settings(mods) if p.kind in ("all", "leave_one_out")]
    records = {}
    statuses: dict[str, int] = {}
    for i, setting in enumerate(plan, 1):
        rec = run_setting(setting, seed, run_config(cfg, setting, seed), folder, timing_samples=1)
        records[setting.modality] = rec
        statuses[rec.status] = statuses.get(rec.status, 0) + 1
        say(f"{world} seed {seed}: [{i}/{len(plan)}] {setting.short}: {rec.status}", progress)
    metric = records[None].metrics[0]
    loo = {m: loo_deviation(records[None].row, records[m].row, metric) for m in mods}
    say(f"{world} seed {seed}: the modality-dropout model and its subsets", progress)
    extra, status = _dropout_methods(plan[0], seed, cfg, folder / "dropout", s["dropout_p"], mods)
    statuses[status] = statuses.get(status, 0) + 1
    say(f"{world} seed {seed}: attributing the all-modality run", progress)
    scores, summary = attribute_run(
        records[None].path,
        "test",
        out=folder / "attribution",
        strategies=STRATEGIES.names(),
        levels=METHOD_LEVELS["occlusion"],
        distances=("euclidean",),
        shapley="exact",
        draws=DRAWS,
        seed=seed,
        progress=False,
        figure=False,
    )
    ids = sorted(str(i) for i in scores["sample_id"].unique())
    per_sample = np.array([[data.per_sample[i][m] for m in mods] for i in ids], float)
    nominal = _planted_weights(s) if world == "planted" else {}
    truth = truth_table(world, seed, per_sample, mods, nominal, data.null)
    levels = METHOD_LEVELS
    rows = seed_rows(
        world, seed, truth, per_sample, loo, summary, levels=levels, metric=metric, extra=extra
    )
    return truth, rows, statuses


def _dropout_methods(
    setting: Setting, seed: int, cfg: Mapping[str, Any], folder: Path, p: float, mods: list[str]
) -> tuple[dict[tuple[str, str, str, str], list[float]], str]:
    """Train the all-modality model with modality dropout ``p`` (mean fill, twice the epochs:
    :func:`~.dropout_check.dropout_run_config`) into ``folder``,
    score its subsets (:func:`~.subsets_run.evaluate_subsets`) and return the two methods it
    gives -- per modality how much worse the model is with it filled, and performance Shapley
    -- with the run's status."""
    drop = {**DEFAULT_DROPOUT, "p": p}
    run_cfg = dropout_run_config(run_config(cfg, setting, seed), drop)
    rec = run_setting(setting, seed, run_cfg, folder, timing_samples=1)
    res = evaluate_subsets(rec.path, "test", seed=seed)
    metric = res.metric
    left_out = res.missing.set_index("missing")["worse_by"].reindex(mods).tolist()
    shapley = res.shapley.set_index("modality")["shapley"].reindex(mods).tolist()
    methods = {
        (DROPOUT_METHOD, DROPOUT_LEVEL, metric, "leave_one_out"): left_out,
        (DROPOUT_METHOD, DROPOUT_LEVEL, metric, "performance_shapley"): shapley,
    }
    return methods, rec.status


def faithfulness(
    out: str | Path,
    settings: FaithfulnessSettings | None = None,
    *,
    progress: bool = True,
    config: str | Path | Mapping[str, Any] | None = None,
    **values: Any,
) -> FaithfulnessResult:
    """Run the faithfulness benchmark into ``out`` (see the module docstring).

    Args:
        out: the benchmark folder (created; a rerun continues it).
        settings: the benchmark's settings (default: :class:`FaithfulnessSettings`'s).
        progress: print a line per step.
        config: the run config trained (default: the demo's, ``configs/demo.yaml``); its data
            section, epochs, scheduler length and crop size are set by the benchmark.
        **values: fields of :class:`FaithfulnessSettings` to change (``seeds="0"``,
            ``worlds="planted"``, ``samples=40`` ...).

    Returns:
        The :class:`FaithfulnessResult`.

    Raises:
        SpecError: an unknown setting, bad seeds, importances, sparsity, sizes or worlds, or
            ``out`` made with other settings.
    """
    start = time.perf_counter()
    out = Path(out)
    settings = (settings or FaithfulnessSettings()).replace(**values)
    seeds, names = settings.seeds, settings.worlds
    s = settings.record()
    note = normalization_note(settings.importance)
    if note:
        say(f"note: {note}", progress)
    _check_record(out, s)
    make_folder(out)
    made = _provenance(out)
    atomic_write_json(out / "faithfulness.json", {"settings": s, "seeds": list(seeds), **made})
    truths, rows = [], []
    statuses: dict[str, int] = {}
    for world in names:
        for seed in seeds:
            truth, seed_table, st = _one_seed(
                world, seed, out / world / f"seed{seed}", s, config, progress
            )
            truths.append(truth)
            rows.append(seed_table)
            for k, v in st.items():
                statuses[k] = statuses.get(k, 0) + v
    truth_all = pd.concat(truths, ignore_index=True)
    seed_table = pd.concat(rows, ignore_index=True)
    table = summarize_seeds(seed_table)
    sentences = describe_faithfulness(table)
    atomic_write_csv(out / "truth.csv", truth_all)
    atomic_write_csv(out / "faithfulness_seeds.csv", seed_table)
    atomic_write_table(out / "faithfulness.csv", table, markdown(table, sentences))
    atomic_write_csv(out / "faithfulness_worlds.csv", across_worlds(table))
    faithfulness_figure(table, out / "faithfulness.png", n_seeds=len(seeds))
    return FaithfulnessResult(
        out, truth_all, seed_table, table, sentences, statuses, time.perf_counter() - start
    )
