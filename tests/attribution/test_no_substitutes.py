"""No silent substitutes: a run without train means fails the mean fill in one line (never
zeros), other fills still work, and a figure that cannot be written is reported."""

from __future__ import annotations

import dataclasses
import errno
import shutil
from pathlib import Path

import pandas as pd
import pytest

import modalens.attribution.run as run_module
from modalens.attribution.maps import occlusion_maps
from modalens.attribution.options import AttributionOptions
from modalens.attribution.run import attribute_run, run_mean, run_options
from modalens.attribution.views import sample_views
from modalens.cli import main
from modalens.errors import DataError, OutputError
from modalens.io import atomic_path
from modalens.training import load_run

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture
def run(tiny_run: Path, tmp_path: Path) -> Path:
    """A copy of the tiny run whose ``stats.json`` is gone (an old or partly copied run)."""
    copy = Path(shutil.copytree(tiny_run, tmp_path / "run"))
    (copy / "stats.json").unlink()
    return copy


def test_statistics_without_a_modality_name_it(tiny_run: Path) -> None:
    loaded = load_run(tiny_run)
    full = run_mean(loaded)
    assert len(full) == loaded.spec.n_channels
    stats = {**loaded.stats, "modalities": dict(loaded.stats["modalities"])}
    del stats["modalities"]["viirs"]
    partial = dataclasses.replace(loaded, stats=stats)
    with pytest.raises(DataError) as info:
        run_mean(partial)
    message = str(info.value)
    assert "no train means for the mean fill" in message and "modality 'viirs'" in message
    assert str(tiny_run / "stats.json") in message and "mean=" in message
    for strategies in (["mean"], ["nodata"], ["zeros", "mean"]):  # nodata: the mean on viirs
        with pytest.raises(DataError, match="mean fill"):
            run_options(partial, AttributionOptions(strategies=strategies))
    zeros = run_options(partial, AttributionOptions(strategies="zeros"))
    assert zeros.mean is None  # not needed, not asked for
    given = run_options(partial, AttributionOptions(mean=full))
    assert given.mean == pytest.approx(full)  # an explicit mean= is used as given


def test_the_mean_fill_never_silently_becomes_zeros(run: Path, capsys) -> None:
    with pytest.raises(DataError, match=r"stats\.json is missing"):
        attribute_run(run, progress=False)
    assert not (run / "attribution" / "test" / "summary.csv").exists()
    assert main(["-q", "attribute", str(run)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("modalens: error: the run's statistics have no")
    assert "--strategy zeros" in err[0]
    with pytest.raises(DataError, match="mean fill"):
        occlusion_maps(run, ids=["100000"], out=run / "maps", strategies="mean", progress=False)
    assert not (run / "maps").exists()
    # a fill that needs no statistics still works on the same run
    _, summary = attribute_run(run, strategies="zeros", progress=False, figure=False)
    assert set(summary["strategy"]) == {"zeros"} and summary["mean"].notna().all()


def test_a_figure_that_cannot_be_written_is_an_error(tiny_run, tmp_path, monkeypatch) -> None:
    def full_disk(summary: pd.DataFrame, path: Path) -> Path:
        with atomic_path(path) as tmp:
            tmp.write_bytes(b"\x89PNG")
            raise OSError(errno.ENOSPC, "No space left on device", str(tmp))

    monkeypatch.setattr(run_module, "influence_bar_chart", full_disk)
    out = tmp_path / "attr"
    with pytest.raises(OutputError, match="disk is full") as info:
        attribute_run(tiny_run, out=out, strategies="zeros", progress=False)
    assert str(out / "influence.png") in str(info.value)
    assert (out / "summary.csv").exists() and not (out / "influence.png").exists()
    assert main(["-q", "attribute", str(tiny_run), "--strategy", "zeros", "--out", str(out)]) == 2


def test_a_figure_with_nothing_to_draw_is_a_warning(tiny_run, tmp_path, monkeypatch) -> None:
    def nothing(summary: pd.DataFrame, path: Path) -> Path:
        raise DataError("no rows to draw")

    monkeypatch.setattr(run_module, "influence_bar_chart", nothing)
    out = tmp_path / "attr"
    with pytest.warns(UserWarning) as caught:
        _, summary = attribute_run(tiny_run, out=out, strategies="zeros", progress=False)
    (warning,) = [w for w in caught if "influence.png" in str(w.message)]
    assert str(warning.message) == f"{out / 'influence.png'} not written: no rows to draw"
    assert len(summary) and (out / "summary.csv").exists()


def test_views_fill_with_the_nodata_values_of_the_run(tiny_run: Path, tmp_path: Path) -> None:
    out = tmp_path / "attr"
    attribute_run(
        tiny_run, out=out, strategies="nodata", levels="output", progress=False, figure=False
    )
    files = sample_views(
        tiny_run, out, top_k=1, out=tmp_path, strategy="nodata", level="output", tile=64,
        overlap=0, progress=False,
    )  # fmt: skip
    assert files[-1] == tmp_path / "views" / "index.csv"
    assert any(f.suffix == ".png" for f in files)
