"""The ``modalens`` command line. Thin: every command is one call into the Python API.

User errors print one line (what, where, how to fix) and exit with code 2; ``--debug`` shows the
traceback instead.

The command is the application, so it sets the process's thread defaults
(:func:`modalens.threads.configure_threads`) before any command imports torch; the library
itself changes no process-wide state.
"""

from __future__ import annotations

import argparse
import os
import sys
import traceback
from collections.abc import Callable, Collection, Sequence
from typing import Any, NamedTuple, NoReturn

from . import __version__, cliargs
from . import commands as cmd
from .errors import ModalensError, output_error
from .progress import console_progress
from .threads import configure_threads


class Parser(argparse.ArgumentParser):
    """An argument parser whose usage errors are one line naming the command and where its
    help is (``modalens: error: fit: argument --devices: ... (see modalens fit --help)``),
    exit code 2, instead of the usage text followed by the error."""

    def error(self, message: str) -> NoReturn:
        head, _, command = self.prog.partition(" ")
        where = f"{command}: " if command else ""
        text = " ".join(f"{head}: error: {where}{message} (see {self.prog} --help)".split())
        self.exit(2, text + "\n")


class Command(NamedTuple):
    """A ``modalens`` command: its words, help, options and what it does."""

    words: tuple[str, ...]
    help: str
    #: adds the command's options to its parser (:mod:`.cliargs`)
    add_options: Callable[[argparse.ArgumentParser], None]
    #: runs it (:mod:`.commands`)
    run: Callable[[argparse.Namespace], int]


#: every command, in the order of ``modalens --help``
COMMANDS = (
    Command(
        ("demo",),
        "synth -> fit -> attribute on built-in synthetic data",
        cliargs.add_demo,
        cmd.cmd_demo,
    ),
    Command(
        ("synth",), "write a synthetic MapInWild-layout dataset", cliargs.add_synth, cmd.cmd_synth
    ),
    Command(
        ("data", "check"),
        "open every sample and modality and report problems",
        cliargs.add_data_check,
        cmd.cmd_data_check,
    ),
    Command(
        ("data", "tile"),
        "cut every scene into tiles (same layout, splits kept)",
        cliargs.add_data_tile,
        cmd.cmd_data_tile,
    ),
    Command(
        ("data", "prepare"),
        "merge a downloaded dataset's part folders (MapInWild), resumable",
        cliargs.add_data_prepare,
        cmd.cmd_data_prepare,
    ),
    Command(("fit",), "train a model and write a run folder", cliargs.add_fit, cmd.cmd_fit),
    Command(
        ("test",), "evaluate a run; writes metrics_<split>.csv", cliargs.add_test, cmd.cmd_test
    ),
    Command(
        ("predict",),
        "sliding-window prediction of whole scenes to GeoTIFF",
        cliargs.add_predict,
        cmd.cmd_predict,
    ),
    Command(
        ("attribute",),
        "modality occlusion attribution of a trained run",
        cliargs.add_attribute,
        cmd.cmd_attribute,
    ),
    Command(
        ("maps",),
        "per-modality occlusion sensitivity maps as GeoTIFF + PNG",
        cliargs.add_maps,
        cmd.cmd_maps,
    ),
    Command(
        ("views",),
        "sample views (Fig. 3/4): modalities, target, prediction",
        cliargs.add_views,
        cmd.cmd_views,
    ),
    Command(
        ("ablate",),
        "Table I: train all, single- and leave-one-out-modality runs (resumable)",
        cliargs.add_ablate,
        cmd.cmd_ablate,
    ),
    Command(
        ("subsets",),
        "every modality subset scored with one model; performance Shapley (resumable)",
        cliargs.add_subsets,
        cmd.cmd_subsets,
    ),
    Command(
        ("mtl", "fit"),
        "train, test a multitask run; parameters per head",
        cliargs.add_mtl_fit,
        cmd.cmd_mtl_fit,
    ),
    Command(
        ("mtl", "compare"),
        "multitask vs unimodal and input-fusion baselines",
        cliargs.add_mtl_compare,
        cmd.cmd_mtl_compare,
    ),
    Command(
        ("mtl", "explain"),
        "do auxiliary errors explain the main task's errors?",
        cliargs.add_mtl_explain,
        cmd.cmd_mtl_explain,
    ),
    Command(
        ("agreement",),
        "Fig. 5: ablation deviations vs occlusion influence, rank correlations",
        cliargs.add_agreement,
        cmd.cmd_agreement,
    ),
    Command(
        ("bench", "faithfulness"),
        "rank correlation of every method with planted importances and a noise decoy",
        cliargs.add_bench_faithfulness,
        cmd.cmd_bench_faithfulness,
    ),
    Command(
        ("report",),
        "one self-contained HTML page from every result found in a folder",
        cliargs.add_report,
        cmd.cmd_report,
    ),
    Command(
        ("strategies",),
        "Fig. 6: strategies compared (Kendall's W) and their fills checked",
        cliargs.add_strategies,
        cmd.cmd_strategies,
    ),
    Command(
        ("stratify",),
        "influence per stratum (index column or dominant class)",
        cliargs.add_stratify,
        cmd.cmd_stratify,
    ),
    Command(
        ("prune",),
        "retrain without the k least influential modalities",
        cliargs.add_prune,
        cmd.cmd_prune,
    ),
)

#: the commands that group sub-commands, and their help
GROUPS = {
    "data": "dataset tools",
    "mtl": "modalities as auxiliary tasks (multitask models)",
    "bench": "benchmarks of the attribution methods",
}


def _flags(parser: argparse.ArgumentParser, suppress: bool) -> None:
    """``--debug`` and ``-q/--quiet`` (after a command name too: ``modalens fit ... --debug``;
    ``suppress`` keeps the main parser's value when they are not repeated there)."""
    default: Any = argparse.SUPPRESS if suppress else False
    parser.add_argument(
        "--debug", action="store_true", default=default, help="show tracebacks for errors"
    )
    parser.add_argument("-q", "--quiet", action="store_true", default=default,
                        help="no progress bars")  # fmt: skip


def build_parser(commands: Collection[str] | None = None) -> argparse.ArgumentParser:
    """The argument parser; with ``commands`` only those sub-commands get their full options
    (the others still parse their name), which keeps start-up fast: a command's options are
    built from the library definitions it imports (:mod:`.cliargs`)."""
    p = Parser(
        prog="modalens",
        description="Which input modality does my Earth-observation model rely on?",
    )
    p.add_argument("--version", action="version", version=f"modalens {__version__}")
    _flags(p, suppress=False)
    common = Parser(add_help=False)
    _flags(common, suppress=True)
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")
    groups: dict[str, Any] = {}
    for words, text, add_options, run in COMMANDS:
        into = sub
        if len(words) == 2:
            if words[0] not in groups:
                group = sub.add_parser(words[0], parents=[common], help=GROUPS[words[0]])
                groups[words[0]] = group.add_subparsers(
                    dest=f"{words[0]}_command", required=True, metavar=f"{words[0].upper()}_COMMAND"
                )
            into = groups[words[0]]
        s = into.add_parser(words[-1], parents=[common], help=text)
        s.set_defaults(func=run)
        if commands is None or words[0] in commands:
            add_options(s)
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
        with console_progress():  # the library's progress lines, on stdout
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
            "(with --resume for fit) to continue (synth: the same command with --overwrite "
            "starts it again)",
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
