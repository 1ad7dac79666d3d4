"""``modalens ablate``: the paper's modality ablation (Table I), resumable run by run.

:func:`ablate` trains, from one run config and with the same schedule and seed, the
all-modality model, one model per single modality and one per left-out modality (9 runs for 4
modalities; see :mod:`.settings` for one or two modalities), tests each, and writes::

    OUT/ablation.json                 the base config, modalities, seeds (checked on reruns)
    OUT/runs/<setting>-seed<k>/       one run folder per setting and seed (modalens.training)
    OUT/rows/<setting>-seed<k>.json   each run's Table I row (cached with its sources)
    OUT/table1.csv, OUT/table1.md     Table I (rewritten after every run)

Every run is resumable on its own (:mod:`.runs`): a rerun of the same command skips finished runs,
continues an interrupted one and trains the rest; a folder or record holding another
configuration is refused with a one-line error. With ``attribute=True`` the agreement of
:mod:`.agree` follows.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from ..display import tables_html
from ..errors import DataError
from ..io import check_output, make_folder
from ..progress import say
from .agree import AgreementResult, agreement
from .record import check_record, write_record
from .runs import RunRecord, is_finished, run_setting
from .settings import (
    Setting,
    config_modalities,
    parse_seeds,
    plan_note,
    plan_settings,
    read_config,
    read_saved_config,
    run_config,
)
from .table import build_table, write_table


@dataclass
class AblationResult:
    """The outcome of :func:`ablate`.

    Attributes:
        out: the ablation folder.
        table: Table I (as written to ``table1.csv``).
        records: one :class:`~.runs.RunRecord` per run, in the order run.
        modalities: the modalities ablated.
        settings: the settings trained.
        seeds: the seeds.
        task: the task of the runs (``regression``, ``segmentation``, ``classification``).
        metrics: the metric columns of the table.
        agreement: the agreement result when asked for (``attribute=True``).
        statuses: how many runs were ``trained``, ``resumed`` or ``skipped`` in this call.
    """

    out: Path
    table: pd.DataFrame
    records: list[RunRecord]
    modalities: list[str]
    settings: list[Setting]
    seeds: tuple[int, ...]
    task: str | None
    metrics: list[str]
    agreement: AgreementResult | None = None
    statuses: dict[str, int] = field(default_factory=dict)

    def _repr_html_(self) -> str:
        return tables_html(f"Table I: modality ablation ({self.out})", {"": self.table})

    def plot(self) -> Any:
        """The agreement figure (:meth:`AgreementResult.plot`) of an ablation run with
        ``attribute=True``; a :class:`matplotlib.figure.Figure`, not shown or written."""
        if self.agreement is None:
            raise DataError("no agreement to plot", str(self.out), "run ablate with attribute=True")
        return self.agreement.plot()

    @property
    def table_csv(self) -> Path:
        """``OUT/table1.csv``."""
        return self.out / "table1.csv"

    @property
    def table_md(self) -> Path:
        """``OUT/table1.md``."""
        return self.out / "table1.md"

    def run_dir(self, setting: str, seed: int = 0) -> Path:
        """The run folder of a setting.

        Args:
            setting: the setting name (``all``, ``single-s1``, ``leaveout-s1``...).
            seed: the seed.

        Returns:
            ``OUT/runs/<setting>-seed<seed>``.
        """
        return self.out / "runs" / f"{setting}-seed{seed}"


def _headline(row: Mapping[str, Any], metrics: Sequence[str]) -> str:
    shown = [f"{m.upper()} {row[m]:.3g}" for m in metrics[:2] if m in row]
    return ", ".join(shown)


def _task(run_dir: Path) -> str | None:
    saved = read_saved_config(run_dir) or {}
    return saved.get("task")


def ablate(
    config: str | Path | Mapping[str, Any],
    out: str | Path,
    seeds: str | int | Sequence[int] = (0,),
    overrides: Mapping[str, Any] | None = None,
    progress: bool = True,
    *,
    attribute: bool = False,
    timing_samples: int | None = None,
    on_run: Callable[[RunRecord], None] | None = None,
) -> AblationResult:
    """Train and test every setting of the modality ablation and write Table I.

    Args:
        config: the base run config (YAML path or dict); its ``use``/``drop`` choose the
            modalities to ablate, its ``train.seed`` is replaced by each of ``seeds``.
        out: the ablation folder (created; a rerun continues it).
        seeds: seeds, e.g. ``(0, 1, 2)`` or ``"0,1,2"``; several give mean ± std rows.
        overrides: nested dict merged over the config (``{"data": {"root": ...}}``).
        progress: print a line per run (training itself runs without progress bars: follow a
            run's ``metrics.csv`` for its epochs).
        attribute: afterwards compute the agreement with the occlusion influence
            (:func:`~.agreement.agreement`, attributing the all-modality run if needed).
        timing_samples: time the forward pass on this many test samples per run (None: all).
        on_run: called with each finished run's :class:`~.runs.RunRecord`.

    Returns:
        The :class:`AblationResult`.

    Raises:
        SpecError: a bad config, seed or ``out``, or an ``out`` holding another ablation.
        DataError: the dataset cannot be read.
        ModelError: a run folder cannot be continued.
    """
    out = check_output(out, "folder")
    cfg, source = read_config(config, overrides)
    seeds = parse_seeds(seeds)
    modalities = config_modalities(cfg, source)
    settings = plan_settings(modalities)
    configs = {(s.name, k): run_config(cfg, s, k) for k in seeds for s in settings}
    check_record(out, cfg, modalities)
    make_folder(out)
    note = plan_note(modalities)
    if note:
        say(f"note: {note}", progress)
    plan = [(seed, setting) for seed in seeds for setting in settings]
    records: list[RunRecord] = []
    metrics: list[str] = []
    task: str | None = None
    for step, (seed, setting) in enumerate(plan, 1):
        head = f"[{step}/{len(plan)}] {setting.short} seed {seed}"
        config = configs[(setting.name, seed)]
        record = _ablation_run(setting, seed, config, out, head, progress, timing_samples)
        records.append(record)
        if not metrics:
            # the first run has accepted the config (and its folder): record it
            metrics = list(record.metrics)
            task = _task(record.path)
            write_record(out, cfg, modalities, seeds, task=task, metrics=metrics)
        if record.status == "skipped":
            say(f"{head}: skipped (finished)", progress)
        else:
            done = f"{_headline(record.row, metrics)}; {record.seconds:.1f} s"
            say(f"{head}: done ({done})", progress)
        table = build_table([r.row for r in records], metrics, [s.name for s in settings])
        write_table(table, out, metrics, note)
        if on_run is not None:
            on_run(record)
    table = build_table([r.row for r in records], metrics, [s.name for s in settings])
    write_table(table, out, metrics, note)
    statuses: dict[str, int] = {}
    for r in records:
        statuses[r.status] = statuses.get(r.status, 0) + 1
    result = AblationResult(
        out=out,
        table=table,
        records=records,
        modalities=list(modalities),
        settings=settings,
        seeds=seeds,
        task=task,
        metrics=metrics,
        statuses=statuses,
    )
    if attribute:
        result.agreement = agreement(out, seeds=seeds, progress=progress)
    return result


def _ablation_run(
    setting: Setting,
    seed: int,
    config: dict[str, Any],
    out: Path,
    head: str,
    progress: bool,
    timing_samples: int | None,
) -> RunRecord:
    """Train (or resume, or skip when finished) the run of ``setting`` and ``seed``."""
    run_dir = out / "runs" / setting.run_name(seed)
    if not is_finished(run_dir):
        started = run_dir.is_dir() and any(run_dir.iterdir())
        say(f"{head}: {'resuming' if started else 'training'} ...", progress)
    return run_setting(setting, seed, config, out, progress=False, timing_samples=timing_samples)
