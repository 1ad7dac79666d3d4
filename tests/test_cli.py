"""CLI behaviour common to every command: one-line errors with exit code 2, --debug."""

from __future__ import annotations

import argparse
import importlib
import inspect
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel

from modalens.cli import build_parser, main


def test_user_error_is_one_line_with_exit_code_2(tmp_path: Path, capsys) -> None:
    rc = main(["data", "check", str(tmp_path / "missing"), "--preset", "mapinwild"])
    err = capsys.readouterr().err
    assert rc == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("modalens: error: dataset folder not found")
    assert str(tmp_path / "missing") in lines[0]
    assert "Traceback" not in err


def test_debug_shows_traceback(tmp_path: Path, capsys) -> None:
    rc = main(["--debug", "data", "check", str(tmp_path / "missing"), "--preset", "mapinwild"])
    err = capsys.readouterr().err
    assert rc == 2
    assert "Traceback" in err


def test_debug_flag_after_command(tmp_path: Path, capsys) -> None:
    rc = main(["data", "check", str(tmp_path / "missing"), "--preset", "mapinwild", "--debug"])
    assert rc == 2
    assert "Traceback" in capsys.readouterr().err


def test_bad_preset_option(tmp_path: Path, capsys) -> None:
    rc = main(["data", "check", str(tmp_path), "--preset", "mapinwild", "--option", "target"])
    assert rc == 2
    assert "bad option 'target'" in capsys.readouterr().err


def test_usage_error_exit_code_2() -> None:
    with pytest.raises(SystemExit) as info:
        main(["attribute"])
    assert info.value.code == 2


def test_attribute_out_is_a_file_is_one_line_exit_2(tiny_run: Path, tmp_path: Path, capsys) -> None:
    run = tiny_run
    capsys.readouterr()
    target = tmp_path / "not_a_folder.txt"
    target.write_text("x")
    rc = main(["attribute", str(run), "--out", str(target), "--quiet"])
    err = capsys.readouterr().err
    assert rc == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("modalens: error:")
    assert str(target) in lines[0]
    assert "Traceback" not in err


# ============================================================================ one definition
#: each command and the library definitions (models, API functions) its options set
SOURCES = {
    "demo": ["modalens.demo:run_demo"],
    "synth": ["modalens.data.synthetic:generate"],
    "data check": ["modalens.data.specfile:resolve_spec", "modalens.data.checks:check_dataset"],
    "data tile": ["modalens.data.tiling:tile_dataset"],
    "data prepare": ["modalens.data.parts:prepare_dataset"],
    "subsets": ["modalens.validation.subsets_run:evaluate_subsets"],
    "fit": [
        "modalens.training:fit",
        "modalens.training.config:TrainConfig",
        "modalens.training.config:ModelConfig",
    ],
    "test": ["modalens.training:test"],
    "predict": ["modalens.training:predict"],
    "attribute": [
        "modalens.attribution.options:AttributionOptions",
        "modalens.attribution.run:attribute_run",
        "modalens.validation.sanity:sanity_check",
    ],
    "maps": [
        "modalens.attribution.options:AttributionOptions",
        "modalens.attribution.maps:occlusion_maps",
    ],
    "views": ["modalens.attribution.views:sample_views"],
    "ablate": ["modalens.validation:ablate"],
    "mtl fit": ["modalens.multitask:fit_multitask"],
    "mtl compare": ["modalens.multitask:compare"],
    "mtl explain": ["modalens.multitask:explain"],
    "agreement": ["modalens.validation:agreement"],
    "bench faithfulness": ["modalens.validation.faithfulness:FaithfulnessSettings"],
    "report": ["modalens.report:build_report"],
    "strategies": ["modalens.validation.strategies:compare_strategies"],
    "stratify": ["modalens.attribution.strata:stratify"],
    "prune": ["modalens.validation:prune"],
}
#: defaults that belong to the command line (the library function has none)
CLI_DEFAULTS = {("bench faithfulness", "out"): "faithfulness"}
_MISSING = object()


def _library_default(path: str, name: str) -> object:
    """The default of ``name`` in the library object at ``path`` (``_MISSING``: not there),
    read from the model's fields or the function's signature -- not through modalens.options."""
    module, attr = path.split(":")
    obj = getattr(importlib.import_module(module), attr)
    if isinstance(obj, type) and issubclass(obj, BaseModel):
        field = obj.model_fields.get(name)
        return _MISSING if field is None else field.get_default(call_default_factory=True)
    param = inspect.signature(obj).parameters.get(name)
    return _MISSING if param is None or param.default is param.empty else param.default


def _commands(parser: argparse.ArgumentParser, words: str = "") -> Iterator[tuple[str, Any]]:
    subs = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    if not subs:
        yield words, parser
    for sub in subs:
        for name, child in sub.choices.items():
            yield from _commands(child, f"{words} {name}".strip())


def _shown(value: object) -> str:
    return ",".join(map(str, value)) if isinstance(value, tuple | list) else str(value)


def test_every_command_takes_its_defaults_from_the_library() -> None:
    commands = dict(_commands(build_parser()))
    assert set(commands) == set(SOURCES)  # a new command names its sources here
    checked = 0
    for command, parser in commands.items():
        for action in parser._actions:
            if not action.option_strings or action.dest in ("help", "debug", "quiet"):
                continue
            where = (command, action.option_strings[0])
            found = [_library_default(p, action.dest) for p in SOURCES[command]]
            found = [d for d in found if d is not _MISSING]
            if not found:  # an option of the command line alone: no default of its own
                expected = CLI_DEFAULTS.get((command, action.dest))
                assert action.default is expected or action.default is False, where
                continue
            assert len({repr(d) for d in found}) == 1, where  # the sources agree
            # left out, the option is not passed: the library's default applies ...
            assert action.default is None or action.default is False, where
            default = found[0]
            if default is not None and default is not False and not action.required:
                # ... and the help says which it is (once)
                text = " ".join(action.help.split())
                assert f"default {_shown(default)}" in text and text.count("default ") == 1, where
            checked += 1
    assert checked > 60


def test_bench_faithfulness_passes_only_what_was_given(monkeypatch, capsys) -> None:
    # the module (``modalens.validation.faithfulness`` is the function of the same name)
    bench = importlib.import_module("modalens.validation.faithfulness")

    calls: list[Any] = []

    def fake(out: str, settings: Any, **kw: Any) -> None:
        calls.append(settings)
        raise KeyboardInterrupt  # stop before any output is read

    monkeypatch.setattr(bench, "faithfulness", fake)
    assert main(["bench", "faithfulness", "-q"]) == 130
    assert calls[-1] == bench.FaithfulnessSettings()
    assert main(["bench", "faithfulness", "--seeds", "0", "--epochs", "2", "-q"]) == 130
    assert calls[-1] == bench.FaithfulnessSettings(seeds=(0,), epochs=2)
    capsys.readouterr()
    assert main(["bench", "faithfulness", "--worlds", "mars", "-q"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "unknown world 'mars'" in err[0] and "--worlds" in err[0]
