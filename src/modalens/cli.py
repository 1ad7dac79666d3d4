"""The ``modalens`` command line. Thin: every command is one call into the Python API.

User errors print one line (what, where, how to fix) and exit with code 2; ``--debug`` shows the
traceback instead.
"""

from __future__ import annotations

import argparse
import os
import sys
import traceback
from collections.abc import Collection, Sequence

from . import __version__
from .errors import ModalensError, SpecError


def _csv(value: str) -> list[str]:
    return [v.strip() for v in value.split(",") if v.strip()]


def _names_metavar(names: Sequence[str]) -> str:
    return "{" + ",".join(names) + "}[,...]"


def _help(text: str) -> str:
    """Registry help text for argparse (which %-formats help strings)."""
    return text.replace("%", "%%")


def _options(pairs: Sequence[str] | None) -> dict[str, str]:
    out: dict[str, str] = {}
    for pair in pairs or []:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise SpecError(
                f"bad option {pair!r}", "--option", "write KEY=VALUE, e.g. --option target=mask"
            )
        out[key.strip()] = value.strip()
    return out


# ---------------------------------------------------------------------------- commands
def cmd_synth(args: argparse.Namespace) -> int:
    from .data.synthetic import generate, parse_importance

    importance = parse_importance(args.importance) if args.importance else None
    out = generate(
        args.out,
        samples=args.samples,
        size=args.size,
        seed=args.seed,
        importance=importance,
        progress=not args.quiet,
    )
    print(f"wrote synthetic MapInWild-layout dataset to {out}")
    return 0


def cmd_data_check(args: argparse.Namespace) -> int:
    from .data.checks import check_dataset, format_problems, format_summary, has_errors, summarize
    from .data.specfile import resolve_spec

    spec = resolve_spec(
        args.root, config=args.config, preset=args.preset, options=_options(args.option)
    )
    problems = check_dataset(spec, progress=not args.quiet)
    print(format_summary(summarize(spec)))
    print(format_problems(problems, spec.root))
    return 2 if has_errors(problems) else 0


def cmd_fit(args: argparse.Namespace) -> int:
    from .training import fit

    overrides = {"data": {"root": args.root}} if args.root else None
    run = fit(
        args.config, out=args.out, resume=args.resume, overrides=overrides, progress=not args.quiet
    )
    print(f"run folder: {run}")
    return 0


def cmd_test(args: argparse.Namespace) -> int:
    from .training import test

    table = test(args.run, split=args.split)
    print(table.to_string(index=False))
    return 0


def cmd_predict(args: argparse.Namespace) -> int:
    from .training import predict

    paths = predict(
        args.run,
        data_root=args.data,
        ids=args.ids,
        out_dir=args.out,
        tile=args.tile,
        overlap=args.overlap,
        auxiliary=args.auxiliary,
    )
    for p in paths:
        print(p)
    return 0


def cmd_attribute(args: argparse.Namespace) -> int:
    from .attribution.aggregation import format_summary
    from .attribution.options import AttributionOptions
    from .attribution.run import attribute_run

    options = AttributionOptions(
        strategies=args.strategy,
        distances=args.distance,
        levels=args.level,
        shapley=args.shapley,
        draws=args.draws,
        seed=args.seed,
        precision=args.precision,
    )
    _scores, summary = attribute_run(
        args.run,
        split=args.split,
        options=options,
        groups=args.groups,
        out=args.out,
        batch_size=args.batch_size,
        progress=not args.quiet,
    )
    print(format_summary(summary))
    return 0


def cmd_maps(args: argparse.Namespace) -> int:
    from .attribution.maps import occlusion_maps
    from .attribution.options import AttributionOptions

    paths = occlusion_maps(
        args.run,
        ids=args.ids,
        out=args.out,
        options=AttributionOptions(strategies=args.strategy),
        data_root=args.data,
        tile=args.tile,
        overlap=args.overlap,
        progress=not args.quiet,
    )
    for p in paths:
        print(p)
    return 0


def cmd_ablate(args: argparse.Namespace) -> int:
    from .validation import ablate, format_agreement

    overrides = {"data": {"root": args.root}} if args.root else None
    result = ablate(
        args.config,
        args.out,
        seeds=args.seeds,
        overrides=overrides,
        progress=not args.quiet,
        attribute=args.attribute,
        timing_samples=args.timing_samples,
    )
    print(result.table_md.read_text().rstrip())
    print(f"wrote {result.table_csv} and {result.table_md}")
    if result.agreement is not None:
        print(format_agreement(result.agreement.table))
        print(f"wrote {', '.join(str(p) for p in result.agreement.paths.values())}")
    return 0


def cmd_mtl_fit(args: argparse.Namespace) -> int:
    from .multitask import fit_multitask

    run = fit_multitask(
        args.config, out=args.out, root=args.root, resume=args.resume, progress=not args.quiet
    )
    print(f"run folder: {run} (metrics_test.csv, parameters.csv)")
    return 0


def cmd_mtl_compare(args: argparse.Namespace) -> int:
    from .multitask import compare

    overrides = {"data": {"root": args.root}} if args.root else None
    result = compare(
        args.config, args.out, seeds=args.seeds, overrides=overrides, progress=not args.quiet
    )
    print((result.out / "mtl_compare.md").read_text().rstrip())
    print(f"wrote {result.out / 'mtl_compare.csv'}, mtl_compare.md and mtl_tests.csv")
    return 0


def cmd_agreement(args: argparse.Namespace) -> int:
    from .validation import agreement, format_agreement

    result = agreement(
        args.dir,
        attributions=args.attribution,
        seeds=args.seeds,
        metric=args.metric,
        n_boot=args.boot,
        seed=args.seed,
        progress=not args.quiet,
    )
    print(format_agreement(result.table))
    print(f"wrote {', '.join(str(p) for p in result.paths.values())}")
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    from .report import build_report

    print(f"wrote {build_report(args.dir, out=args.out, title=args.title)}")
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from .demo import run_demo

    run_demo(
        args.out, samples=args.samples, size=args.size, seed=args.seed, progress=not args.quiet
    )
    return 0


# ---------------------------------------------------------------------------- parser
def _attribution_arguments(
    attribute: argparse.ArgumentParser, maps: argparse.ArgumentParser
) -> None:
    """Options of ``attribute`` and ``maps``, whose choices and help come from the strategy,
    distance and level registries (imported only when one of these commands runs, so other
    commands and ``modalens --help`` do not load torch)."""
    from .attribution.distances import DISTANCES
    from .attribution.levels import LEVELS
    from .attribution.strategies import STRATEGIES, paper_strategies

    s = attribute
    s.add_argument("run", help="run folder")
    s.add_argument("--split", default="test", choices=["train", "val", "test"])
    s.add_argument(
        "--strategy",
        type=_csv,
        default=list(paper_strategies()),
        metavar=_names_metavar(STRATEGIES.names()),
        help="fills of the occluded channels, comma-separated (default: the paper's four "
        f"{','.join(paper_strategies())}). " + _help(STRATEGIES.describe()),
    )
    s.add_argument(
        "--distance",
        type=_csv,
        default=["euclidean"],
        metavar=_names_metavar(DISTANCES.names()),
        help="distances, comma-separated (default euclidean). " + _help(DISTANCES.describe()),
    )
    s.add_argument(
        "--level",
        type=_csv,
        default=["embedding"],
        metavar=_names_metavar(LEVELS.names()),
        help="levels, comma-separated (default embedding). " + _help(LEVELS.describe()),
    )
    s.add_argument(
        "--shapley",
        action="store_true",
        help="also Shapley values (exact up to 10 groups, sampled permutations above)",
    )
    s.add_argument("--groups", default="modalities", choices=["modalities", "bands"])
    s.add_argument("--draws", type=int, default=1, help="noise draws per sample")
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--batch-size", type=int, default=8)
    s.add_argument("--precision", default="fp32", choices=["fp32", "bf16"])
    s.add_argument("--out", help="output folder (default RUN/attribution/<split>)")

    single = STRATEGIES.names(lambda e: not e.needs_batch)
    s = maps
    s.add_argument("run", help="run folder")
    s.add_argument("--ids", type=_csv, help="comma-separated sample ids (default: test split)")
    s.add_argument("--out", required=True, help="output folder")
    s.add_argument("--data", help="dataset root (default: the run's)")
    s.add_argument(
        "--strategy",
        type=_csv,
        default=["zeros"],
        metavar=_names_metavar(single),
        help="fills, comma-separated, one map per strategy (default zeros). "
        + _help(STRATEGIES.describe(lambda e: not e.needs_batch)),
    )
    s.add_argument("--tile", type=int, default=256)
    s.add_argument("--overlap", type=int, default=64)


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

    def add_parser(name: str, **kw):  # type: ignore[no-untyped-def]
        return _add(name, parents=[common], **kw)

    sub.add_parser = add_parser  # type: ignore[method-assign]

    s = sub.add_parser("demo", help="synth -> fit -> attribute on built-in synthetic data")
    s.add_argument("--out", default="modalens-demo", help="output folder (default modalens-demo)")
    s.add_argument("--samples", type=int, default=60)
    s.add_argument("--size", type=int, default=128)
    s.add_argument("--seed", type=int, default=0)
    s.set_defaults(func=cmd_demo)

    s = sub.add_parser("synth", help="write a synthetic MapInWild-layout dataset")
    s.add_argument("out", help="output folder")
    s.add_argument("--samples", type=int, default=24)
    s.add_argument("--size", type=int, default=256)
    s.add_argument("--seed", type=int, default=0)
    s.add_argument(
        "--importance", help="planted importances, e.g. s2=0.4,s1=0.3,esa_wc=0.2,viirs=0.1"
    )
    s.set_defaults(func=cmd_synth)

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
    s.set_defaults(func=cmd_data_check)

    s = sub.add_parser("fit", help="train a model and write a run folder")
    s.add_argument("--config", required=True, help="run config YAML (see configs/)")
    s.add_argument("--out", help="run folder (default runs/<config name>)")
    s.add_argument("--root", help="override the dataset root of the config")
    s.add_argument("--resume", action="store_true", help="continue an interrupted run")
    s.set_defaults(func=cmd_fit)

    s = sub.add_parser("test", help="evaluate a run; writes metrics_<split>.csv")
    s.add_argument("run", help="run folder")
    s.add_argument("--split", default="test", choices=["train", "val", "test"])
    s.set_defaults(func=cmd_test)

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
    s.set_defaults(func=cmd_predict)

    attribute = sub.add_parser("attribute", help="modality occlusion attribution of a trained run")
    attribute.set_defaults(func=cmd_attribute)
    maps = sub.add_parser("maps", help="per-modality occlusion sensitivity maps as GeoTIFF + PNG")
    maps.set_defaults(func=cmd_maps)
    if commands is None or {"attribute", "maps"} & set(commands):
        _attribution_arguments(attribute, maps)

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
    s.set_defaults(func=cmd_ablate)

    mtl = sub.add_parser("mtl", help="modalities as auxiliary tasks (multitask models)")
    msub = mtl.add_subparsers(dest="mtl_command", required=True, metavar="MTL_COMMAND")
    s = msub.add_parser("fit", help="train, test a multitask run; parameters per head")
    s.add_argument("--config", required=True, help="multitask run config (configs/mtl-*.yaml)")
    s.add_argument("--out", help="run folder (default runs/<config name>)")
    s.add_argument("--root", help="override the dataset root of the config")
    s.add_argument("--resume", action="store_true", help="continue an interrupted run")
    s.set_defaults(func=cmd_mtl_fit)
    s = msub.add_parser("compare", help="multitask vs unimodal and input-fusion baselines")
    s.add_argument("--config", required=True, help="multitask run config (configs/mtl-*.yaml)")
    s.add_argument("--out", required=True, help="comparison folder (a rerun continues it)")
    s.add_argument("--seeds", default="0", help="comma-separated seeds, e.g. 0,1,2 (default 0)")
    s.add_argument("--root", help="override the dataset root of the config")
    s.set_defaults(func=cmd_mtl_compare)

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
    s.add_argument("--metric", help="per-sample metric of metrics_test.csv (default mae)")
    s.add_argument("--boot", type=int, default=1000, help="bootstrap draws (default 1000)")
    s.add_argument("--seed", type=int, default=0, help="bootstrap seed")
    s.set_defaults(func=cmd_agreement)

    s = sub.add_parser(
        "report", help="one self-contained HTML page from every result found in a folder"
    )
    s.add_argument("dir", help="folder holding runs, attributions, ablations, benchmarks ...")
    s.add_argument("--out", help="HTML file to write (default DIR/report.html)")
    s.add_argument("--title", help="page title (default: modalens report: <folder name>)")
    s.set_defaults(func=cmd_report)
    return p


def main(argv: Sequence[str] | None = None) -> int:
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


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
