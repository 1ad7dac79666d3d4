"""The public names: ``modalens.__all__`` resolves, and the retired names warn and forward."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

import modalens
from modalens.attribution import AttributionOptions
from modalens.attribution.aggregation import summarize_scores
from modalens.data.synthetic import generate_synthetic
from modalens.errors import ModalensError
from modalens.training import evaluate

DEPRECATED = {"test": "evaluate", "generate": "generate_synthetic", "summarize": "summarize_scores"}


def test_every_public_name_resolves_and_no_retired_name_is_listed() -> None:
    for name in modalens.__all__:
        assert getattr(modalens, name) is not None, name
    assert not set(DEPRECATED) & set(modalens.__all__)
    assert {"evaluate", "generate_synthetic", "summarize_scores"} <= set(modalens.__all__)
    assert modalens.evaluate is evaluate


@pytest.mark.parametrize("old,new", sorted(DEPRECATED.items()))
def test_retired_names_are_thin_wrappers(old: str, new: str) -> None:
    alias = getattr(modalens, old)
    assert alias.__name__ == old
    assert alias.__wrapped__ is getattr(modalens, new)


def test_summarize_warns_and_forwards() -> None:
    scores = pd.DataFrame(
        {
            "sample_id": ["a", "b", "a", "b"],
            "method": "occlusion",
            "level": "output",
            "distance": "euclidean",
            "strategy": "zeros",
            "group": ["s1", "s1", "s2", "s2"],
            "value": [1.0, 3.0, 2.0, 6.0],
        }
    )
    with pytest.warns(DeprecationWarning, match=r"summarize\(\) is deprecated.*summarize_scores"):
        old = modalens.summarize(scores, n_boot=0)
    pd.testing.assert_frame_equal(old, summarize_scores(scores, n_boot=0))
    assert old.set_index("group")["mean"].to_dict() == {"s1": 2.0, "s2": 4.0}


def test_generate_warns_and_forwards(tmp_path: Path) -> None:
    with pytest.warns(DeprecationWarning, match=r"generate\(\) is deprecated.*generate_synthetic"):
        old = modalens.generate(tmp_path / "old", samples=3, size=16, progress=False)
    new = generate_synthetic(tmp_path / "new", samples=3, size=16, progress=False)
    names = sorted(p.relative_to(old).as_posix() for p in old.rglob("*"))
    assert names and names == sorted(p.relative_to(new).as_posix() for p in new.rglob("*"))
    assert (old / "split_IDs.csv").read_text() == (new / "split_IDs.csv").read_text()


def test_test_warns_and_forwards(tmp_path: Path) -> None:
    with pytest.raises(ModalensError) as new:
        evaluate(tmp_path / "no-run")
    with pytest.warns(DeprecationWarning, match=r"test\(\) is deprecated.*evaluate"):
        with pytest.raises(ModalensError) as old:
            modalens.test(tmp_path / "no-run")
    assert str(old.value) == str(new.value)
    assert modalens.test.__test__ is False  # pytest does not collect an imported alias


def test_options_fingerprint_warns_and_forwards() -> None:
    options = AttributionOptions(draws=2)
    with pytest.warns(DeprecationWarning, match="resume_settings"):
        old = options.fingerprint()
    assert old == options.resume_settings()
    assert old["draws"] == 2
