"""What each ``modalens`` command does: one call into the Python API per command.

:mod:`modalens.cli` builds the parser and handles errors; each ``cmd_*`` here imports its
stage when it runs (so ``modalens --help`` does not load torch), calls the library once and
prints the result.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from .cliargs import given
from .errors import SpecError


def parse_options(pairs: Sequence[str] | None) -> dict[str, str]:
    """``--option KEY=VALUE`` pairs as a dict (a pair without ``=`` is a one-line error)."""
    out: dict[str, str] = {}
    for pair in pairs or []:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise SpecError(
                f"bad option {pair!r}", "--option", "write KEY=VALUE, e.g. --option target=mask"
            )
        out[key.strip()] = value.strip()
    return out


def cmd_synth(args: argparse.Namespace) -> int:
    from .data.synthetic import generate_synthetic

    out = generate_synthetic(args.out, progress=not args.quiet, **given(args, generate_synthetic))
    print(f"wrote synthetic MapInWild-layout dataset to {out}")
    return 0


def cmd_data_check(args: argparse.Namespace) -> int:
    from .data.checks import check_dataset, format_problems, format_summary, has_errors, summarize
    from .data.specfile import resolve_spec

    options = parse_options(args.option)
    spec = resolve_spec(args.root, options=options, **given(args, resolve_spec))
    problems = check_dataset(spec, progress=not args.quiet, **given(args, check_dataset))
    print(format_summary(summarize(spec)))
    print(format_problems(problems, spec.root))
    return 2 if has_errors(problems) else 0


def cmd_data_tile(args: argparse.Namespace) -> int:
    from .data.tiling import tile_dataset

    options = parse_options(args.option)
    counts = tile_dataset(
        args.root, args.out, options=options, progress=not args.quiet, **given(args, tile_dataset)
    )
    print(f"tiles: {counts['tiles']} from {counts['scenes']} scene(s), {counts['files']} files")
    print(f"split: {counts['split']}")
    return 0


def cmd_data_prepare(args: argparse.Namespace) -> int:
    from .data.parts import prepare_dataset

    prepare_dataset(
        args.dataset, args.root, progress=not args.quiet, **given(args, prepare_dataset)
    )
    return 0


def cmd_fit(args: argparse.Namespace) -> int:
    from .training import fit
    from .training.config import ModelConfig, TrainConfig, config_for_preset
    from .training.ranks import is_global_zero

    if args.preset is not None:
        if not args.root:
            raise SpecError("--preset needs the dataset folder", "--root", "add --root FOLDER")
        config = config_for_preset(args.preset, args.root, parse_options(args.option))
        overrides: dict = {}
    else:
        if args.option:
            fix = "put it under the config's data.preset_options instead"
            raise SpecError("--option goes with --preset", "--option", fix)
        config = args.config
        overrides = {"data": {"root": args.root}} if args.root else {}
    for key, source in (("train", TrainConfig), ("model", ModelConfig)):
        if given(args, source):  # train.epochs, devices, strategy...; model.base_width
            overrides[key] = given(args, source)
    run = fit(config, overrides=overrides or None, progress=not args.quiet, **given(args, fit))
    if is_global_zero():  # every rank of a multi-process run returns here
        print(f"run folder: {run}")
    return 0


def cmd_test(args: argparse.Namespace) -> int:
    from .training import evaluate

    table = evaluate(args.run, **given(args, evaluate))
    print(table.to_string(index=False))
    if "not_saved" in table.attrs:  # e.g. a read-only run folder: the metrics are printed
        print(f"modalens: warning: metrics not saved: {table.attrs['not_saved']}", file=sys.stderr)
    return 0


def cmd_predict(args: argparse.Namespace) -> int:
    from .training import predict

    paths = predict(args.run, **given(args, predict))
    for p in paths:
        print(p)
    return 0


def cmd_attribute(args: argparse.Namespace) -> int:
    from .attribution.options import AttributionOptions, paper_options, resolve_options
    from .attribution.run import attribute_run

    chosen = given(args, AttributionOptions)
    options = paper_options(**chosen) if args.paper else resolve_options(None, **chosen)
    scores, summary = attribute_run(
        args.run,
        options=options,
        progress=not args.quiet,
        resume=not args.overwrite,
        report=print,
        **given(args, attribute_run),
    )
    used = scores.attrs.get("precision") or {}  # none on ranks other than 0
    if "fp32_share" in used:
        print(
            f"precision auto: {used['fp32']} of {used['occlusions']} occlusions evaluated in "
            f"fp32 ({100 * used['fp32_share']:.1f} %), the others in bf16"
        )
    elif used and args.precision == "auto":
        print(f"precision auto: no native bf16 here, ran {used.get('used', 'fp32')}")
    if args.sanity and len(summary):  # rank 0 only: the other ranks of a sharded run get none
        from .validation.sanity import sanity_check

        sanity_check(args.run, options=options, report=print, **given(args, sanity_check))
    return 0


def cmd_maps(args: argparse.Namespace) -> int:
    from .attribution.maps import occlusion_maps
    from .attribution.options import AttributionOptions, resolve_options

    paths = occlusion_maps(
        args.run,
        options=resolve_options(None, **given(args, AttributionOptions)),
        progress=not args.quiet,
        **given(args, occlusion_maps),
    )
    for p in paths:
        print(p)
    return 0


def cmd_views(args: argparse.Namespace) -> int:
    from .attribution.views import sample_views

    paths = sample_views(args.run, progress=not args.quiet, **given(args, sample_views))
    print(f"wrote {len(paths) - 1} figure files and {paths[-1]}")
    return 0


def cmd_ablate(args: argparse.Namespace) -> int:
    from .validation import ablate, format_agreement

    overrides = {"data": {"root": args.root}} if args.root else None
    result = ablate(
        args.config, args.out, overrides=overrides, progress=not args.quiet, **given(args, ablate)
    )
    print(result.table_md.read_text().rstrip())
    print(f"wrote {result.table_csv} and {result.table_md}")
    if result.agreement is not None:
        print(format_agreement(result.agreement.table))
        print(f"wrote {', '.join(str(p) for p in result.agreement.paths.values())}")
    return 0


def cmd_subsets(args: argparse.Namespace) -> int:
    from .validation import evaluate_subsets

    result = evaluate_subsets(args.run, progress=not args.quiet, **given(args, evaluate_subsets))
    print(result.table.to_string(index=False))
    print(result.shapley[["modality", "shapley", "low", "high"]].to_string(index=False))
    print(f"wrote {result.out}")
    return 0


def cmd_mtl_fit(args: argparse.Namespace) -> int:
    from .multitask import fit_multitask

    run = fit_multitask(args.config, progress=not args.quiet, **given(args, fit_multitask))
    print(f"run folder: {run} (metrics_test.csv, parameters.csv)")
    return 0


def cmd_mtl_compare(args: argparse.Namespace) -> int:
    from .multitask import compare

    overrides = {"data": {"root": args.root}} if args.root else None
    result = compare(
        args.config, args.out, overrides=overrides, progress=not args.quiet,
        **given(args, compare),
    )  # fmt: skip
    print((result.out / "mtl_compare.md").read_text().rstrip())
    print(f"wrote {result.out / 'mtl_compare.csv'}, mtl_compare.md and mtl_tests.csv")
    return 0


def cmd_mtl_explain(args: argparse.Namespace) -> int:
    from .multitask import describe_explanation, explain

    result = explain(args.run, progress=not args.quiet, **given(args, explain))
    print("\n".join(describe_explanation(result.tables)))
    print(f"wrote tables, figures and maps/ to {result.out}")
    return 0


def cmd_agreement(args: argparse.Namespace) -> int:
    from .validation import agreement, format_agreement

    result = agreement(args.dir, progress=not args.quiet, **given(args, agreement))
    print(format_agreement(result.table))
    print(f"wrote {', '.join(str(p) for p in result.paths.values())}")
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    from .report import build_report

    print(f"wrote {build_report(args.dir, **given(args, build_report))}")
    return 0


def cmd_strategies(args: argparse.Namespace) -> int:
    from .validation.strategies import compare_strategies

    result = compare_strategies(
        args.dir, progress=not args.quiet, **given(args, compare_strategies)
    )
    print("\n".join(result.lines))
    print(f"wrote {', '.join(str(p) for p in result.paths.values())}")
    return 0


def cmd_stratify(args: argparse.Namespace) -> int:
    from .attribution.strata import describe_strata, stratify

    table = stratify(args.dir, out=args.dir, **given(args, stratify))
    print("\n".join(describe_strata(table)))
    print(f"wrote {os.path.join(args.dir, 'stratified.csv')} and stratified.png/.svg")
    return 0


def cmd_prune(args: argparse.Namespace) -> int:
    from .validation import prune

    result = prune(
        args.config,
        args.scores,
        args.out,
        overrides={"data": {"root": args.root}} if args.root else None,
        progress=not args.quiet,
        **given(args, prune),
    )
    print((result.out / "pruning.md").read_text().rstrip())
    print(f"wrote {result.out / 'pruning.csv'}, pruning.md and pruning.png/.svg")
    return 0


def cmd_bench_faithfulness(args: argparse.Namespace) -> int:
    from .validation.faithfulness import FaithfulnessSettings, faithfulness

    settings = FaithfulnessSettings(**given(args, FaithfulnessSettings))
    result = faithfulness(args.out, settings, progress=not args.quiet)
    print((result.out / "faithfulness.md").read_text().rstrip())
    print(f"wrote {result.out}/faithfulness.csv, .md, .png, .svg in {result.seconds:.0f} s")
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from .demo import run_demo

    run_demo(progress=not args.quiet, **given(args, run_demo))
    return 0
