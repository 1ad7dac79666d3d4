"""The options of every ``modalens`` command, built from the library's definitions.

Each option that sets a library value is declared with :func:`option`: its destination is the
name of the library's field or parameter, its default on the command line is None ("not
given": the command passes only what was given, :func:`given`, so the library's default
applies) and its help states that default, read from the source
(:func:`modalens.options.option_fields`: an options model such as
:class:`~modalens.attribution.AttributionOptions`, or the signature and docstring of the API
function the command calls). No library default is written here. Each ``add_*`` function
imports its sources when it runs, so only the command being run loads them.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Sequence
from typing import Any

from pydantic import BaseModel

from .options import default_of, option_fields, shown

Source = type[BaseModel] | Callable[..., Any]
SPLITS = ("train", "val", "test")


def csv(value: str) -> list[str]:
    """A comma-separated command-line value as a list."""
    return [v.strip() for v in value.split(",") if v.strip()]


def _names_metavar(names: Sequence[str]) -> str:
    return "{" + ",".join(names) + "}[,...]"


def _escaped(text: str) -> str:
    """Help text for argparse (which %-formats help strings)."""
    return text.replace("%", "%%")


def option(
    parser: Any, source: Source, name: str, *flags: str, help: str | None = None, **kw: Any
) -> None:
    """``--name`` (or ``flags``) setting option ``name`` of ``source``.

    Args:
        parser: the parser (or argument group).
        source: the options model or API function that defines the option.
        name: the field or parameter (the destination of the parsed value).
        *flags: the option strings (default ``--<name with dashes>``).
        help: the help text (default the source's description); ``{default}`` in it is
            replaced by the default, which is appended otherwise.
        **kw: more ``add_argument`` keywords (``type``, ``choices``, ``metavar``,
            ``required``...); without ``type`` the default's type is used, a bool default
            makes a flag.
    """
    default = default_of(source, name)
    text = (option_fields(source)[name].description or "") if help is None else help
    if default is not None and default is not False and not kw.get("required"):
        note = f"default {shown(default)}"
        text = text.replace("{default}", note) if "{default}" in text else f"{text} ({note})"
    if isinstance(default, bool) and "action" not in kw:
        kw["action"] = "store_true"
    elif "type" not in kw and "choices" not in kw and "action" not in kw:
        kw["type"] = type(default) if isinstance(default, int | float) else str
    default_value = False if kw.get("action") == "store_true" else None
    if flags and "metavar" not in kw and kw.get("action") != "store_true":
        kw["metavar"] = flags[0].lstrip("-").replace("-", "_").upper()  # as the flag, not dest
    flags = flags or (f"--{name.replace('_', '-')}",)
    help_text = _escaped(text.strip())
    parser.add_argument(*flags, dest=name, default=default_value, help=help_text, **kw)


def given(args: argparse.Namespace, source: Source) -> dict[str, Any]:
    """The options of ``source`` given on the command line (those left out are absent, so
    the library's defaults apply)."""
    values = {name: getattr(args, name, None) for name in option_fields(source)}
    return {k: v for k, v in values.items() if v is not None and v is not False}


# ---------------------------------------------------------------------------- commands
def add_demo(s: argparse.ArgumentParser) -> None:
    from .demo import run_demo

    option(s, run_demo, "out", help="output folder")
    option(s, run_demo, "samples", help="scenes of the synthetic dataset")
    option(s, run_demo, "size", help="scene size in px")
    option(s, run_demo, "seed", help="seed of data, training and attribution")
    option(
        s,
        run_demo,
        "validate",
        help="also the 9-run ablation, pruning and the faithfulness benchmark (5 worlds, 1 seed)",
    )


def add_synth(s: argparse.ArgumentParser) -> None:
    from .data.synthetic import generate_synthetic

    s.add_argument("out", help="output folder")
    for name in ("samples", "size", "seed"):
        option(s, generate_synthetic, name)
    option(
        s,
        generate_synthetic,
        "importance",
        help="planted importances, e.g. s2=0.4,s1=0.3,esa_wc=0.2,viirs=0.1 (decoy=0 adds the "
        "pure-noise decoy modality)",
    )
    option(
        s,
        generate_synthetic,
        "sparsity",
        help="share of pixels without a modality's own signal, e.g. viirs=0.75",
    )
    option(s, generate_synthetic, "decoy", help="add DECOY/<id>.tif (pure noise)")
    option(
        s, generate_synthetic, "error_link", help="latent shared by target noise and s1, e.g. s1=1"
    )
    option(s, generate_synthetic, "cog", help="write Cloud-Optimized GeoTIFFs")
    option(s, generate_synthetic, "cog_blocksize", help="COG tile size")
    option(
        s,
        generate_synthetic,
        "overwrite",
        help="delete what the output folder holds first (a non-empty folder is refused otherwise)",
    )


def add_data_check(s: argparse.ArgumentParser) -> None:
    from .data.checks import check_dataset
    from .data.specfile import resolve_spec

    s.add_argument("root", help="dataset folder (relative to the working directory)")
    g = s.add_mutually_exclusive_group()
    option(g, resolve_spec, "config", help="dataset spec or run config YAML")
    add_preset_options(g, s)
    option(
        s,
        check_dataset,
        "min_coverage",
        help="report a modality whose valid values cover less of a sample",
    )


def add_data_tile(s: argparse.ArgumentParser) -> None:
    from .data.tiling import tile_dataset

    s.add_argument("root", help="dataset folder (relative to the working directory)")
    s.add_argument("out", help="a new or empty folder for the tiles")
    option(s, tile_dataset, "size", help="tile side in pixels of the first modality's grid")
    g = s.add_mutually_exclusive_group()
    option(g, tile_dataset, "config", help="dataset spec or run config YAML")
    add_preset_options(g, s)


def add_preset_options(group: Any, s: argparse.ArgumentParser) -> None:
    """``--preset NAME`` (into ``group``, exclusive with ``--config``; the registered presets
    listed) and ``--option KEY=VALUE`` (repeatable)."""
    from .data.presets import GENERIC_OPTIONS, PRESETS

    names = ", ".join(sorted(PRESETS))
    group.add_argument("--preset", help=f"built-in spec: {names}")
    s.add_argument(
        "--option",
        action="append",
        metavar="KEY=VALUE",
        help="preset option (repeatable), e.g. target=mask; every preset takes "
        f"{', '.join(GENERIC_OPTIONS)} (split=official|random)",
    )


def add_data_prepare(s: argparse.ArgumentParser) -> None:
    from .data.parts import PREPARERS, prepare_dataset

    s.add_argument("dataset", choices=sorted(PREPARERS), help="the dataset's layout")
    s.add_argument("root", help="folder where the dataset's archives were unpacked")
    option(
        s,
        prepare_dataset,
        "move",
        help="move the part files instead of linking or copying them (the parts are removed)",
    )


def add_fit(s: argparse.ArgumentParser) -> None:
    from .training import fit
    from .training.config import PRESET_DEFAULT_CONFIG, ModelConfig, TrainConfig

    g = s.add_mutually_exclusive_group(required=True)
    g.add_argument("--config", help="run config YAML (see configs/)")
    add_preset_options(g, s)
    option(s, fit, "out", help="run folder (default runs/<config name>)")
    s.add_argument("--root", help="dataset root (with --preset), or override the config's "
                   "(relative to the working directory)")  # fmt: skip
    option(s, TrainConfig, "epochs", help="override train.epochs (the config's, or the preset's "
           "packaged config; {default} where neither sets it)")  # fmt: skip
    width = PRESET_DEFAULT_CONFIG["model"]["base_width"]
    option(s, ModelConfig, "base_width", help="override model.base_width (the config's, or the "
           f"preset's packaged config; {width} for a preset without one; {{default}} in a "
           "config that does not set it)")  # fmt: skip
    option(s, fit, "resume", help="continue an interrupted run")
    # several devices / nodes (Lightning DDP): overrides of train.devices, strategy, num_nodes
    option(s, TrainConfig, "devices", type=str, help="processes per node: N or auto "
           "(train.devices)")  # fmt: skip
    option(s, TrainConfig, "strategy", help="auto | ddp | ddp_spawn | ddp_notebook "
           "(train.strategy)")  # fmt: skip
    option(s, TrainConfig, "num_nodes", help="nodes (train.num_nodes)")
    option(s, TrainConfig, "sync_batchnorm", help="train.sync_batchnorm: true")


def add_test(s: argparse.ArgumentParser) -> None:
    from .training import evaluate

    s.add_argument("run", help="run folder")
    option(s, evaluate, "split", choices=SPLITS, help="")
    option(s, evaluate, "out", help="metrics CSV (default RUN/metrics_<split>.csv; printed anyway)")
    add_data_option(s, evaluate)


def add_data_option(
    s: argparse.ArgumentParser, fn: Callable[..., Any], alias: bool = False
) -> None:
    """``--data DIR``: the run's data at another folder (``data_root`` of ``fn``); ``alias``:
    also the old spelling ``--root``, hidden."""
    option(s, fn, "data_root", "--data", help="folder holding the run's data, if it has moved "
           "(default: where the run recorded it)")  # fmt: skip
    if alias:
        s.add_argument("--root", dest="data_root", help=argparse.SUPPRESS)


def add_predict(s: argparse.ArgumentParser) -> None:
    from .training import predict

    s.add_argument("run", help="run folder")
    option(s, predict, "data_root", "--data", help="dataset root (default: the run's)")
    option(s, predict, "ids", type=csv, help="comma-separated sample ids (default: test split)")
    option(s, predict, "out_dir", "--out", required=True, help="output folder")
    option(s, predict, "tile")
    option(s, predict, "overlap")
    option(
        s,
        predict,
        "auxiliary",
        help="multitask runs: also write the auxiliary reconstructions (OUT/auxiliary/<m>/)",
    )
    option(s, predict, "missing", type=csv, help="comma-separated absent input modalities")


def add_score_options(s: argparse.ArgumentParser) -> None:
    """The options of ``attribute`` that set :class:`AttributionOptions` (choices and help
    from the strategy, distance and level registries)."""
    from .attribution.distances import DISTANCES
    from .attribution.levels import LEVELS
    from .attribution.options import AUTO_LEVEL, AttributionOptions
    from .attribution.strategies import STRATEGIES, paper_strategies

    o = AttributionOptions
    fills = STRATEGIES.describe()
    option(s, o, "strategies", "--strategy", type=csv, metavar=_names_metavar(STRATEGIES.names()),
           help="fills of the occluded channels, comma-separated ({default}, the train mean; "
           f"the paper's four: {','.join(paper_strategies())}). {fills}")  # fmt: skip
    option(s, o, "distances", "--distance", type=csv, metavar=_names_metavar(DISTANCES.names()),
           help=f"distances, comma-separated ({{default}}). {DISTANCES.describe()}")  # fmt: skip
    option(s, o, "levels", "--level", type=csv,
           metavar=_names_metavar((AUTO_LEVEL, *LEVELS.names())),
           help="levels, comma-separated ({default}: loss where the split has targets, output "
           "otherwise -- the faithful choice in the faithfulness benchmark's worlds; embedding "
           f"is the paper's). {LEVELS.describe()}")  # fmt: skip
    s.add_argument(
        "--paper",
        action="store_true",
        help="the paper's exact protocol: embedding level, fills "
        f"{','.join(paper_strategies())}, euclidean distance, the ALL row",
    )
    option(s, o, "shapley")
    option(s, o, "draws")
    option(s, o, "seed")
    option(s, o, "precision", choices=["fp32", "bf16", "auto"])
    option(s, o, "tolerance")


def add_attribute(s: argparse.ArgumentParser) -> None:
    from .attribution.run import attribute_run
    from .validation.sanity import sanity_check

    s.add_argument("run", help="run folder")
    option(s, attribute_run, "split", choices=SPLITS, help="")
    add_score_options(s)
    option(s, attribute_run, "groups", choices=["modalities", "bands"], help="")
    option(s, attribute_run, "batch_size")
    option(s, attribute_run, "out", help="output folder (default "
           "RUN/attribution/<split>[-<non-default options>])")  # fmt: skip
    add_data_option(s, attribute_run)  # also the sanity check's
    s.add_argument("--overwrite", action="store_true", help="replace the scores in the folder")
    s.add_argument(
        "--sanity",
        action="store_true",
        help="also the model-parameter randomisation check (Adebayo et al. 2018): weights "
        "re-initialised from the head (cascading) and all at once; Spearman of each ranking "
        "with the trained one; writes sanity.csv and flags rankings that survive",
    )
    option(s, sanity_check, "samples", "--sanity-samples", help="samples of the sanity check")
    add_sharding(s, attribute_run)


def add_sharding(s: argparse.ArgumentParser, fn: Callable[..., Any]) -> None:
    """Sharded attribution (docs/scaling.md): the options of ``fn`` that launch it."""
    option(s, fn, "devices", help="processes per node")
    option(s, fn, "num_nodes", help="machines")
    option(s, fn, "accelerator", help="auto, cpu, gpu or mps")


def add_maps(s: argparse.ArgumentParser) -> None:
    from .attribution.maps import occlusion_maps
    from .attribution.options import AttributionOptions
    from .attribution.strategies import STRATEGIES

    def single(entry: Any) -> bool:
        return not entry.needs_batch

    s.add_argument("run", help="run folder")
    option(s, occlusion_maps, "ids", type=csv, help="comma-separated sample ids (default: test "
           "split)")  # fmt: skip
    option(s, occlusion_maps, "out", required=True, help="output folder")
    option(s, occlusion_maps, "data_root", "--data", help="dataset root (default: the run's)")
    option(s, AttributionOptions, "strategies", "--strategy", type=csv,
           metavar=_names_metavar(STRATEGIES.names(single)),
           help="fills, comma-separated, one map per strategy ({default}). "
           + STRATEGIES.describe(single))  # fmt: skip
    option(s, occlusion_maps, "tile", help="")
    option(s, occlusion_maps, "overlap", help="")
    option(s, occlusion_maps, "window", type=int, help="scene classifiers: occluded window in px "
           "(default side/8)")  # fmt: skip
    add_sharding(s, occlusion_maps)


def add_views(s: argparse.ArgumentParser) -> None:
    from .attribution.views import sample_views

    v = sample_views
    s.add_argument("run", help="run folder")
    option(s, v, "ids", type=csv, help="comma-separated sample ids")
    option(s, v, "top_k", type=int, help="also the K samples of highest influence per modality")
    option(s, v, "attr_dir", "--scores", help="attribution folder (default "
           "RUN/attribution/<split>)")  # fmt: skip
    option(s, v, "out", required=True, help="output folder (views go to OUT/views)")
    option(s, v, "split", choices=SPLITS, help="")
    option(s, v, "strategy", help="strategy of the bars and maps (default: the scores' "
           "preferred fill, mean first)")  # fmt: skip
    option(s, v, "level", help="level of the bars (default: loss, else output, else embedding)")
    option(s, v, "tile", help="")
    option(s, v, "overlap", help="")
    add_data_option(s, v)


def add_ablate(s: argparse.ArgumentParser) -> None:
    from .validation import ablate

    s.add_argument("--config", required=True, help="base run config YAML (see configs/)")
    s.add_argument("--out", required=True, help="ablation folder (a rerun continues it)")
    option(s, ablate, "seeds", help="comma-separated seeds, e.g. 0,1,2")
    s.add_argument("--root", help="override the dataset root of the config")
    option(s, ablate, "attribute", help="then compute the agreement with occlusion influence "
           "(as modalens agreement)")  # fmt: skip
    option(s, ablate, "timing_samples", type=int, help="time inference on this many test "
           "samples (all)")  # fmt: skip


def add_subsets(s: argparse.ArgumentParser) -> None:
    from .validation import evaluate_subsets

    s.add_argument("run", help="run folder")
    option(s, evaluate_subsets, "split", help="split to score")
    option(s, evaluate_subsets, "strategy", help="fill of absent modalities (default: the "
           "run's train.modality_dropout.fill, else mean)")  # fmt: skip
    option(s, evaluate_subsets, "out", help="result folder (default RUN/subsets-<split>)")
    option(s, evaluate_subsets, "n_boot", type=int, help="bootstrap resamples")


def add_mtl_fit(s: argparse.ArgumentParser) -> None:
    from .multitask import fit_multitask

    s.add_argument("--config", required=True, help="multitask run config (configs/mtl-*.yaml)")
    option(s, fit_multitask, "out", help="run folder (default runs/<config name>)")
    option(s, fit_multitask, "root", help="override the dataset root of the config")
    option(s, fit_multitask, "resume", help="continue an interrupted run")


def add_mtl_compare(s: argparse.ArgumentParser) -> None:
    from .multitask import compare

    s.add_argument("--config", required=True, help="multitask run config (configs/mtl-*.yaml)")
    s.add_argument("--out", required=True, help="comparison folder (a rerun continues it)")
    option(s, compare, "seeds", help="comma-separated seeds, e.g. 0,1,2")
    s.add_argument("--root", help="override the dataset root of the config")


def add_mtl_explain(s: argparse.ArgumentParser) -> None:
    from .multitask import explain

    s.add_argument("run", help="multitask run folder")
    option(s, explain, "split", choices=SPLITS, help="")
    option(s, explain, "out", help="output folder (default RUN/mtl_explain/<split>)")
    option(s, explain, "worst", help="error maps of the N worst samples")
    add_data_option(s, explain)


def add_agreement(s: argparse.ArgumentParser) -> None:
    from .validation import agreement

    s.add_argument("dir", help="ablation folder (modalens ablate --out)")
    option(s, agreement, "attributions", "--attribution", action="append",
           help="attribute output folder of the all-modality run (default: attributed as "
           "needed)")  # fmt: skip
    option(s, agreement, "seeds", help="comma-separated seeds (default: every finished seed)")
    option(s, agreement, "metric", help="per-sample metric of metrics_test.csv (default: the "
           "task's headline metric, e.g. mae, iou_water, map)")  # fmt: skip
    option(s, agreement, "n_boot", "--boot", help="bootstrap draws")
    option(s, agreement, "seed", help="bootstrap seed")


def add_bench_faithfulness(s: argparse.ArgumentParser) -> None:
    from .validation.faithfulness import FaithfulnessSettings

    s.add_argument("--out", default="faithfulness", help="output folder (default faithfulness)")
    for name in FaithfulnessSettings.model_fields:
        option(s, FaithfulnessSettings, name)


def add_report(s: argparse.ArgumentParser) -> None:
    from .report import build_report

    s.add_argument("dir", help="folder holding runs, attributions, ablations, benchmarks ...")
    option(s, build_report, "out", help="HTML file to write (default DIR/report.html)")
    option(s, build_report, "title", help="page title (default: modalens report: <folder name>)")


def add_strategies(s: argparse.ArgumentParser) -> None:
    from .validation.strategies import compare_strategies

    c = compare_strategies
    s.add_argument("dir", help="attribute output folder (with summary.csv)")
    option(s, c, "run", help="run folder (default: the one the attribution records)")
    option(s, c, "split", choices=SPLITS, help="filled samples (default: as attributed)")
    option(s, c, "threshold", help="flag outside shares above it")
    option(s, c, "samples", help="samples filled")
    add_data_option(s, c, alias=True)


def add_stratify(s: argparse.ArgumentParser) -> None:
    from .attribution.strata import stratify

    s.add_argument("dir", help="attribution folder (modalens attribute --out)")
    option(s, stratify, "by", required=True, help="index-table COLUMN or dominant:MODALITY")
    option(s, stratify, "run", help="the attributed run folder (default: the one the folder "
           "names)")  # fmt: skip
    option(s, stratify, "min_samples", help="mark smaller strata")
    add_data_option(s, stratify, alias=True)


def add_prune(s: argparse.ArgumentParser) -> None:
    from .validation import prune

    s.add_argument("--config", required=True, help="base run config YAML (see configs/)")
    s.add_argument("--scores", required=True, help="attribution folder or its summary.csv")
    s.add_argument("--out", required=True, help="pruning folder (a rerun continues it)")
    option(s, prune, "tolerance", help="relative tolerance on the main metric")
    option(s, prune, "seeds", help="comma-separated seeds")
    s.add_argument("--root", help="override the dataset root of the config")
    option(s, prune, "reuse", help="ablation folder whose finished runs may be reused")
    for key in ("method", "level", "distance", "strategy"):
        option(s, prune, key, help=f"{key} of the ranking rows (default: chosen)")
