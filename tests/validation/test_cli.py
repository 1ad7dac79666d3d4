"""``modalens ablate`` and ``modalens agreement``: one-line errors with exit code 2, output."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from modalens.cli import main
from modalens.validation import AblationResult


def _one_line_error(capsys: pytest.CaptureFixture[str], rc: int) -> str:
    err = capsys.readouterr().err
    assert rc == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("modalens: error: ") and "Traceback" not in err
    return lines[0]


def _write(path: Path, cfg: dict) -> Path:
    path.write_text(yaml.safe_dump(cfg))
    return path


def test_missing_config(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rc = main(["ablate", "--config", str(tmp_path / "nope.yaml"), "--out", str(tmp_path / "o")])
    line = _one_line_error(capsys, rc)
    assert "config file not found" in line and "nope.yaml" in line


@pytest.mark.parametrize(
    ("change", "args", "expected"),
    [
        ({}, ["--seeds", "0,x"], "bad seed 'x'"),
        ({"use": ["radar"]}, [], "unknown modality 'radar'"),
        ({"train": {"epochz": 1}}, [], "unknown config key 'train.epochz'"),
        ({"data": {"preset": "mapinwild", "root": None}}, [], "pass --root"),
    ],
)
def test_bad_config_is_one_line(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    base_config: dict,
    change: dict,
    args: list[str],
    expected: str,
) -> None:
    cfg = {**base_config, **change}
    path = _write(tmp_path / "c.yaml", cfg)
    out = tmp_path / "out"
    rc = main(["ablate", "--config", str(path), "--out", str(out), "-q", *args])
    line = _one_line_error(capsys, rc)
    assert expected in line
    assert not (out / "ablation.json").exists()  # a refused config is never recorded


def test_out_is_a_file(tmp_path: Path, capsys: pytest.CaptureFixture[str], base_config) -> None:
    path = _write(tmp_path / "c.yaml", base_config)
    target = tmp_path / "file.txt"
    target.write_text("x")
    line = _one_line_error(
        capsys, main(["ablate", "--config", str(path), "--out", str(target), "-q"])
    )
    assert "is a file" in line and str(target) in line


def test_rerun_prints_table_one(
    ablation: AblationResult,
    base_config: dict,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    path = _write(tmp_path / "c.yaml", base_config)
    rc = main(["ablate", "--config", str(path), "--out", str(ablation.out)])
    out = capsys.readouterr().out
    assert rc == 0
    assert "[1/9] all seed 0: skipped (finished)" in out
    assert "[9/9] leave-out viirs seed 0: skipped (finished)" in out
    assert "| setting | modalities | MAE | RMSE |" in out and "table1.csv" in out


def test_agreement_command(
    ablation: AblationResult, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rc = main(["agreement", str(ablation.out), "--boot", "20", "-q"])
    out = capsys.readouterr().out
    assert rc == 0
    assert "occlusion/embedding/euclidean/zeros" in out and "rho" in out
    assert "agreement.csv" in out
    line = _one_line_error(capsys, main(["agreement", str(tmp_path), "-q"]))
    assert "not an ablation folder" in line
