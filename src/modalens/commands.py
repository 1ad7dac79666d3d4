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
from typing import Any

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
    from .data.synthetic import generate_synthetic, parse_importance

    importance = parse_importance(args.importance) if args.importance else None
    out = generate_synthetic(
        args.out,
        samples=args.samples,
        size=args.size,
        seed=args.seed,
        importance=importance,
        progress=not args.quiet,
        sparsity=args.sparsity,
        decoy=args.decoy,
        error_link=args.error_link,
        cog=args.cog,
        cog_blocksize=args.cog_blocksize,
    )
    print(f"wrote synthetic MapInWild-layout dataset to {out}")
    return 0


def cmd_data_check(args: argparse.Namespace) -> int:
    from .data.checks import check_dataset, format_problems, format_summary, has_errors, summarize
    from .data.specfile import resolve_spec

    spec = resolve_spec(
        args.root, config=args.config, preset=args.preset, options=parse_options(args.option)
    )
    problems = check_dataset(spec, progress=not args.quiet, min_coverage=args.min_coverage)
    print(format_summary(summarize(spec)))
    print(format_problems(problems, spec.root))
    return 2 if has_errors(problems) else 0


def cmd_fit(args: argparse.Namespace) -> int:
    from .training import fit
    from .training.ranks import is_global_zero

    overrides: dict = {"data": {"root": args.root}} if args.root else {}
    keys = ("devices", "strategy", "num_nodes", "sync_batchnorm")
    train = {k: getattr(args, k) for k in keys if getattr(args, k, None) is not None}
    if train:
        overrides["train"] = train
    run = fit(
        args.config, out=args.out, resume=args.resume, overrides=overrides or None,
        progress=not args.quiet,
    )
    if is_global_zero():  # every rank of a multi-process run returns here
        print(f"run folder: {run}")
    return 0


def cmd_test(args: argparse.Namespace) -> int:
    from .training import evaluate

    table = evaluate(args.run, split=args.split, out=args.out)
    print(table.to_string(index=False))
    if "not_saved" in table.attrs:  # e.g. a read-only run folder: the metrics are printed
        print(f"modalens: warning: metrics not saved: {table.attrs['not_saved']}", file=sys.stderr)
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


def _given(args: argparse.Namespace, names: dict[str, str]) -> dict[str, Any]:
    """The options given on the command line (``{library name: value}``); those left out take
    the library's defaults."""
    values = {key: getattr(args, attr, None) for attr, key in names.items()}
    return {k: v for k, v in values.items() if v is not None and v is not False}


def cmd_attribute(args: argparse.Namespace) -> int:
    from .attribution.options import paper_options, resolve_options
    from .attribution.run import attribute_run

    given = _given(
        args,
        {
            "strategy": "strategies",
            "distance": "distances",
            "level": "levels",
            "shapley": "shapley",
            "draws": "draws",
            "seed": "seed",
            "precision": "precision",
            "tolerance": "tolerance",
        },
    )
    options = paper_options(**given) if args.paper else resolve_options(None, **given)
    scores, summary = attribute_run(
        args.run,
        split=args.split,
        options=options,
        groups=args.groups,
        out=args.out,
        progress=not args.quiet,
        resume=not args.overwrite,
        devices=args.devices,
        num_nodes=args.num_nodes,
        accelerator=args.accelerator,
        report=print,
        **_given(args, {"batch_size": "batch_size"}),
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

        sanity_check(
            args.run,
            split=args.split,
            options=options,
            groups=args.groups,
            samples=args.sanity_samples,
            out=args.out,
            report=print,
            **_given(args, {"batch_size": "batch_size"}),
        )
    return 0


def cmd_maps(args: argparse.Namespace) -> int:
    from .attribution.maps import occlusion_maps
    from .attribution.options import resolve_options

    paths = occlusion_maps(
        args.run,
        ids=args.ids,
        out=args.out,
        options=resolve_options(None, **_given(args, {"strategy": "strategies"})),
        data_root=args.data,
        **_given(args, {"tile": "tile", "overlap": "overlap"}),
        progress=not args.quiet,
        window=args.window,
        devices=args.devices,
        num_nodes=args.num_nodes,
        accelerator=args.accelerator,
    )
    for p in paths:
        print(p)
    return 0


def cmd_views(args: argparse.Namespace) -> int:
    from .attribution.views import sample_views

    paths = sample_views(
        args.run,
        args.scores,
        ids=args.ids,
        top_k=args.top_k,
        out=args.out,
        split=args.split,
        strategy=args.strategy,
        level=args.level,
        tile=args.tile,
        overlap=args.overlap,
        progress=not args.quiet,
    )
    print(f"wrote {len(paths) - 1} figure files and {paths[-1]}")
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


def cmd_mtl_explain(args: argparse.Namespace) -> int:
    from .multitask import describe_explanation, explain

    result = explain(args.run, args.split, args.out, worst=args.worst, progress=not args.quiet)
    print("\n".join(describe_explanation(result.tables)))
    print(f"wrote tables, figures and maps/ to {result.out}")
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


def cmd_strategies(args: argparse.Namespace) -> int:
    from .validation.strategies import compare_strategies

    result = compare_strategies(
        args.dir,
        run=args.run,
        split=args.split,
        threshold=args.threshold,
        samples=args.samples,
        data_root=args.root,
        progress=not args.quiet,
    )
    print("\n".join(result.lines))
    print(f"wrote {', '.join(str(p) for p in result.paths.values())}")
    return 0


def cmd_stratify(args: argparse.Namespace) -> int:
    from .attribution.strata import describe_strata, stratify

    table = stratify(
        args.dir, args.run, args.by, min_samples=args.min_samples, out=args.dir, data_root=args.root
    )
    print("\n".join(describe_strata(table)))
    print(f"wrote {os.path.join(args.dir, 'stratified.csv')} and stratified.png/.svg")
    return 0


def cmd_prune(args: argparse.Namespace) -> int:
    from .validation import prune

    block = {k: getattr(args, k) for k in ("method", "level", "distance", "strategy")}
    result = prune(
        args.config,
        args.scores,
        args.out,
        tolerance=args.tolerance,
        seeds=args.seeds,
        overrides={"data": {"root": args.root}} if args.root else None,
        reuse=args.reuse,
        progress=not args.quiet,
        **block,
    )
    print((result.out / "pruning.md").read_text().rstrip())
    print(f"wrote {result.out / 'pruning.csv'}, pruning.md and pruning.png/.svg")
    return 0


def cmd_bench_faithfulness(args: argparse.Namespace) -> int:
    from .validation.faithfulness import faithfulness  # the function, not its module

    names = ("seeds", "worlds", "importance", "sparsity", "samples", "size", "epochs")
    result = faithfulness(
        args.out, progress=not args.quiet, **_given(args, {n: n for n in names})
    )
    print((result.out / "faithfulness.md").read_text().rstrip())
    print(f"wrote {result.out}/faithfulness.csv, .md, .png, .svg in {result.seconds:.0f} s")
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from .demo import run_demo

    run_demo(
        args.out,
        samples=args.samples,
        size=args.size,
        seed=args.seed,
        progress=not args.quiet,
        validate=args.validate,
    )
    return 0
