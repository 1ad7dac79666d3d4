"""``modalens bench faithfulness``: does an attribution method find the importances we planted?

Per seed, :func:`faithfulness` generates synthetic data with known importances, sparse
modalities and a decoy modality of pure noise (:func:`modalens.data.synthetic.generate`), trains
the demo model on all modalities and once without each (the ablation's machinery:
:mod:`.settings`, :mod:`.runs`), attributes the all-modality run with every registered occlusion
strategy at embedding, output and loss level plus exact Shapley values
(:func:`modalens.attribution.attribute_run`) and scores every method against the truth
(:mod:`.faithfulness_scores`). The truth is the *realised* importance the generator measured
(how much the target moves with each modality's term), with the nominal weights beside it and
leave-one-out retraining as the second reference. Written to ``OUT``::

    truth.csv                 seed, modality, nominal, realised
    faithfulness_seeds.csv    per seed and method: Spearman rho with realised / nominal /
                              leave-one-out, decoy share
    faithfulness.csv          per method: mean ± std over seeds, recovers, n_exact
    faithfulness.md           the table and plain-language sentences
    faithfulness.png / .svg   rho per method and decoy share, spread over seeds
    faithfulness.json         the settings (a rerun with other settings is refused)
    seed<k>/data, seed<k>/runs/<setting>-seed<k>, seed<k>/attribution

Everything resumes: finished data, runs and attributed samples are reused.
"""

from __future__ import annotations

import copy
import json
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml

from ..attribution import attribute_run
from ..attribution.options import as_names
from ..attribution.strategies import STRATEGIES
from ..data.synthetic import DECOY, normalize_importance, parse_sparsity, wants_decoy
from ..data.synthetic.worlds import WORLDS, make_world
from ..errors import SpecError
from ..fingerprint import differences
from ..io import atomic_write_csv, atomic_write_json, atomic_write_text, make_folder
from .faithfulness_figure import faithfulness_figure
from .faithfulness_scores import (
    across_worlds,
    describe_faithfulness,
    loo_deviation,
    markdown,
    seed_rows,
    summarize_seeds,
    truth_table,
)
from .runs import run_setting
from .settings import config_modalities, parse_seeds, plan_settings, read_config, run_config

#: the benchmark's default truth: the weakest nominal modality sparse, S1 sparse enough to fall
#: below WorldCover in realised importance, and the decoy
DEFAULT_IMPORTANCE = "s2=0.4,s1=0.3,esa_wc=0.2,viirs=0.1,decoy=0"
DEFAULT_SPARSITY = "s1=0.8,viirs=0.75"

#: levels attributed per method (Shapley values at output level)
LEVELS = {"occlusion": ("embedding", "output", "loss"), "shapley": ("output",)}

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


def _say(progress: bool, text: str) -> None:
    if progress:
        print(text, flush=True)


def _settings(
    importance: str | Mapping[str, float],
    sparsity: Any,
    samples: int,
    size: int,
    epochs: int,
    worlds: Sequence[str],
) -> dict[str, Any]:
    weights = normalize_importance(importance)
    if int(epochs) < 1:
        raise SpecError(f"epochs must be >= 1, got {epochs}", "--epochs", "e.g. --epochs 12")
    for w in worlds:
        if w not in WORLDS:
            raise SpecError(f"unknown world {w!r}", "--worlds", f"use {', '.join(WORLDS)}")
    if not worlds:
        raise SpecError("no world given", "--worlds", f"use {', '.join(WORLDS)}")
    return {
        "importance": {m: round(w, 6) for m, w in weights.items()},
        "decoy": wants_decoy(importance),
        "sparsity": parse_sparsity(sparsity),
        "samples": int(samples),
        "size": int(size),
        "epochs": int(epochs),
        "worlds": list(worlds),
    }


def _check_record(out: Path, settings: Mapping[str, Any]) -> None:
    path = out / "faithfulness.json"
    if not path.is_file():
        return
    saved = json.loads(path.read_text()).get("settings", {})
    diff = differences({k: saved.get(k) for k in settings}, dict(settings))
    if diff:
        raise SpecError(
            f"the benchmark folder was made with other settings ({diff[0]})",
            str(path),
            "give another --out or the same settings",
        )


def _base_config(
    spec: Path, s: Mapping[str, Any], config: str | Path | Mapping[str, Any] | None
) -> dict[str, Any]:
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
    _say(progress, f"{world} seed {seed}: data")
    planted = {"importance": {**s["importance"], **({DECOY: 0.0} if s["decoy"] else {})},
               "sparsity": s["sparsity"]}
    data = make_world(world, folder / "data", seed, s["samples"], s["size"], planted=planted)
    cfg = _base_config(data.spec, s, config)
    mods = config_modalities(cfg)
    plan = [p for p in plan_settings(mods) if p.kind in ("all", "leave_one_out")]
    records = {}
    statuses: dict[str, int] = {}
    for i, setting in enumerate(plan, 1):
        rec = run_setting(setting, seed, run_config(cfg, setting, seed), folder, timing_samples=1)
        records[setting.modality] = rec
        statuses[rec.status] = statuses.get(rec.status, 0) + 1
        _say(progress, f"{world} seed {seed}: [{i}/{len(plan)}] {setting.short}: {rec.status}")
    metric = records[None].metrics[0]
    loo = {m: loo_deviation(records[None].row, records[m].row, metric) for m in mods}
    _say(progress, f"{world} seed {seed}: attributing the all-modality run")
    scores, summary = attribute_run(
        records[None].path,
        "test",
        out=folder / "attribution",
        strategies=STRATEGIES.names(),
        levels=LEVELS["occlusion"],
        distances=("euclidean",),
        shapley="exact",
        draws=DRAWS,
        seed=seed,
        progress=False,
        figure=False,
    )
    ids = sorted(str(i) for i in scores["sample_id"].unique())
    per_sample = np.array([[data.per_sample[i][m] for m in mods] for i in ids], float)
    nominal = planted["importance"] if world == "planted" else {}
    truth = truth_table(world, seed, per_sample, mods, nominal, data.null)
    rows = seed_rows(world, seed, truth, per_sample, loo, summary, levels=LEVELS, metric=metric)
    return truth, rows, statuses


def faithfulness(
    out: str | Path,
    seeds: str | int | Sequence[int] = (0, 1, 2),
    importance: str | Mapping[str, float] = DEFAULT_IMPORTANCE,
    sparsity: str | Mapping[str, float] | None = DEFAULT_SPARSITY,
    samples: int = 120,
    size: int = 32,
    epochs: int = 15,
    progress: bool = True,
    config: str | Path | Mapping[str, Any] | None = None,
    worlds: str | Sequence[str] = WORLDS,
) -> FaithfulnessResult:
    """Run the faithfulness benchmark into ``out`` (see the module docstring).

    Args:
        out: the benchmark folder (created; a rerun continues it).
        seeds: seeds (data, training and attribution), e.g. ``"0,1,2"``.
        importance: planted weights of the ``planted`` world (``decoy=0`` adds the pure-noise
            decoy modality; a real modality at 0 is a decoy too).
        sparsity: share of pixels without each modality's own signal in the ``planted`` world
            (``"viirs=0.75"``).
        samples: scenes per synthetic world and seed.
        size: scene (and real tile) size in pixels.
        epochs: training epochs of every run (the demo's schedule, shortened).
        progress: print a line per step.
        config: the run config trained (default: the demo's, ``configs/demo.yaml``); its data
            section, epochs, scheduler length and crop size are set by the benchmark.
        worlds: the worlds (:data:`~modalens.data.synthetic.worlds.WORLDS`), a list or a
            comma-separated string; ``real`` needs the Sen1Floods11 chip in ``../shared``.

    Returns:
        The :class:`FaithfulnessResult`.

    Raises:
        SpecError: bad seeds, importances, sparsity, sizes or worlds, or ``out`` made with
            other settings.
    """
    start = time.perf_counter()
    out = Path(out)
    seeds = parse_seeds(seeds)
    names = as_names(worlds)
    s = _settings(importance, sparsity, samples, size, epochs, names)
    _check_record(out, s)
    make_folder(out)
    atomic_write_json(out / "faithfulness.json", {"settings": s, "seeds": list(seeds)})
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
    atomic_write_csv(out / "faithfulness.csv", table)
    atomic_write_csv(out / "faithfulness_worlds.csv", across_worlds(table))
    atomic_write_text(out / "faithfulness.md", markdown(table, sentences))
    faithfulness_figure(table, out / "faithfulness.png", n_seeds=len(seeds))
    return FaithfulnessResult(
        out, truth_all, seed_table, table, sentences, statuses, time.perf_counter() - start
    )
