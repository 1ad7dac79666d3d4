"""Model-parameter randomisation: does the explanation depend on what the model learned?

Adebayo et al. (2018, "Sanity Checks for Saliency Maps") re-initialise a trained model's weights
and compare the explanations: a method whose explanation of the randomised model looks like
that of the trained one explains the input (or the fill), not the model. Here the explanation
is the ranking of the channel groups, and the weights are re-initialised

- **cascading** from the head towards the input: the model's top-level child modules with
  weights, in reverse order of registration (for the modalens U-Net ``head``, ``ups``,
  ``downs``, ``stem``), cumulatively -- step k re-initialises the last k of them; and
- **all at once**: every child, from another random stream.

For each, the same samples are attributed with the same options as the trained model and
:func:`randomisation_check` reports, per (method, level, distance, strategy) block, Spearman's
rho of the dataset-level ranking (group means over the samples) with the trained model's
(``rho``), the mean over samples of the per-sample rank correlation (``rho_samples``), and
``p_chance``: the share of all orderings of the groups whose rho with the trained ranking is at
least as high (exact up to 8 groups; with 4 groups a random ordering reaches 0.8 one time in
6). A block whose ranking keeps rho >= :data:`SURVIVES` after the full randomisation is
``flagged``: its ranking does not depend on the learned weights.

Re-initialisation follows PyTorch's defaults (Kaiming-uniform weights, biases uniform in
+-1/sqrt(fan-in), normalisation layers reset to identity with fresh running statistics), drawn
from a ``torch.Generator`` seeded per child from the options' ``seed``, on a copy: the trained
model and the global random state are left as they were, and a seed gives the same table.
:func:`sanity_check` runs it on a trained run (``modalens attribute RUN --sanity``) and writes
``sanity.csv`` into the attribution folder; :func:`describe_sanity` reads it for the report.
"""

from __future__ import annotations

import copy
import itertools
import math
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeGuard

import numpy as np
import pandas as pd
import torch
from torch import nn

from ..attribution.aggregation import BLOCK, per_sample
from ..attribution.api import attribute
from ..attribution.groups import ALL, Groups, groups_for
from ..attribution.options import AttributionOptions, resolve_options
from ..attribution.run import folder_label, lazy_batches, masks_inputs, run_options
from ..attribution.strategies import stable_seed
from ..errors import SpecError
from ..io import atomic_write_csv
from ..plotting import label
from ..training.run import load_run
from ..training.runfolder import RunFolder
from .correlation import spearman

#: rho with the trained ranking at or above which a ranking survives full randomisation
SURVIVES = 0.8
#: what a flagged block's reading says
NOT_THE_MODEL = "the ranking does not depend on the learned weights"
SANITY_FILE = "sanity.csv"
SANITY_COLUMNS = [
    *BLOCK,
    "randomised",
    "modules",
    "n",
    "rho",
    "rho_samples",
    "p_chance",
    "ranking",
    "flagged",
]
#: normalisation layers: re-initialised to identity (their reset draws no random numbers)
NORMS = (
    nn.BatchNorm1d,
    nn.BatchNorm2d,
    nn.BatchNorm3d,
    nn.SyncBatchNorm,
    nn.InstanceNorm1d,
    nn.InstanceNorm2d,
    nn.InstanceNorm3d,
    nn.GroupNorm,
    nn.LayerNorm,
)


def cascade(model: nn.Module) -> list[str]:
    """The model's top-level children that hold weights (or statistics), head first (reverse
    registration order), e.g. ``["head", "ups", "downs", "stem"]`` for the modalens U-Net."""
    return [
        name
        for name, child in reversed(list(model.named_children()))
        if any(True for _ in itertools.chain(child.parameters(), child.buffers()))
    ]


def reinitialise(module: nn.Module, generator: torch.Generator) -> None:
    """Re-initialise every weight of ``module`` in place as PyTorch initialises new layers,
    drawing from ``generator`` (a CPU generator: ``module`` must be on the CPU)."""
    with torch.no_grad():
        for sub in module.modules():
            if isinstance(sub, NORMS):
                sub.reset_parameters()
                continue
            weight = getattr(sub, "weight", None)
            fan_in = weight.shape[1] * weight[0][0].numel() if _is_matrix(weight) else None
            for p in sub.parameters(recurse=False):
                if p.dim() >= 2:
                    nn.init.kaiming_uniform_(p, a=math.sqrt(5), generator=generator)
                else:
                    bound = 1 / math.sqrt(fan_in or max(p.numel(), 1))
                    p.uniform_(-bound, bound, generator=generator)


def _is_matrix(weight: Any) -> TypeGuard[torch.Tensor]:
    return isinstance(weight, torch.Tensor) and weight.dim() >= 2


def randomised(model: nn.Module, modules: Sequence[str], seed: int, stream: str) -> nn.Module:
    """A CPU copy of ``model`` whose top-level children ``modules`` are re-initialised
    (:func:`reinitialise`), each from its own generator seeded by ``(seed, stream, name)``: the
    cascade's step k keeps the children of step k-1 as they were and adds one.

    Raises:
        SpecError: a name that is not a child of ``model``.
    """
    children = dict(model.named_children())
    copied = copy.deepcopy(model).to("cpu").eval()
    for name in modules:
        if name not in children:
            raise SpecError(
                f"the model has no child module {name!r}",
                "modules",
                f"use some of {', '.join(children)}",
            )
        gen = torch.Generator().manual_seed(stable_seed(seed, "sanity", stream, name))
        reinitialise(copied.get_submodule(name), gen)
    return copied


def chance(reference: Sequence[float], rho: float, draws: int = 20000) -> float:
    """Share of the orderings of the groups whose Spearman rho with ``reference`` is at least
    ``rho`` (all orderings up to 8 groups, else ``draws`` seeded random ones); NaN when ``rho``
    is."""
    ref = np.asarray(reference, dtype=np.float64)
    n = ref.size
    if not np.isfinite(rho) or n < 2 or np.isnan(ref).any():
        return math.nan
    if n <= 8:
        orders = np.array(list(itertools.permutations(range(n))), dtype=np.float64)
    else:
        rng = np.random.default_rng(0)
        orders = np.argsort(rng.random((draws, n)), axis=1).astype(np.float64)
    rhos = spearman(np.broadcast_to(ref, orders.shape), orders)
    return float(np.mean(rhos >= rho - 1e-9))


def _matrices(scores: pd.DataFrame) -> dict[tuple, pd.DataFrame]:
    """Per block: the samples x groups table of per-sample scores (draws averaged)."""
    ps = per_sample(scores)
    ps = ps[ps["group"] != ALL]
    out = {}
    for key, b in ps.groupby(BLOCK, sort=False):
        table = b.pivot_table(
            index="sample_id", columns="group", values="value", aggfunc="mean", dropna=False
        )
        out[key] = table[list(dict.fromkeys(b["group"]))]
    return out


def _row(
    key: tuple, t: pd.DataFrame, other: pd.DataFrame | None, kind: str, modules: str
) -> dict[str, Any]:
    """The row of one block: the ranking of ``other`` and its correlation with ``t``."""
    r = (other if other is not None else pd.DataFrame()).reindex(index=t.index, columns=t.columns)
    t_mean, r_mean = t.mean(axis=0).to_numpy(), r.mean(axis=0).to_numpy()
    rho = rho_samples = p = math.nan
    if kind != "none":
        rho = float(spearman(t_mean, r_mean))
        per = np.atleast_1d(spearman(t.to_numpy(), r.to_numpy()))
        finite = per[np.isfinite(per)]
        rho_samples = float(finite.mean()) if finite.size else math.nan
        p = chance(t_mean, rho)
    order = sorted(range(len(r_mean)), key=lambda i: -np.nan_to_num(r_mean[i], nan=-np.inf))
    return {
        **dict(zip(BLOCK, key, strict=True)),
        "randomised": kind,
        "modules": modules,
        "n": len(t),
        "rho": rho,
        "rho_samples": rho_samples,
        "p_chance": p,
        "ranking": " > ".join(str(t.columns[i]) for i in order),
        "flagged": bool(kind == "all" and rho >= SURVIVES),
    }


def randomisation_check(
    model: nn.Module,
    batches: Sequence[Any],
    groups: Groups | str | None,
    options: AttributionOptions | None = None,
    *,
    modules: Sequence[str] | None = None,
    input_fn: Callable[[Any], Any] | None = None,
    mask_invalid: bool = False,
    **overrides: Any,
) -> pd.DataFrame:
    """Rank correlation of the trained model's group ranking with those of randomised copies
    (see the module docstring), for any model and batches.

    Args:
        model: the trained model (left unchanged).
        batches: the batches to attribute, as for :func:`~modalens.attribution.attribute`
            (read once per model: a handful of samples).
        groups: channel groups.
        options: the :class:`~modalens.attribution.AttributionOptions` (its ``seed`` seeds
            the re-initialisation too).
        modules: the top-level children re-initialised in turn, head first (default:
            :func:`cascade`); the ``all`` row re-initialises all of them from another stream.
        input_fn: prepares each batch (see :func:`~modalens.attribution.attribute`).
        mask_invalid: zero invalid input pixels, as training did.
        **overrides: fields of the options.

    Returns:
        :data:`SANITY_COLUMNS`: per block one ``none`` row (the trained ranking), one
        ``cascade`` row per step and one ``all`` row.
    """
    opts = resolve_options(options, **overrides)
    if opts.device is None:
        param = next(iter(model.parameters()), None)
        opts = opts.replace(device=str(param.device if param is not None else "cpu"))
    batches = list(batches)
    names = list(modules) if modules is not None else cascade(model)
    kw: dict[str, Any] = {"input_fn": input_fn, "mask_invalid": mask_invalid}
    trained = _matrices(attribute(model, batches, groups, opts, **kw))
    variants = [("none", "", trained)]
    steps = [("cascade", names[: k + 1]) for k in range(len(names))] + [("all", names)]
    for kind, chosen in steps:
        copied = randomised(model, chosen, opts.seed, kind)
        scores = attribute(copied, batches, groups, opts, **kw)
        variants.append((kind, "+".join(chosen), _matrices(scores)))
    rows = [
        _row(key, t, m.get(key), kind, mods)
        for key, t in trained.items()
        for kind, mods, m in variants
    ]
    return pd.DataFrame(rows, columns=SANITY_COLUMNS)


def sanity_check(
    run_dir: str | Path,
    split: str = "test",
    options: AttributionOptions | None = None,
    *,
    groups: str | Groups = "modalities",
    samples: int = 8,
    out: str | Path | None = None,
    batch_size: int = 8,
    data_root: str | Path | None = None,
    report: Callable[[str], None] | None = None,
    **overrides: Any,
) -> pd.DataFrame:
    """The model-parameter randomisation check of a trained run (``modalens attribute RUN
    --sanity``): :func:`randomisation_check` on the first ``samples`` samples of ``split``
    with the options of the attribution, written to ``sanity.csv``.

    Args:
        run_dir: the run folder.
        split: ``train``, ``val`` or ``test``.
        options: the attribution's :class:`~modalens.attribution.AttributionOptions` (the
            fills are completed from the run as :func:`~modalens.attribution.attribute_run`
            does; ``seed`` also seeds the re-initialisation).
        groups: ``"modalities"``, ``"bands"`` or explicit channel groups.
        samples: how many samples of the split (the first, in split order).
        out: the folder of ``sanity.csv`` (default: the attribution folder of these options,
            ``RUN/attribution/<split>[-<label>]``, where ``attribute_run`` writes).
        batch_size: samples per batch.
        data_root: points the run's spec at another copy of the data.
        report: ``report(text)`` with the table (the CLI prints it).
        **overrides: fields of :class:`~modalens.attribution.AttributionOptions`.

    Returns:
        The table (:data:`SANITY_COLUMNS`).

    Raises:
        SpecError: fewer than one sample or invalid options.
        ModalensError: the run or its data cannot be read, or its statistics lack the train
            means of the ``mean`` fill.
    """
    if isinstance(samples, bool) or not isinstance(samples, int) or samples < 1:
        raise SpecError(
            f"the sanity check needs at least one sample, got {samples!r}",
            "samples= / --sanity-samples",
            "e.g. 8",
        )
    opts = resolve_options(options, **overrides)
    run = load_run(run_dir, data_root=data_root)
    if out is None:
        out = RunFolder(run_dir).attribution(split, folder_label(opts, groups))
    ids = run.dataset(split).ids[:samples]
    batches = [b.load() for b in lazy_batches(run.dataset(split, ids=ids), batch_size)]
    table = randomisation_check(
        run.model,
        batches,
        groups_for(run.spec, groups),
        run_options(run, opts),
        mask_invalid=masks_inputs(run),
    )
    atomic_write_csv(Path(out) / SANITY_FILE, table)
    if report is not None:
        report(format_sanity(table))
    return table


def format_sanity(table: pd.DataFrame) -> str:
    """``sanity.csv`` as a plain-text table, one line per block and randomisation, and a
    closing line per flagged block."""
    if not len(table):
        return "sanity check: no ranked rows"
    shown = table.assign(
        block=table[BLOCK].astype(str).agg("/".join, axis=1),
        modules=table["modules"].fillna("").replace("", "(trained)"),
    )
    for col in ("rho", "rho_samples", "p_chance"):
        shown[col] = shown[col].map(lambda v: "-" if pd.isna(v) else f"{v:.2f}")
    shown["flag"] = np.where(shown["flagged"].astype(bool), "FLAG", "")
    cols = ["block", "randomised", "modules", "rho", "rho_samples", "p_chance", "ranking", "flag"]
    n = int(table["n"].max())
    lines = [
        f"model-parameter randomisation check ({n} sample{'s' if n != 1 else ''}; rho: "
        "Spearman with the trained "
        "model's ranking; p_chance: share of random orderings with rho as high)",
        shown[cols].to_string(index=False),
    ]
    lines += [f"FLAG {b}: {NOT_THE_MODEL}" for b in shown.loc[shown["flagged"], "block"]]
    return "\n".join(lines)


def describe_sanity(table: pd.DataFrame) -> list[str]:
    """Sentences on ``sanity.csv`` for the report: per block, whether its ranking survives
    the full randomisation (flagged) and where the cascade first breaks it."""
    out = []
    for _key, b in table.groupby(BLOCK, sort=False):
        first = b.iloc[0]
        name = (
            f"{label(first['level']).capitalize()}, {first['strategy']} fill "
            f"({first['method']}, {label(first['distance'])})"
        )
        full = b[b["randomised"] == "all"]
        if not len(full) or pd.isna(full["rho"].iloc[0]):
            out.append(f"{name}: no rank correlation after randomisation (constant scores).")
            continue
        rho, p = float(full["rho"].iloc[0]), full["p_chance"].iloc[0]
        odds = "" if pd.isna(p) else f"; a random ordering reaches it in {100 * p:.0f} % of cases"
        if bool(full["flagged"].iloc[0]):
            out.append(
                f"Flag — {name}: the ranking survives re-initialising every weight "
                f"(Spearman {rho:.2f} with the trained ranking{odds}): {NOT_THE_MODEL}, so it "
                "reflects the inputs or the fill more than what the model learned."
            )
            continue
        cas = b[(b["randomised"] == "cascade") & (b["rho"] < SURVIVES)]
        where = f", first once {cas['modules'].iloc[0]} is re-initialised" if len(cas) else ""
        out.append(
            f"{name}: the ranking changes when the weights are re-initialised{where} "
            f"(Spearman {rho:.2f} after all at once{odds}): it depends on the learned weights."
        )
    return out
