"""Run level: attribute a trained run folder on one of its splits.

:func:`attribute_run` loads the run (:func:`modalens.training.run.load_run`), reads the split's
deterministic evaluation crops lazily (finished samples of a resumed attribution are not
read), masks the inputs as in training, streams the scores to ``OUT/parts`` (by default
``RUN/attribution/<split>``, or ``<split>-<label>`` naming non-default options,
:func:`folder_label`) and writes
``OUT/scores.parquet`` (long form), ``OUT/source.json`` (the run folder, split, checkpoint,
precision and ``provenance``),
``OUT/summary.csv`` and ``OUT/summary.txt`` (dataset level, with the tiered order of every
block, :func:`~.aggregation.summarize_scores`), ``OUT/pairwise.csv`` (the bootstrap probability that
one group has more influence than another, behind the tiers, :func:`~.aggregation.pairwise`)
and ``OUT/influence.png`` (:func:`~.figures.influence_bar_chart`).
The ``mean`` strategy takes the train means from the run's statistics (:func:`run_mean`; a run
whose statistics lack them is a one-line error, never a silent fill with zeros), the ``nodata``
strategy its values from the spec (:func:`run_nodata`); the ``loss`` level the task's per-sample
loss (all three: :func:`run_options`).
"""

from __future__ import annotations

import hashlib
import json
import math
import warnings
from collections.abc import Callable, Mapping, Sequence
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..data.dataset import collate
from ..data.identity import data_identity
from ..data.reader import normalize
from ..data.spec import DatasetSpec, Modality
from ..errors import DataError, SpecError
from ..fingerprint import PROVENANCE, file_digest, provenance
from ..io import atomic_write_csv, atomic_write_json, atomic_write_text
from ..training.run import load_run
from ..training.runfolder import RunFolder
from ..training.runstate import warn_if_unfinished
from .aggregation import format_summary, pairwise, summarize_scores
from .api import attribute
from .batches import LazyBatch
from .figures import influence_bar_chart
from .groups import Groups, groups_for
from .options import AUTO_LEVEL, AttributionOptions, resolve_options
from .rows import empty_rows
from .sharding import launch

#: the file of an attribution folder naming the run and split it was made from
SOURCE_FILE = "source.json"


def recorded_run(attr_dir: str | Path) -> Path | None:
    """The run an attribution folder was made from, when the folder says so.

    Args:
        attr_dir: an attribution folder.

    Returns:
        The run named in its ``source.json``, else the run folder around a default output
        folder (``RUN/attribution/<split>[-<label>]``), else None.
    """
    attr_dir = Path(attr_dir)
    try:
        run = json.loads((attr_dir / SOURCE_FILE).read_text()).get("run")
        if run:
            return Path(run)
    except (OSError, json.JSONDecodeError, AttributeError):
        pass
    parent = attr_dir.parent
    if parent.name == "attribution" and (parent.parent / "config.yaml").is_file():
        return parent.parent
    return None


def stale_note(attr_dir: str | Path) -> str | None:
    """A line when an attribution folder's scores are not of the checkpoint its run holds now
    (it was trained on since, e.g. ``fit --resume``), else None (also when the folder or its
    run does not say: folders written before ``source.json`` kept the checkpoint's hash).

    Args:
        attr_dir: an attribution folder.
    """
    attr_dir = Path(attr_dir)
    try:
        source = json.loads((attr_dir / SOURCE_FILE).read_text())
        made = source[PROVENANCE]["checkpoint"]
        path = Path(source["checkpoint"])
    except (OSError, json.JSONDecodeError, KeyError, TypeError):
        return None
    run = recorded_run(attr_dir)
    if not path.is_file() and run is not None:  # the run folder moved
        path = RunFolder(run).checkpoint(path.stem)
    if not path.is_file() or file_digest(path) == made:
        return None
    return (
        f"these scores are of an earlier {path.name} than the run now holds (it was trained on "
        f"since): rerun modalens attribute with --overwrite"
    )


def folder_label(options: AttributionOptions, groups: str | Groups = "modalities") -> str:
    """A readable name of the options that differ from the defaults, for the default output
    folder ``RUN/attribution/<split>-<label>`` (empty for the default options), e.g.
    ``zeros+mean-output-shapley-bands``; options without a short name (and labels longer than
    60 characters) add a fingerprint, ``cfg-<8 hex digits>``.

    Args:
        options: the resolved options.
        groups: ``"modalities"``, ``"bands"`` or explicit channel groups.
    """
    default = AttributionOptions()
    tokens = [
        "+".join(getattr(options, f))
        for f in ("strategies", "distances", "levels")
        if getattr(options, f) != getattr(default, f)
    ]
    if options.shapley:
        tokens.append("shapley" if options.shapley is True else f"shapley-{options.shapley}")
    tokens += [
        f"{f}{getattr(options, f)}"
        for f in ("draws", "seed")
        if getattr(options, f) != getattr(default, f)
    ]
    if options.precision != default.precision:
        tokens.append(options.precision)
    if options.precision == "auto" and options.tolerance != default.tolerance:
        tokens.append(f"tol{options.tolerance:g}")
    if groups == "bands":
        tokens.append("bands")
    named = ("strategies", "distances", "levels", "draws", "seed", "precision", "mean", "nodata")
    same = options.replace(**{f: getattr(default, f) for f in named}).resume_settings()
    unnamed = same != default.replace(shapley=options.shapley).resume_settings()
    unnamed = unnamed or not isinstance(groups, str)
    label = "-".join(tokens)
    if unnamed or len(label) > 60:
        key = json.dumps([options.resume_settings(), str(groups)], sort_keys=True, default=str)
        short = "cfg-" + hashlib.sha256(key.encode()).hexdigest()[:8]
        label = f"{label}-{short}" if label and len(label) <= 60 else short
    return label


def run_mean(run: Any) -> list[float]:
    """Per-channel train means in normalised space from a run's statistics (``stats.json``).

    Args:
        run: a loaded run (:func:`modalens.training.run.load_run`).

    Returns:
        One value per input channel (class frequencies for one-hot modalities).

    Raises:
        DataError: the statistics lack a modality's means (no ``stats.json``, or one written
            for other modalities): the ``mean`` fill is never silently replaced by zeros.
    """
    raw = run.stats.get("modalities", run.stats) if isinstance(run.stats, Mapping) else {}
    raw = raw if isinstance(raw, Mapping) else {}
    vals: list[float] = []
    for m in run.spec.modalities:
        entry = raw.get(m.name)
        entry = entry if isinstance(entry, Mapping) else {}
        if m.normalization.type == "onehot":
            freq = entry.get("class_frequencies") or entry.get("frequencies")
            if freq is None:
                raise _no_means(run, m.name, "class frequencies")
            if isinstance(freq, Mapping):
                freq = [freq.get(str(c), freq.get(c, 0.0)) for c in m.classes or ()]
            vals.extend(float(f) for f in freq)
            continue
        mean = entry.get("mean")
        if mean is None:
            raise _no_means(run, m.name, "train means")
        arr = np.asarray(mean, dtype=np.float64).reshape(-1, 1, 1)
        vals.extend(np.asarray(normalize(m, arr)).reshape(-1).astype(float).tolist())
    if len(vals) != run.spec.n_channels:
        raise DataError(
            f"the run's statistics give {len(vals)} train means for "
            f"{run.spec.n_channels} input channels",
            str(run.folder.stats),
            _MEAN_FIX,
        )
    return vals


#: how to get the ``mean`` fill of a run whose statistics lack it
_MEAN_FIX = (
    "restore the run's stats.json (modalens fit writes it), pass mean= (one normalised value "
    "per channel) or choose another fill (--strategy zeros)"
)


def _no_means(run: Any, modality: str, what: str) -> DataError:
    path = run.folder.stats
    where = f"{path}, modality {modality!r}" if path.is_file() else f"{path} is missing"
    return DataError(f"the run's statistics have no {what} for the mean fill", where, _MEAN_FIX)


def run_options(run: Any, options: AttributionOptions) -> AttributionOptions:
    """``options`` completed with what a run gives and they leave open: the train means of the
    ``mean`` fill (:func:`run_mean`), the ``nodata`` fill (:func:`run_nodata`) and the task's
    per-sample loss of the ``loss`` level. Every verb that attributes a run uses it, so a fill
    is the same (or the same one-line error) everywhere.

    Args:
        run: a loaded run (:func:`modalens.training.run.load_run`).
        options: the resolved options.

    Returns:
        The options to score with.

    Raises:
        DataError: a ``mean`` (or ``nodata`` on a continuous modality) fill without ``mean=``
            for a run whose statistics lack the means.
    """
    strategies = set(options.strategies)
    continuous = any(not m.is_categorical for m in run.spec.modalities)
    mean: Sequence[float] | None = options.mean
    nodata: Sequence[float] | None = options.nodata
    loss_fn = options.loss_fn
    if mean is None and ("mean" in strategies or ("nodata" in strategies and continuous)):
        mean = run_mean(run)
    if nodata is None and "nodata" in strategies:
        nodata = run_nodata(run.spec, mean)
    if loss_fn is None and ("loss" in options.levels or options.levels == (AUTO_LEVEL,)):
        loss_fn = run.task.loss
    return options.replace(mean=mean, nodata=nodata, loss_fn=loss_fn)


def nodata_code(m: Modality) -> float:
    """The raw code of categorical modality ``m`` that no class maps to: its no-data value
    when that is finite and no class uses it, else one class step (the smallest gap between
    classes, 1 for a single class) below the smallest class."""
    classes = sorted(float(c) for c in (m.classes or ()))
    nd = m.nodata
    if nd is not None and math.isfinite(nd) and nd not in classes:
        return float(nd)
    if not classes:
        return -1.0
    gaps = np.diff(classes)
    return classes[0] - (float(gaps.min()) if len(gaps) else 1.0)


def run_nodata(spec: DatasetSpec, mean: Sequence[float] | None) -> list[float]:
    """Per-channel fill of the ``nodata`` strategy in normalised space (see
    :func:`~.strategies.nodata`): categorical channels get :func:`nodata_code` normalised
    (one-hot: 0 on every class channel), continuous channels the train mean ``mean``.

    Args:
        spec: the run's spec (normalisation complete).
        mean: the per-channel means (:func:`run_mean`); None only for a spec without
            continuous modalities.

    Returns:
        One value per input channel.

    Raises:
        SpecError: ``mean`` is None and the spec has a continuous modality.
    """
    values: list[float] = []
    for m, sl in zip(spec.modalities, spec.channel_slices().values(), strict=True):
        if not m.is_categorical:
            if mean is None:
                raise SpecError(
                    f"the nodata fill of the continuous modality {m.name!r} is its train mean",
                    "mean=",
                    "pass the per-channel train means (run_mean(run))",
                )
            values.extend(float(v) for v in mean[sl])
        elif m.normalization.type == "onehot":
            values.extend([0.0] * m.n_channels)
        else:
            raw = np.full((len(m.bands), 1, 1), nodata_code(m), dtype=np.float32)
            values.extend(np.asarray(normalize(m, raw), dtype=np.float64).reshape(-1).tolist())
    return values


def masks_inputs(run: Any) -> bool:
    """Whether the run's model was trained on inputs zeroed where they are invalid (its
    ``mask_invalid_inputs``; True for runs that do not say), so attribution feeds it the same."""
    return bool(getattr(getattr(run.module, "hparams", {}), "mask_invalid_inputs", True))


def lazy_batches(dataset: Any, batch_size: int) -> list[LazyBatch]:
    """Batches of ``dataset`` in order whose items are read only when needed.

    Args:
        dataset: indexable items (dicts for :func:`modalens.data.dataset.collate`), with
            ``ids`` when it has them (else running indices).
        batch_size: samples per batch.

    Returns:
        One :class:`LazyBatch` per ``batch_size`` samples.
    """
    ids = [str(i) for i in getattr(dataset, "ids", range(len(dataset)))]

    def load(idx: list[int]) -> dict[str, Any]:
        return collate([dataset[i] for i in idx])

    batches = []
    for s in range(0, len(dataset), max(1, batch_size)):
        idx = list(range(s, min(s + batch_size, len(dataset))))
        batches.append(LazyBatch([ids[i] for i in idx], partial(load, idx)))
    return batches


def attribute_run(
    run_dir: str | Path,
    split: str = "test",
    options: AttributionOptions | None = None,
    *,
    groups: str | Groups = "modalities",
    out: str | Path | None = None,
    batch_size: int = 8,
    progress: bool = True,
    ids: Sequence[str] | None = None,
    resume: bool = True,
    figure: bool = True,
    on_batch: Callable[[int, pd.DataFrame], None] | None = None,
    data_root: str | Path | None = None,
    devices: int = 1,
    num_nodes: int = 1,
    accelerator: str = "auto",
    report: Callable[[str], None] | None = None,
    **overrides: Any,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Attribute a trained run on a split (see the module docstring).

    With ``devices`` x ``num_nodes`` above 1 the attribution is sharded
    (:mod:`~.sharding`): Fabric starts the processes (or joins those of ``torchrun`` /
    ``srun``), each scores its share of the batches into the shared ``OUT/parts``, and rank
    0 alone writes the dataset-level files -- the same files and rows as one process.

    Args:
        run_dir: the run folder.
        split: ``train``, ``val`` or ``test``.
        options: the :class:`~.options.AttributionOptions` (default: all defaults, strategy
            ``mean``).
        groups: ``"modalities"``, ``"bands"`` or explicit channel groups.
        out: the result folder (default ``RUN/attribution/<split>`` for the default options,
            ``RUN/attribution/<split>-<label>`` for others, :func:`folder_label`: results of
            different options are kept side by side).
        batch_size: samples per batch.
        progress: show a progress bar.
        ids: only these samples of the split.
        resume: keep the samples of an earlier run of the same configuration (see
            :func:`~.api.attribute`): the same options, split, samples, checkpoint content
            (sha256), data files (sizes and modification times) and package version -- anything
            else is refused in one line; another torch thread count warns. False replaces the
            folder's scores (``--overwrite``), whatever configuration they had.
        figure: write ``influence.png``.
        on_batch: ``on_batch(index, rows)`` after every scored batch.
        data_root: points the run's spec at another copy of the data.
        devices: processes per node (GPUs, or CPU processes); 1 runs in this process.
        num_nodes: machines of a sharded run.
        accelerator: ``auto``, ``cpu``, ``gpu``/``cuda`` or ``mps``.
        report: ``report(text)`` on rank 0 with the summary table (the CLI prints it).
        **overrides: fields of :class:`~.options.AttributionOptions`.

    A run whose training did not finish (``state.json``,
    :mod:`~modalens.training.runstate`) is attributed after one warning line naming the epoch
    reached and the command that finishes it.

    Returns:
        ``(scores, summary)`` (on ranks other than 0 of a sharded run: empty tables).

    Raises:
        SpecError: invalid options, batch size, devices or accelerator.
        ModalensError: the run or its data cannot be read, or ``out`` holds another
            configuration.
        DataError: the ``mean`` fill for a run whose statistics lack the means
            (:func:`run_mean`).
        OutputError: a result, ``influence.png`` included, cannot be written (a figure with
            nothing to draw is a warning).
    """
    if int(batch_size) < 1:
        raise SpecError(
            f"batch size must be at least 1, got {batch_size}",
            "batch_size",
            "pass a positive batch size, e.g. --batch-size 8",
        )
    opts = resolve_options(options, **overrides)
    with launch(devices, num_nodes, accelerator) as shard:
        if shard.device is not None and opts.device is None:
            opts = opts.replace(device=str(shard.device))
        run = load_run(run_dir, data_root=data_root)
        if shard.main:
            warn_if_unfinished(run_dir)
        if out is None:
            out = RunFolder(run_dir).attribution(split, folder_label(opts, groups))
        out = Path(out)
        if not resume and shard.main:  # replacing: an earlier result must not look like this one's
            results = (SOURCE_FILE, "scores.parquet", "summary.csv", "summary.txt", "pairwise.csv")
            for name in results:
                (out / name).unlink(missing_ok=True)
        grp = groups_for(run.spec, groups)
        scoring = run_options(run, opts)
        dataset = run.dataset(split, ids=ids)
        requested = [str(i) for i in getattr(dataset, "ids", range(len(dataset)))]
        ids_hash = hashlib.sha256("\n".join(requested).encode()).hexdigest()[:16]
        # what produced the scores: a changed checkpoint or data refuses reuse of the parts
        made = provenance(checkpoint=run.checkpoint, data=data_identity(run.spec, requested))

        scores = attribute(
            run.model,
            lazy_batches(dataset, batch_size),
            grp,
            scoring,
            mask_invalid=masks_inputs(run),
            out=out,
            resume=resume,
            on_batch=on_batch,
            progress=progress,
            resume_config={"split": split, "ids": ids_hash, PROVENANCE: made},
            shard=shard,
        )
        if not shard.main:
            return empty_rows(), summarize_scores(empty_rows(), n_boot=0)
        summary = summarize_scores(scores, seed=opts.seed)
        source: dict[str, Any] = {"run": str(Path(run_dir).resolve()), "split": split}
        source.update({"checkpoint": str(run.checkpoint), PROVENANCE: made})
        source["precision"] = scores.attrs.get("precision", {"requested": opts.precision})
        atomic_write_json(out / SOURCE_FILE, source)
        atomic_write_csv(out / "summary.csv", summary)
        atomic_write_csv(out / "pairwise.csv", pairwise(scores, seed=opts.seed))
        atomic_write_text(out / "summary.txt", format_summary(summary) + "\n")
        if figure and len(summary):
            try:
                influence_bar_chart(summary, out / "influence.png")
            except DataError as exc:  # nothing to draw; a failed write (OutputError) is an error
                warnings.warn(f"{out / 'influence.png'} not written: {exc}", stacklevel=2)
        if report is not None:
            report(format_summary(summary))
        return scores, summary
