"""Publication figures: every block gets a labelled panel, maps carry coordinates, PNG + SVG."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from affine import Affine
from rasterio.crs import CRS

from modalens.attribution.aggregation import summarize_scores
from modalens.attribution.figures import (
    influence_bar_chart,
    influence_figure,
    map_figure,
    occlusion_map_preview,
    value_label,
)
from modalens.errors import DataError


def _scores() -> pd.DataFrame:
    rng = np.random.default_rng(0)
    rows = []
    blocks = [("occlusion", "embedding", "euclidean"), ("occlusion", "output", "euclidean"),
              ("occlusion", "loss", "none"), ("shapley", "embedding", "euclidean")]  # fmt: skip
    for i in range(5):
        for method, level, distance in blocks:
            for strategy in ("zeros", "gaussian"):
                for group in ("s2", "s1", "viirs"):
                    rows.append(
                        {"sample_id": f"s{i}", "window": "0,0,8,8", "method": method,
                         "level": level, "distance": distance, "strategy": strategy,
                         "group": group, "draw": 0, "value": float(rng.random())}
                    )  # fmt: skip
    return pd.DataFrame(rows)


def test_influence_figure_has_a_labelled_panel_per_block(tmp_path) -> None:
    summary = summarize_scores(_scores(), n_boot=50)
    fig = influence_figure(summary)
    axes = fig.get_axes()
    assert len(axes) == 4  # one per (method, level, distance)
    titles = [ax.get_title() for ax in axes]
    # the summary's recommended order: loss, output, then the paper's embedding level
    assert titles == [
        "occlusion, loss level",
        "occlusion, output level",
        "occlusion, embedding level",
        "Shapley values, embedding level",
    ]
    for ax in axes:
        assert ax.get_xlabel() == "modality"
        assert ax.get_ylabel()
        ticks = [t.get_text() for t in ax.get_xticklabels()]
        assert ticks == ["Sentinel-2", "Sentinel-1", "VIIRS night lights"]
        assert len(ax.patches) == 6  # 3 modalities x 2 strategies
    assert axes[2].get_ylabel() == "Euclidean distance of the embedding (normalised units)"
    assert axes[0].get_ylabel().startswith("increase of the loss")
    assert axes[3].get_ylabel().startswith("Shapley value of the")
    assert "n = 5 samples" in fig._suptitle.get_text()
    legend = fig.legends[0]
    assert [t.get_text() for t in legend.get_texts()] == ["zeros", "Gaussian noise"]
    # one block only when asked
    assert len(influence_figure(summary, level="output").get_axes()) == 1
    png = influence_bar_chart(summary, tmp_path / "influence.png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert b"<svg" in (tmp_path / "influence.svg").read_bytes()[:400]
    with pytest.raises(DataError, match="no summary rows"):
        influence_figure(summary, level="nope")


def test_value_labels_name_the_quantity() -> None:
    assert value_label("occlusion", "output", "cosine") == (
        "Cosine distance of the prediction (1 - cosine similarity)"
    )


def test_map_figure_has_coordinates_and_colour_bar(tmp_path) -> None:
    arr = np.random.default_rng(0).random((20, 30)).astype(np.float32)
    arr[0, 0] = np.nan
    transform = Affine(10, 0, 634230, 0, -10, 5386280)
    fig = map_figure(arr, transform=transform, crs=CRS.from_epsg(32633), quantity="q (u)")
    ax, cbar = fig.get_axes()
    # metres drawn as km (modalens.plotting.map_axes)
    assert ax.get_xlabel() == "EPSG:32633 easting (km)"
    assert ax.get_ylabel() == "EPSG:32633 northing (km)"
    assert np.allclose(ax.get_xlim(), (634.23, 634.23 + 0.3))
    assert np.allclose(ax.get_ylim(), (5386.28 - 0.2, 5386.28))
    fig.canvas.draw()
    ticks = [t.get_text() for t in ax.get_xticklabels() if t.get_text()]
    # plain map coordinates (no offset, no scientific notation) inside the map
    values = [float(t.replace("−", "-")) for t in ticks]
    assert all(t.startswith("634.") for t in ticks), ticks
    assert any(634.23 < v < 634.53 for v in values)
    assert ax.xaxis.get_offset_text().get_text() == ""
    assert cbar.get_ylabel() == "q (u)"
    p = occlusion_map_preview(arr, tmp_path / "map.png", transform=transform, crs=None)
    assert p.exists() and p.with_suffix(".svg").exists()
    assert not list(tmp_path.glob(".*tmp*"))
