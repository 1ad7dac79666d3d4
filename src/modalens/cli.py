"""The ``modalens`` command line. Thin: every command is one call into the Python API.

User errors print one line (what, where, how to fix) and exit with code 2; ``--debug`` shows the
traceback instead.

The command is the application, so it sets the process's thread defaults
(:func:`modalens.threads.configure_threads`) before any command imports torch; the library
itself changes no process-wide state.
"""

from __future__ import annotations

import argparse
import inspect
import os
import sys
import traceback
from collections.abc import Collection, Sequence
from typing import Any

from . import __version__
from . import commands as cmd
from .errors import ModalensError, output_error
from .threads import configure_threads


def _csv(value: str) -> list[str]:
    return [v.strip() for v in value.split(",") if v.strip()]


def _names_metavar(names: Sequence[str]) -> str:
    return "{" + ",".join(names) + "}[,...]"


def _help(text: str) -> str:
    """Registry help text for argparse (which %-formats help strings)."""
    return text.replace("%", "%%")


# ---------------------------------------------------------------------------- parser
def _parameter_default(fn: Any, name: str) -> Any:
    """The default of parameter ``name`` of library function ``fn`` (one definition)."""
    value = inspect.signature(fn).parameters[name].default
    if isinstance(value, tuple | list):
        return ",".join(str(v) for v in value)
    return value


def _signature_arguments(
    parser: argparse.ArgumentParser, fn: Any, params: dict[str, tuple[type, str]]
) -> None:
    """Options ``--<param>`` whose defaults are ``fn``'s (None on the command line: the command
    passes only what was given, :func:`modalens.commands._given`), shown in the help."""
    for name, (kind, text) in params.items():
        parser.add_argument(
            f"--{name.replace('_', '-')}",
            type=kind,
            help=f"{text} (default {_parameter_default(fn, name)})",
        )


def _attribution_arguments(
    attribute: argparse.ArgumentParser, maps: argparse.ArgumentParser
) -> None:
    """Options of ``attribute`` and ``maps``, whose choices and help come from the strategy,
    distance and level registries (imported only when one of these commands runs, so other
    commands and ``modalens --help`` do not load torch)."""
    from .attribution.distances import DISTANCES
    from .attribution.levels import LEVELS
    from .attribution.maps import occlusion_maps
    from .attribution.options import AUTO_LEVEL, PAPER, AttributionOptions
    from .attribution.run import attribute_run
    from .attribution.strategies import STRATEGIES, paper_strategies

    default = AttributionOptions()

    def shown(field: str) -> str:
        value = getattr(default, field)
        return ",".join(value) if isinstance(value, tuple) else str(value)

    s = attribute
    s.add_argument("run", help="run folder")
    s.add_argument("--split", default="test", choices=["train", "val", "test"])
    s.add_argument(
        "--strategy",
        type=_csv,
        metavar=_names_metavar(STRATEGIES.names()),
        help=f"fills of the occluded channels, comma-separated (default {shown('strategies')}, "
        f"the train mean; the paper's four: {','.join(paper_strategies())}). "
        + _help(STRATEGIES.describe()),
    )
    s.add_argument(
        "--distance",
        type=_csv,
        metavar=_names_metavar(DISTANCES.names()),
        help=f"distances, comma-separated (default {shown('distances')}). "
        + _help(DISTANCES.describe()),
    )
    s.add_argument(
        "--level",
        type=_csv,
        metavar=_names_metavar((AUTO_LEVEL, *LEVELS.names())),
        help=f"levels, comma-separated (default {shown('levels')}: loss where the split has "
        "targets, output otherwise -- the faithful choice in the faithfulness benchmark's "
        "worlds; embedding is the paper's). " + _help(LEVELS.describe()),
    )
    s.add_argument(
        "--paper",
        action="store_true",
        help="the paper's exact protocol: embedding level, fills "
        f"{','.join(PAPER['strategies'])}, euclidean distance, the ALL row",
    )
    s.add_argument(
        "--shapley",
        action="store_true",
        help="also Shapley values (exact up to 10 groups, sampled permutations above)",
    )
    s.add_argument("--groups", default="modalities", choices=["modalities", "bands"])
    s.add_argument("--draws", type=int, help=f"noise draws per sample (default {default.draws})")
    s.add_argument("--seed", type=int, help=f"seed of fills and bootstrap (default {default.seed})")
    s.add_argument(
        "--batch-size",
        type=int,
        help=f"samples per batch (default {_parameter_default(attribute_run, 'batch_size')})",
    )
    s.add_argument(
        "--precision",
        choices=["fp32", "bf16", "auto"],
        help=f"default {default.precision}; auto: bf16 where the hardware has it, scores it "
        "cannot resolve redone in fp32",
    )
    s.add_argument(
        "--tolerance",
        type=float,
        help=f"auto: relative error a bf16 score may keep (default {default.tolerance})",
    )
    s.add_argument(
        "--out", help="output folder (default RUN/attribution/<split>[-<non-default options>])"
    )
    s.add_argument("--overwrite", action="store_true", help="replace the scores in the folder")
    s.add_argument(
        "--sanity",
        action="store_true",
        help="also the model-parameter randomisation check (Adebayo et al. 2018): weights "
        "re-initialised from the head (cascading) and all at once; Spearman of each ranking "
        "with the trained one; writes sanity.csv and flags rankings that survive",
    )
    s.add_argument(
        "--sanity-samples", type=int, default=8, help="samples of the sanity check (default 8)"
    )

    single = STRATEGIES.names(lambda e: not e.needs_batch)
    s = maps
    s.add_argument("run", help="run folder")
    s.add_argument("--ids", type=_csv, help="comma-separated sample ids (default: test split)")
    s.add_argument("--out", required=True, help="output folder")
    s.add_argument("--data", help="dataset root (default: the run's)")
    s.add_argument(
        "--strategy",
        type=_csv,
        metavar=_names_metavar(single),
        help=f"fills, comma-separated, one map per strategy (default {shown('strategies')}). "
        + _help(STRATEGIES.describe(lambda e: not e.needs_batch)),
    )
    for name in ("tile", "overlap"):
        s.add_argument(
            f"--{name}",
            type=int,
            help=f"default {_parameter_default(occlusion_maps, name)}",
        )
    s.add_argument(
        "--window", type=int, help="scene classifiers: occluded window in px (default side/8)"
    )
    for s in (attribute, maps):  # sharded attribution (docs/scaling.md)
        s.add_argument("--devices", type=int, default=1, help="processes per node (default 1)")
        s.add_argument("--num-nodes", type=int, default=1, help="machines (default 1)")
        s.add_argument("--accelerator", default="auto", help="auto, cpu, gpu or mps")


def _faithfulness_arguments(s: argparse.ArgumentParser) -> None:
    """Options of ``bench faithfulness``, defaults read from :func:`faithfulness`'s signature."""
    from .validation.faithfulness import faithfulness

    worlds = "comma-separated worlds: planted, correlated, interaction, scales, real"
    _signature_arguments(
        s,
        faithfulness,
        {
            "seeds": (str, "comma-separated seeds"),
            "worlds": (str, worlds),
            "importance": (str, "planted importances of the planted world; decoy=0 adds the decoy"),
            "sparsity": (str, "planted world: share of pixels without a modality's own signal"),
            "samples": (int, "scenes per synthetic world and seed"),
            "size": (int, "scene (and real tile) size in px"),
            "epochs": (int, "epochs per run"),
        },
    )


def build_parser(commands: Collection[str] | None = None) -> argparse.ArgumentParser:
    """The argument parser; with ``commands`` only those sub-commands get their full options
    (the others still parse their name), which keeps start-up fast."""
    p = argparse.ArgumentParser(
        prog="modalens",
        description="Which input modality does my Earth-observation model rely on?",
    )
    p.add_argument("--version", action="version", version=f"modalens {__version__}")
    p.add_argument("--debug", action="store_true", help="show tracebacks for errors")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bars")
    # the same flags are accepted after the command name too (``modalens fit ... --debug``)
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--debug", action="store_true", default=argparse.SUPPRESS, help="show tracebacks for errors"
    )
    common.add_argument(
        "-q", "--quiet", action="store_true", default=argparse.SUPPRESS, help="no progress bars"
    )
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _add = sub.add_parser

    def add_parser(name: str, **kw: Any) -> argparse.ArgumentParser:
        return _add(name, parents=[common], **kw)

    sub.add_parser = add_parser  # type: ignore[method-assign]

    s = sub.add_parser("demo", help="synth -> fit -> attribute on built-in synthetic data")
    s.add_argument("--out", default="modalens-demo", help="output folder (default modalens-demo)")
    s.add_argument("--samples", type=int, default=60)
    s.add_argument("--size", type=int, default=128)
    s.add_argument("--seed", type=int, default=0)
    s.add_argument(
        "--validate",
        action="store_true",
        help="also the 9-run ablation, pruning and the faithfulness benchmark (5 worlds, 1 seed)",
    )
    s.set_defaults(func=cmd.cmd_demo)

    s = sub.add_parser("synth", help="write a synthetic MapInWild-layout dataset")
    s.add_argument("out", help="output folder")
    s.add_argument("--samples", type=int, default=24)
    s.add_argument("--size", type=int, default=256)
    s.add_argument("--seed", type=int, default=0)
    s.add_argument(
        "--importance",
        help="planted importances, e.g. s2=0.4,s1=0.3,esa_wc=0.2,viirs=0.1 (decoy=0 adds the "
        "pure-noise decoy modality)",
    )
    s.add_argument(
        "--sparsity", help="share of pixels without a modality's own signal, e.g. viirs=0.75"
    )
    s.add_argument("--decoy", action="store_true", help="add DECOY/<id>.tif (pure noise)")
    s.add_argument("--error-link", help="latent shared by target noise and s1, e.g. s1=1")
    s.add_argument("--cog", action="store_true", help="write Cloud-Optimized GeoTIFFs")
    s.add_argument("--cog-blocksize", type=int, default=128, help="COG tile size (default 128)")
    s.set_defaults(func=cmd.cmd_synth)

    d = sub.add_parser("data", help="dataset tools")
    dsub = d.add_subparsers(dest="data_command", required=True, metavar="DATA_COMMAND")
    s = dsub.add_parser(
        "check", parents=[common], help="open every sample and modality and report problems"
    )
    s.add_argument("root", help="dataset folder")
    g = s.add_mutually_exclusive_group()
    g.add_argument("--config", help="dataset spec or run config YAML")
    g.add_argument("--preset", help="built-in spec: mapinwild or bigearthnet")
    s.add_argument(
        "--option",
        action="append",
        metavar="KEY=VALUE",
        help="preset option, e.g. target=mask or s2_folder=s2_summer",
    )
    s.add_argument(
        "--min-coverage",
        type=float,
        default=0.9,
        help="report a modality whose valid values cover less of a sample (default 0.9)",
    )
    s.set_defaults(func=cmd.cmd_data_check)

    s = sub.add_parser("fit", help="train a model and write a run folder")
    s.add_argument("--config", required=True, help="run config YAML (see configs/)")
    s.add_argument("--out", help="run folder (default runs/<config name>)")
    s.add_argument("--root", help="override the dataset root of the config")
    s.add_argument("--resume", action="store_true", help="continue an interrupted run")
    # several devices / nodes (Lightning DDP): overrides of train.devices, strategy, num_nodes
    s.add_argument("--devices", help="processes per node: N or auto (train.devices)")
    s.add_argument("--strategy", help="auto | ddp | ddp_spawn | ddp_notebook (train.strategy)")
    s.add_argument("--num-nodes", type=int, help="nodes (train.num_nodes)")
    s.add_argument(
        "--sync-batchnorm", action="store_true", default=None, help="train.sync_batchnorm: true"
    )
    s.set_defaults(func=cmd.cmd_fit)

    s = sub.add_parser("test", help="evaluate a run; writes metrics_<split>.csv")
    s.add_argument("run", help="run folder")
    s.add_argument("--split", default="test", choices=["train", "val", "test"])
    s.add_argument("--out", help="metrics CSV (default RUN/metrics_<split>.csv; printed anyway)")
    s.set_defaults(func=cmd.cmd_test)

    s = sub.add_parser("predict", help="sliding-window prediction of whole scenes to GeoTIFF")
    s.add_argument("run", help="run folder")
    s.add_argument("--data", help="dataset root (default: the run's)")
    s.add_argument("--ids", type=_csv, help="comma-separated sample ids (default: test split)")
    s.add_argument("--out", required=True, help="output folder")
    s.add_argument("--tile", type=int, default=256)
    s.add_argument("--overlap", type=int, default=64)
    s.add_argument(
        "--auxiliary",
        action="store_true",
        help="multitask runs: also write the auxiliary reconstructions (OUT/auxiliary/<m>/)",
    )
    s.set_defaults(func=cmd.cmd_predict)

    attribute = sub.add_parser("attribute", help="modality occlusion attribution of a trained run")
    attribute.set_defaults(func=cmd.cmd_attribute)
    maps = sub.add_parser("maps", help="per-modality occlusion sensitivity maps as GeoTIFF + PNG")
    maps.set_defaults(func=cmd.cmd_maps)
    if commands is None or {"attribute", "maps"} & set(commands):
        _attribution_arguments(attribute, maps)

    s = sub.add_parser("views", help="sample views (Fig. 3/4): modalities, target, prediction")
    s.add_argument("run", help="run folder")
    s.add_argument("--ids", type=_csv, help="comma-separated sample ids")
    s.add_argument("--top-k", type=int, help="also the K samples of highest influence per modality")
    s.add_argument("--scores", help="attribution folder (default RUN/attribution/<split>)")
    s.add_argument("--out", required=True, help="output folder (views go to OUT/views)")
    s.add_argument("--split", default="test", choices=["train", "val", "test"])
    s.add_argument(
        "--strategy",
        help="strategy of the bars and maps (default: the scores' preferred fill, mean first)",
    )
    s.add_argument(
        "--level", help="level of the bars (default: loss, else output, else embedding)"
    )
    s.add_argument("--tile", type=int, default=256)
    s.add_argument("--overlap", type=int, default=64)
    s.set_defaults(func=cmd.cmd_views)

    s = sub.add_parser(
        "ablate", help="Table I: train all, single- and leave-one-out-modality runs (resumable)"
    )
    s.add_argument("--config", required=True, help="base run config YAML (see configs/)")
    s.add_argument("--out", required=True, help="ablation folder (a rerun continues it)")
    s.add_argument("--seeds", default="0", help="comma-separated seeds, e.g. 0,1,2 (default 0)")
    s.add_argument("--root", help="override the dataset root of the config")
    s.add_argument(
        "--attribute",
        action="store_true",
        help="then compute the agreement with occlusion influence (as modalens agreement)",
    )
    s.add_argument(
        "--timing-samples", type=int, help="time inference on this many test samples (all)"
    )
    s.set_defaults(func=cmd.cmd_ablate)

    mtl = sub.add_parser("mtl", help="modalities as auxiliary tasks (multitask models)")
    msub = mtl.add_subparsers(dest="mtl_command", required=True, metavar="MTL_COMMAND")
    s = msub.add_parser("fit", help="train, test a multitask run; parameters per head")
    s.add_argument("--config", required=True, help="multitask run config (configs/mtl-*.yaml)")
    s.add_argument("--out", help="run folder (default runs/<config name>)")
    s.add_argument("--root", help="override the dataset root of the config")
    s.add_argument("--resume", action="store_true", help="continue an interrupted run")
    s.set_defaults(func=cmd.cmd_mtl_fit)
    s = msub.add_parser("compare", help="multitask vs unimodal and input-fusion baselines")
    s.add_argument("--config", required=True, help="multitask run config (configs/mtl-*.yaml)")
    s.add_argument("--out", required=True, help="comparison folder (a rerun continues it)")
    s.add_argument("--seeds", default="0", help="comma-separated seeds, e.g. 0,1,2 (default 0)")
    s.add_argument("--root", help="override the dataset root of the config")
    s.set_defaults(func=cmd.cmd_mtl_compare)
    s = msub.add_parser("explain", help="do auxiliary errors explain the main task's errors?")
    s.add_argument("run", help="multitask run folder")
    s.add_argument("--split", default="test", choices=["train", "val", "test"])
    s.add_argument("--out", help="output folder (default RUN/mtl_explain/<split>)")
    s.add_argument("--worst", type=int, default=4, help="error maps of the N worst samples")
    s.set_defaults(func=cmd.cmd_mtl_explain)

    s = sub.add_parser(
        "agreement", help="Fig. 5: ablation deviations vs occlusion influence, rank correlations"
    )
    s.add_argument("dir", help="ablation folder (modalens ablate --out)")
    s.add_argument(
        "--attribution",
        action="append",
        help="attribute output folder of the all-modality run (default: attributed as needed)",
    )
    s.add_argument("--seeds", help="comma-separated seeds (default: every finished seed)")
    s.add_argument(
        "--metric",
        help="per-sample metric of metrics_test.csv (default: the task's headline metric, "
        "e.g. mae, iou_positive, map)",
    )
    s.add_argument("--boot", type=int, default=1000, help="bootstrap draws (default 1000)")
    s.add_argument("--seed", type=int, default=0, help="bootstrap seed")
    s.set_defaults(func=cmd.cmd_agreement)

    b = sub.add_parser("bench", help="benchmarks of the attribution methods")
    bsub = b.add_subparsers(dest="bench_command", required=True, metavar="BENCH_COMMAND")
    s = bsub.add_parser(
        "faithfulness",
        help="rank correlation of every method with planted importances and a noise decoy",
    )
    s.add_argument("--out", default="faithfulness", help="output folder (default faithfulness)")
    if commands is None or "bench" in commands:  # the defaults come from the library
        _faithfulness_arguments(s)
    s.set_defaults(func=cmd.cmd_bench_faithfulness)

    s = sub.add_parser(
        "report", help="one self-contained HTML page from every result found in a folder"
    )
    s.add_argument("dir", help="folder holding runs, attributions, ablations, benchmarks ...")
    s.add_argument("--out", help="HTML file to write (default DIR/report.html)")
    s.add_argument("--title", help="page title (default: modalens report: <folder name>)")
    s.set_defaults(func=cmd.cmd_report)

    s = sub.add_parser(
        "strategies", help="Fig. 6: strategies compared (Kendall's W) and their fills checked"
    )
    s.add_argument("dir", help="attribute output folder (with summary.csv)")
    s.add_argument("--run", help="run folder (default: the one the attribution records)")
    s.add_argument(
        "--split", choices=["train", "val", "test"], help="filled samples (default: as attributed)"
    )
    s.add_argument(
        "--threshold", type=float, default=0.01, help="flag outside shares above it (0.01)"
    )
    s.add_argument("--samples", type=int, default=16, help="samples filled (default 16)")
    s.add_argument("--root", help="data root, if the run's data has moved")
    s.set_defaults(func=cmd.cmd_strategies)

    s = sub.add_parser("stratify", help="influence per stratum (index column or dominant class)")
    s.add_argument("dir", help="attribution folder (modalens attribute --out)")
    s.add_argument("--by", required=True, help="index-table COLUMN or dominant:MODALITY")
    s.add_argument("--run", help="the attributed run folder (default: the one the folder names)")
    s.add_argument("--min-samples", type=int, default=3, help="mark smaller strata (default 3)")
    s.add_argument("--root", help="dataset root (default: the run's)")
    s.set_defaults(func=cmd.cmd_stratify)

    s = sub.add_parser("prune", help="retrain without the k least influential modalities")
    s.add_argument("--config", required=True, help="base run config YAML (see configs/)")
    s.add_argument("--scores", required=True, help="attribution folder or its summary.csv")
    s.add_argument("--out", required=True, help="pruning folder (a rerun continues it)")
    s.add_argument("--tolerance", type=float, default=0.05, help="relative, default 0.05")
    s.add_argument("--seeds", default="0", help="comma-separated seeds (default 0)")
    s.add_argument("--root", help="override the dataset root of the config")
    s.add_argument("--reuse", help="ablation folder whose finished runs may be reused")
    for key in ("method", "level", "distance", "strategy"):
        s.add_argument(f"--{key}", help=f"{key} of the ranking rows (default: chosen)")
    s.set_defaults(func=cmd.cmd_prune)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``modalens`` command ``argv`` (default ``sys.argv[1:]``); the exit code.

    Sets the thread defaults first (:func:`~modalens.threads.configure_threads`: they must be in
    the environment before torch is imported, which the commands do)."""
    configure_threads()
    argv = list(sys.argv[1:] if argv is None else argv)
    command = next((a for a in argv if not a.startswith("-")), None)
    parser = build_parser(commands=[command] if command else [])
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except ModalensError as exc:
        if args.debug:
            traceback.print_exc()
        print(f"modalens: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except BrokenPipeError:
        # stdout was closed early (e.g. piped into head): not an error
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 0
    except KeyboardInterrupt:
        print(
            "modalens: interrupted; finished work is saved, rerun the same command "
            "(with --resume for fit) to continue",
            file=sys.stderr,
        )
        return 130
    except (OSError, RuntimeError) as exc:  # a write no writer translated: permissions, space
        err = output_error(exc)
        if err is None:
            raise
        if args.debug:
            traceback.print_exc()
        print(f"modalens: error: {err}", file=sys.stderr)
        return err.exit_code


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
