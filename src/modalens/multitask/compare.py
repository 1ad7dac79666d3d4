"""``modalens mtl compare``: the multitask model against its baselines, over seeds, resumable.

:func:`compare` trains, from one multitask run config and with the same seed and schedule, the
three models of :func:`~.plan.plan_models` (unimodal, input fusion, multitask) for every seed,
tests each and writes::

    OUT/mtl_compare.json              the config, modalities and seeds (checked on reruns)
    OUT/runs/<model>-seed<k>/         one run folder per model and seed (modalens.training)
    OUT/rows/<model>-seed<k>.json     each run's cached row (metrics, timings, parameters)
    OUT/mtl_compare.csv, .md          the comparison table (:mod:`.table`)
    OUT/mtl_tests.csv                 paired tests of the multitask model against each baseline

Runs go through the ablation's machinery (:func:`modalens.validation.runs.run_setting`: train,
resume or skip; test; time with :mod:`modalens.validation.measure`; cache the row), so a rerun
of the same command retrains nothing, an interrupted run continues and a folder holding another
configuration is refused (:mod:`modalens.validation.record`).

The paired test compares per-sample main-task errors -- the ``loss`` column of each run's
``metrics_test.csv`` (the main task's loss: MSE or MAE for regression, cross-entropy for
segmentation, BCE or CE for classification) -- of the multitask model and a baseline on the same
test sample and seed, pooled over seeds: the Wilcoxon signed-rank test of :mod:`.paired`.
Pooling over seeds counts each test sample once per seed; the pairs of one sample are not
independent across seeds, so read the p-value as a guide, not a guarantee.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from ..display import tables_html
from ..io import atomic_write_csv
from ..models.multitask import MultiTaskUNet
from ..progress import say
from ..training.config import read_raw_config
from ..training.run import load_run
from ..validation.record import check_record, write_record
from ..validation.runs import RunRecord, run_setting
from ..validation.settings import Setting, parse_seeds, read_saved_config
from .paired import paired_test
from .plan import main_metric, model_config, plan_models
from .table import build_compare_table, write_compare_table

RECORD = "mtl_compare.json"
#: columns of ``mtl_tests.csv``
TEST_COLUMNS = [
    "baseline",
    "error",
    "n_pairs",
    "mean_diff",
    "median_diff",
    "statistic",
    "p_value",
    "method",
]


@dataclass
class CompareResult:
    """The outcome of :func:`compare`.

    Attributes:
        out: the comparison folder.
        table: the comparison table (``mtl_compare.csv``).
        tests: the paired tests (``mtl_tests.csv``).
        records: one :class:`~modalens.validation.runs.RunRecord` per run, in the order run.
        task: the main task.
        metric: the headline metric.
        statuses: how many runs were ``trained``, ``resumed`` or ``skipped`` in this call.
    """

    out: Path
    table: pd.DataFrame
    tests: pd.DataFrame
    records: list[RunRecord]
    task: str
    metric: str
    statuses: dict[str, int] = field(default_factory=dict)

    def _repr_html_(self) -> str:
        tables = {"mtl_compare.csv": self.table, "mtl_tests.csv": self.tests}
        return tables_html(f"Multitask comparison ({self.metric})", tables)


def _main_parameters(run_dir: Path) -> int:
    """Parameters the main prediction uses (encoder, decoder and main head)."""
    model = load_run(run_dir).model
    if isinstance(model, MultiTaskUNet):
        return int(model.parameter_counts()["main"])
    return int(sum(p.numel() for p in model.parameters() if p.requires_grad))


def sample_errors(run_dir: Path, split: str = "test") -> pd.Series:
    """Per-sample main-task errors of a tested run: the ``loss`` column by sample id.

    Args:
        run_dir: a run folder with ``metrics_<split>.csv``.
        split: the split tested.

    Returns:
        The per-sample losses indexed by id (the pooled ``all`` row left out).
    """
    table = pd.read_csv(run_dir / f"metrics_{split}.csv", dtype={"id": str})
    table = table[table["id"] != "all"]
    return table.set_index("id")["loss"].astype(float)


def paired_tests(
    records: Sequence[RunRecord], settings: Sequence[Setting], split: str = "test"
) -> pd.DataFrame:
    """The multitask model against each baseline (see the module docstring).

    Args:
        records: every run of the comparison.
        settings: the models (:func:`~.plan.plan_models`).
        split: the split tested.

    Returns:
        One row per baseline with the columns :data:`TEST_COLUMNS` (``mean_diff`` < 0: the
        multitask model's errors are lower).
    """
    runs = {(r.setting.name, r.seed): r.path for r in records}
    rows = []
    for base in (s for s in settings if s.kind != "multitask"):
        ours, theirs = [], []
        for (name, seed), path in sorted(runs.items()):
            if name != "multitask" or (base.name, seed) not in runs:
                continue
            a = sample_errors(path, split)
            b = sample_errors(runs[(base.name, seed)], split)
            common = a.index.intersection(b.index)
            ours += a[common].tolist()
            theirs += b[common].tolist()
        t = paired_test(ours, theirs)
        rows.append(
            {
                "baseline": base.name,
                "error": "per-sample main-task loss, multitask - baseline",
                "n_pairs": t.n_pairs,
                "mean_diff": t.mean_diff,
                "median_diff": t.median_diff,
                "statistic": t.statistic,
                "p_value": t.p_value,
                "method": t.method,
            }
        )
    return pd.DataFrame(rows, columns=TEST_COLUMNS)


def compare(
    config: str | Path | Mapping[str, Any],
    out: str | Path,
    seeds: str | int | Sequence[int] = (0,),
    overrides: Mapping[str, Any] | None = None,
    progress: bool = True,
    *,
    timing_samples: int | None = None,
) -> CompareResult:
    """Train and test the unimodal, input-fusion and multitask models and compare them.

    Args:
        config: a multitask run config (YAML path or dict) with ``inputs`` and ``auxiliary``.
        out: the comparison folder (created; a rerun continues it).
        seeds: seeds, e.g. ``(0, 1, 2)`` or ``"0,1,2"``.
        overrides: nested dict merged over the config (``{"data": {"root": ...}}``).
        progress: print a line per run.
        timing_samples: time the forward pass on this many test samples per run (None: all).

    Returns:
        The :class:`CompareResult`; the files of the module docstring are written.

    Raises:
        SpecError: a bad config or seed, a config without ``auxiliary``, or an ``out`` holding
            another comparison.
    """
    raw, source = read_raw_config(config, overrides)
    settings = plan_models(raw, source)
    seeds = parse_seeds(seeds)
    out = Path(out)
    modalities = list(next(s for s in settings if s.kind == "fusion").use)
    check_record(out, raw, modalities, record=RECORD)
    records: list[RunRecord] = []
    total = len(settings) * len(seeds)
    for seed in seeds:
        for setting in settings:
            head = f"[{len(records) + 1}/{total}] {setting.label}, seed {seed}"
            say(f"{head} ...", progress)
            cfg = model_config(raw, setting, seed)
            record = run_setting(setting, seed, cfg, out, timing_samples=timing_samples)
            if not records:
                write_record(out, raw, modalities, seeds, record=RECORD)
            record.row["parameters_main"] = _main_parameters(record.path)
            records.append(record)
            say(f"{head}: {record.status} ({record.seconds:.1f} s)", progress)
    task = str((read_saved_config(records[0].path) or {}).get("task") or "regression")
    metric, lower = main_metric(task, records[0].row)
    table = build_compare_table([r.row for r in records], settings, metric)
    tests = paired_tests(records, settings)
    write_compare_table(table, tests, out, metric, lower)
    atomic_write_csv(out / "mtl_tests.csv", tests)
    statuses: dict[str, int] = {}
    for r in records:
        statuses[r.status] = statuses.get(r.status, 0) + 1
    return CompareResult(out, table, tests, records, task, metric, statuses)
