"""Every code block of the README and the docs (tests/docblocks.py: README.md, then the pages in
``mkdocs.yml``'s nav order) runs: its YAML parses (the dataset spec loads), its
``modalens`` commands run and its Python executes, top to bottom in one temporary folder, on
tiny data. Demo sizes are shrunk by :data:`BASH_SIZES`/:data:`PYTHON_SIZES` (the configs in
``configs/`` by :func:`_tiny_config`). A block marked
``<!-- test: skip (reason) -->`` is not run (its imports are still checked by
tests/test_readme.py); ``<!-- test: parse (reason) -->`` only parses its commands with the CLI's
parser, and ``<!-- test: parse PREFIX (reason) -->`` does so for the commands starting with
``modalens PREFIX`` and runs the others. ``modalens-demo/`` (what ``modalens demo`` writes) is
made by a tiny synth, fit and attribute. Blocks depend on earlier ones (of
the same file or an earlier one): run the whole file.

Code that names the example data beside the repository (``../shared/``) runs on it where it
exists. Where it does not (a fresh clone), a Python block that needs it is skipped, and a bash
block runs its commands up to the first that needs it; that one and the block's later commands
(which may use what it writes) are only parsed, and the block is reported as skipped with the
command that needed the data."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest
import torch
import yaml
from docblocks import ROOT, Block, all_blocks, doc_files, fences_without_language
from torch import nn

from modalens.cli import build_parser, main

SHARED = ROOT.parent / "shared"
#: how the docs name the example data beside the repository (:data:`SHARED`)
SHARED_PREFIX = "../shared/"
#: demo-size values of the docs' commands -> tiny ones
BASH_SIZES = {r"--samples \d+ --size \d+": "--samples 30 --size 32"}
PYTHON_SIZES = {"crop_size=128": "crop_size=32", 'out="runs/demo"': 'out="runs/demo-api"'}
BLOCKS = all_blocks()


def _tiny_config(src: Path, dst: Path) -> None:
    cfg = yaml.safe_load(src.read_text())
    cfg["model"].update(base_width=4, depth=2)
    t = cfg["train"]
    t.update(epochs=1, batch_size=2, patience=1)
    if t.get("crop_size"):
        t["crop_size"] = 32
    if isinstance(t.get("scheduler"), dict) and "T_0" in t["scheduler"]:
        t["scheduler"]["T_0"] = 1
    dst.write_text(yaml.safe_dump(cfg))


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The folder the docs run in: tiny configs/ and a tiny modalens-demo/."""
    from modalens.attribution import attribute_run
    from modalens.data import synthetic
    from modalens.training import fit

    work = tmp_path_factory.mktemp("readme")
    (work / "configs").mkdir()
    for src in (ROOT / "configs").glob("*.yaml"):
        _tiny_config(src, work / "configs" / src.name)
    demo = work / "modalens-demo"
    synthetic.generate_synthetic(demo / "data", samples=10, size=32, seed=0, progress=False)
    run = fit(
        work / "configs" / "demo.yaml",
        out=demo / "run",
        overrides={"data": {"root": str(demo / "data")}},
        progress=False,
    )
    attribute_run(
        run,
        strategies=["zeros", "ones", "uniform", "gaussian", "mean"],
        levels=["embedding", "output"],
        out=demo / "attribution",
        progress=False,
    )
    return work


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _commands(code: str) -> list[str]:
    out = []
    for line in code.splitlines():
        line = re.sub(r"\s+#.*$", "", line)
        out += [p.strip() for p in line.split("&&") if p.strip().startswith("modalens ")]
    return out


class _Backbone(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.layer4 = nn.Conv2d(5, 4, 3, padding=1)


class _MyModel(nn.Module):
    """The docs' ``my_model``: 5 input channels, an embedding at ``backbone.layer4``."""

    def __init__(self) -> None:
        super().__init__()
        self.backbone = _Backbone()
        self.head = nn.Conv2d(4, 1, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(torch.relu(self.backbone.layer4(x)))


def _namespace() -> dict:
    torch.manual_seed(0)
    loader = [torch.randn(2, 5, 8, 8) for _ in range(2)]
    return {"my_model": _MyModel().eval(), "loader": loader}


def test_readme_has_blocks_of_each_kind() -> None:
    kinds = {(b.lang, b.mode) for b in BLOCKS if b.path == "README.md"}
    assert {("bash", "run"), ("python", "run"), ("bash", "skip")} <= kinds
    docs = {(b.lang, b.mode) for b in BLOCKS if b.path.startswith("docs/")}
    assert {("bash", "run"), ("python", "run"), ("yaml", "run"), ("bash", "parse")} <= docs


def test_every_fence_names_its_language() -> None:
    unnamed = {str(p.relative_to(ROOT)): fences_without_language(p) for p in doc_files()}
    assert not {p: lines for p, lines in unnamed.items() if lines}, (
        "name the language of these code blocks (```bash, ```python, ```yaml; ```text for "
        "output) so that the block tests see them"
    )


@pytest.mark.parametrize("block", BLOCKS, ids=str)
def test_readme_block(block: Block, workspace: Path, monkeypatch, capsys) -> None:
    if block.mode == "skip":
        pytest.skip(f"{block} is marked skip in {block.path}")
    monkeypatch.chdir(workspace)
    if block.lang == "yaml":
        data = yaml.safe_load(block.code)
        assert isinstance(data, dict)
        if "modalities" in data:  # a dataset spec
            from modalens.data.specfile import spec_from_dict

            spec = spec_from_dict(data, source=str(block))
            assert [m.name for m in spec.modalities] == [m["name"] for m in data["modalities"]]
        elif "auxiliary" in data:  # the multitask section of a run config
            from modalens.training.config import load_config

            cfg = yaml.safe_load((workspace / "configs" / "mtl-regression.yaml").read_text())
            cfg.update(data, data={"preset": "mapinwild", "root": "modalens-demo/data"})
            assert load_config(cfg).auxiliary is not None
        return
    if block.lang == "python":
        code = block.code
        if SHARED_PREFIX in code:
            if not SHARED.exists():
                pytest.skip(f"{block} needs {SHARED}, which is absent")
            code = code.replace(SHARED_PREFIX, f"{SHARED}/")
        for old, new in PYTHON_SIZES.items():
            code = code.replace(old, new)
        from modalens.attribution.distances import DISTANCES
        from modalens.attribution.levels import LEVELS
        from modalens.attribution.strategies import STRATEGIES

        before = {r: set(r.names()) for r in (STRATEGIES, DISTANCES, LEVELS)}
        try:
            exec(compile(code, str(block), "exec"), _namespace())
        finally:  # what a block registers (the docs' "half" fill) is not left to others
            for registry, names in before.items():
                for name in set(registry.names()) - names:
                    registry.remove(name)
        return
    assert block.lang == "bash", f"{block}: no runner for {block.lang} blocks"
    parser = build_parser()
    absent: str | None = None  # the first command that needs the absent shared data
    for command in _commands(block.code):
        for pattern, new in BASH_SIZES.items():
            command = re.sub(pattern, new, command)
        command = command.replace("deployed-data", "demo-data")  # an S2-only copy in the docs
        if SHARED_PREFIX in command:
            if SHARED.exists():
                command = command.replace(SHARED_PREFIX, f"{SHARED}/")
            elif absent is None:
                absent = command
        argv = shlex.split(command)[1:]
        if absent is not None or (
            block.mode == "parse"
            and (block.prefix is None or command.startswith(f"modalens {block.prefix}"))
        ):
            parser.parse_args(argv)  # exits on an unknown flag or a bad value
            continue
        rc = main(["-q", *argv])
        assert rc == 0, f"{block}: `{command}` exited {rc}: {capsys.readouterr().err}"
    if absent is not None:
        pytest.skip(
            f"{block}: `{absent}` needs {SHARED}, which is absent; it and the block's later "
            "commands were only parsed"
        )


def test_readme_yaml_spec_example_is_valid_yaml() -> None:
    spec = next(b for b in BLOCKS if b.lang == "yaml" and "modalities:" in b.code)
    data = yaml.safe_load(spec.code)
    assert data["modalities"][1]["source"]["path"] == "s1/{id}.tif"
    assert data["target"]["source"] == "NI/{id}.tif"
