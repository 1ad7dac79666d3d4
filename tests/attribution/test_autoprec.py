"""``precision="auto"``: the re-evaluation rule, its guarantee against fp32, the fallbacks."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from modalens.attribution import (
    AttributionOptions,
    OcclusionEngine,
    groups_from_spec,
    summarize_scores,
)
from modalens.attribution.autoprec import hopeless, needs_fp32, noise_floor, score_bounds
from modalens.attribution.run import folder_label
from modalens.cli import build_parser, main
from modalens.errors import SpecError
from modalens.models import UNet
from modalens.precision import NATIVE_BF16_ENV, native_bf16, resolve_auto
from modalens.training import load_run
from modalens.training.config import TrainConfig

GROUPS = {"s2": list(range(10)), "s1": [10, 11], "esa_wc": [12], "viirs": [13]}
KEYS = ["sample_id", "method", "level", "distance", "strategy", "group", "draw"]
KW = {
    "strategies": "zeros,ones,gaussian",
    "distances": "euclidean,cosine,relative",
    "levels": "embedding,output",
}


def _inputs(n: int = 4, size: int = 32) -> torch.Tensor:
    g = torch.Generator().manual_seed(3)
    x = torch.rand(n, 14, size, size, generator=g) * 0.4
    x[:, 10:12] = torch.randn(n, 2, size, size, generator=g)
    return x


def _check_against_fp32(model: torch.nn.Module, groups, batches, monkeypatch) -> dict:
    """auto (bf16 forced on) vs fp32: every score above the floor within 1 %, rankings equal."""
    monkeypatch.setenv(NATIVE_BF16_ENV, "1")
    ref = OcclusionEngine(model, groups, precision="fp32", **KW)
    eng = OcclusionEngine(model, groups, precision="auto", **KW)
    assert eng.fast is not None
    a, b, floors = [], [], []
    for batch in batches:
        a.append(ref.score_batch(batch))
        rows = eng.score_batch(batch)
        b.append(rows)
        sids = list(dict.fromkeys(rows["sample_id"]))
        fl = noise_floor(eng.auto_bounds)
        for j, (lv, dist) in enumerate(eng.metrics):
            sel = (rows.level == lv) & (rows.distance == dist)
            floors.append(
                rows.loc[sel, KEYS].assign(
                    floor=[fl[sids.index(s), j] for s in rows.loc[sel, "sample_id"]]
                )
            )
    fa, fb = pd.concat(a), pd.concat(b)
    m = fa.merge(fb, on=KEYS, suffixes=("_32", "_auto")).merge(pd.concat(floors), on=KEYS)
    assert len(m) == len(fa) == len(fb)
    above = m["value_32"].abs() > m["floor"]
    rel = (m["value_auto"] - m["value_32"]).abs() / m["value_32"].abs()
    assert above.mean() > 0.5
    assert (rel[above] <= 0.01).all(), rel[above].max()
    sa, sb = summarize_scores(fa, n_boot=0), summarize_scores(fb, n_boot=0)
    s = sa.merge(sb, on=["method", "level", "distance", "strategy", "group"])
    s = s[s["group"] != "ALL"]
    assert (s["rank_x"] == s["rank_y"]).all()
    per = ["level", "distance", "strategy", "sample_id", "draw"]
    g = m[m["group"] != "ALL"]
    assert (g.groupby(per)["value_32"].rank() == g.groupby(per)["value_auto"].rank()).all()
    return eng.precision_report()


def test_rule_flags_scores_within_their_bound() -> None:
    # one sample, one fill, masks: 3 single groups + ALL, one metric, bound 0.1
    scores = np.array([5.0, 20.0, 20.05, 40.0])[None, None, :, None]
    exact = np.zeros((1, 1, 4), dtype=bool)
    ranked = np.array([True, True, True, False])
    bounds = np.array([[0.1]])
    flag = needs_fp32(scores, exact, bounds, ranked)[0, 0]
    # 0.1 > 1 % of 5 -> redo; 20 and 20.05 are within 0.1 + 0.1 -> both redone; ALL kept
    assert flag.tolist() == [True, True, True, False]
    # an exact (fp32) neighbour has bound 0: only the bf16 one is redone
    exact[0, 0, 2] = True
    assert needs_fp32(scores, exact, bounds, ranked)[0, 0].tolist() == [True, True, False, False]
    scores[0, 0, 2] = 20.15  # 0.15 > 0.1 + 0 from the exact neighbour: kept in bf16
    assert needs_fp32(scores, exact, bounds, ranked)[0, 0].tolist() == [True, False, False, False]
    # far apart and above 100x the bound: nothing is redone
    far = np.array([50.0, 20.0, 30.0, 40.0])[None, None, :, None]
    assert not needs_fp32(far, np.zeros((1, 1, 4), bool), bounds, ranked).any()
    # the ALL row is not ranked: a tie with it does not count
    tie = np.array([50.0, 20.0, 30.0, 30.0])[None, None, :, None]
    assert not needs_fp32(tie, np.zeros((1, 1, 4), bool), bounds, ranked).any()
    # NaN scores (a missing fill) are never redone
    nan = np.full((1, 1, 4, 1), np.nan)
    assert not needs_fp32(nan, np.zeros((1, 1, 4), bool), bounds, ranked).any()


def test_bound_grows_with_the_score() -> None:
    b = score_bounds(
        np.array([0.0, 10.0])[None, None, :, None], np.array([[0.1]]), np.array([[10.0]])
    )
    assert b[0, 0, :, 0].tolist() == pytest.approx([0.1, 0.2])
    # scaled: 0.2 > 1 % of 10 although the unscaled 0.1 is not... (0.1 == 1 % of 10)
    scores = np.array([10.0, 50.0])[None, None, :, None]
    ex = np.zeros((1, 1, 2), bool)
    ranked = np.array([False, False])
    assert not needs_fp32(scores, ex, np.array([[0.099]]), ranked).any()
    assert needs_fp32(scores, ex, np.array([[0.099]]), ranked, scales=np.array([[10.0]]))[0, 0, 0]
    assert noise_floor(np.array([4.0]), safety=4.0)[0] == pytest.approx(2.0**-16 / 0.01)


def test_auto_is_fp32_without_native_bf16(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(NATIVE_BF16_ENV, "0")
    assert not native_bf16("cpu") and resolve_auto("auto") == "fp32"
    torch.manual_seed(0)
    model = UNet(14, base_width=4, depth=2).eval()
    x = _inputs(3)
    a = OcclusionEngine(model, GROUPS, precision="fp32", **KW).score_batch(x)
    eng = OcclusionEngine(model, GROUPS, precision="auto", **KW)
    b = eng.score_batch(x)
    assert eng.fast is None
    assert eng.precision_report() == {"requested": "auto", "used": "fp32"}
    pd.testing.assert_frame_equal(a, b)


def test_native_bf16_override(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(NATIVE_BF16_ENV, "1")
    assert native_bf16("cpu") and resolve_auto("auto") == "bf16"
    assert resolve_auto("bf16-mixed") == "bf16" and resolve_auto("32") == "fp32"
    monkeypatch.delenv(NATIVE_BF16_ENV)
    flags = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").exists() else ""
    if "avx512_bf16" in flags or "amx_bf16" in flags:
        assert native_bf16("cpu")


def test_auto_matches_fp32_untrained(monkeypatch: pytest.MonkeyPatch) -> None:
    torch.manual_seed(0)
    model = UNet(14, base_width=8, depth=3).eval()
    x = _inputs(4)
    batches = [{"image": x[s : s + 2], "id": [f"s{s}", f"s{s + 1}"]} for s in (0, 2)]
    rep = _check_against_fp32(model, GROUPS, batches, monkeypatch)
    assert rep["used"] == "bf16+fp32" and rep["occlusions"] > 0
    assert rep["bf16"] + rep["fp32"] >= rep["occlusions"] >= rep["bf16"]  # redone: in both
    assert rep["fp32_share"] == rep["fp32"] / rep["occlusions"]


def test_auto_matches_fp32_trained(tiny_run: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    run = load_run(tiny_run)
    ds = run.dataset("test")
    items = [ds[i] for i in range(len(ds))]
    batch = {
        "image": torch.stack([it["image"] * it["valid"][None] for it in items]),
        "valid": torch.stack([it["valid"] for it in items]),
        "id": [it["id"] for it in items],
    }
    groups = groups_from_spec(run.spec, "modalities")
    _check_against_fp32(run.model.eval(), groups, [batch], monkeypatch)


def test_loose_tolerance_keeps_bf16_scores_but_rankings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(NATIVE_BF16_ENV, "1")
    torch.manual_seed(0)
    model = UNet(14, base_width=8, depth=3).eval()
    x = _inputs(4)
    tight = OcclusionEngine(model, GROUPS, precision="auto", **KW)
    loose = OcclusionEngine(model, GROUPS, precision="auto", tolerance=0.5, **KW)
    tight.score_batch(x)
    loose.score_batch(x)
    assert loose.auto_counts["fp32"] <= tight.auto_counts["fp32"]
    assert loose.options.resume_settings()["tolerance"] == 0.5


def test_shapley_runs_in_fp32_under_auto(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(NATIVE_BF16_ENV, "1")
    torch.manual_seed(0)
    model = UNet(14, base_width=4, depth=2).eval()
    x = _inputs(2)
    a = OcclusionEngine(model, GROUPS, strategies="zeros", shapley=True).score_batch(x)
    eng = OcclusionEngine(model, GROUPS, strategies="zeros", shapley=True, precision="auto")
    b = eng.score_batch(x)
    assert eng.auto_counts == {"occlusions": 0, "bf16": 0, "fp32": 0}
    np.testing.assert_allclose(b["value"], a["value"], rtol=1e-4, atol=1e-6)


def test_options_and_cli_accept_auto() -> None:
    assert AttributionOptions(precision="auto").precision == "auto"
    assert "tolerance" not in AttributionOptions().resume_settings()  # older folders resume
    with pytest.raises(SpecError, match="tolerance"):
        AttributionOptions(precision="auto", tolerance=2)
    args = build_parser(["attribute"]).parse_args(["attribute", "RUN", "--precision", "auto"])
    assert args.precision == "auto"
    assert TrainConfig(precision="auto").precision == "auto"


def test_hopeless_samples_go_to_fp32_at_once() -> None:
    bounds = np.array([[0.02, 0.5], [0.001, 0.5], [np.nan, np.nan]])
    scales = np.array([[1.0, 10.0], [1.0, 10.0], [1.0, 1.0]])
    # sample 0: 2 % and 5 % of the scale >= 1 % -> every score would be redone
    assert hopeless(bounds, scales, 0.01).tolist() == [True, False, False]
    # consistent with the rule: every score of a hopeless sample is flagged
    s = np.random.default_rng(0).uniform(0, 50, (1, 2, 3, 2))
    flag = needs_fp32(s, np.zeros((1, 2, 3), bool), bounds[:1], np.ones(3, bool), 0.01, scales[:1])
    assert flag.all()


def test_paper_width_unet_auto_matches_fp32(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(NATIVE_BF16_ENV, "1")
    torch.manual_seed(0)
    model = UNet(14).eval()  # the paper's: width 64, depth 4
    x = _inputs(2, 32)
    a = OcclusionEngine(model, GROUPS, strategies="zeros").score_batch(x)
    b = OcclusionEngine(model, GROUPS, strategies="zeros", precision="auto").score_batch(x)
    rel = (a["value"] - b["value"]).abs() / a["value"].abs()
    assert (rel <= 0.01).all(), rel.max()
    ga, gb = (t[t.group != "ALL"] for t in (a, b))
    per = ["strategy", "sample_id"]
    assert (ga.groupby(per)["value"].rank() == gb.groupby(per)["value"].rank()).all()


def test_cli_attribute_auto_records_the_share(
    tiny_run: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    monkeypatch.setenv(NATIVE_BF16_ENV, "1")
    out = tmp_path / "attr"
    assert main(["-q", "attribute", str(tiny_run), "--precision", "auto", "--out", str(out)]) == 0
    assert "precision auto: " in capsys.readouterr().out
    rec = json.loads((out / "source.json").read_text())["precision"]
    assert rec["requested"] == "auto" and rec["used"] == "bf16+fp32"
    assert rec["occlusions"] > 0 and 0 <= rec["fp32_share"] <= 1
    assert rec["fp32"] == round(rec["fp32_share"] * rec["occlusions"])


def test_folder_label_names_auto_and_its_tolerance() -> None:
    assert folder_label(AttributionOptions(precision="auto")) == "auto"
    assert folder_label(AttributionOptions(precision="auto", tolerance=0.05)) == "auto-tol0.05"


def test_pace_keeps_bf16_only_while_it_pays() -> None:
    from modalens.attribution.autoprec import PAYS_BELOW, PROBE_EVERY, Pace

    pace = Pace()
    assert pace.use_bf16()  # nothing measured: try bf16
    pace.record(0.2, 1.0, 4, (16, 16, 2))  # first batch: warm-up, decides nothing
    assert pace.use_bf16() and pace.cost() != pace.cost()
    pace.record(0.2, 1.0, 4, (16, 16, 2))
    assert pace.cost() == pytest.approx((0.2 * (8 + 32) + 4) / 32) and pace.cost() < PAYS_BELOW
    assert pace.use_bf16()
    slow = Pace()
    for _ in range(2):  # every bf16 score redone: bf16 only adds cost
        slow.record(0.3, 1.0, 4, (16, 16, 16))
    assert slow.cost() >= PAYS_BELOW
    decisions = [slow.use_bf16() for _ in range(PROBE_EVERY + 1)]
    assert decisions == [False] * PROBE_EVERY + [True]  # fp32 at once, then a new probe


def test_auto_goes_straight_to_fp32_when_bf16_does_not_pay(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(NATIVE_BF16_ENV, "1")
    torch.manual_seed(0)
    model = UNet(14, base_width=4, depth=2).eval()
    x = _inputs(8, 16)
    batches = [{"image": x[i : i + 2], "id": [f"s{i}", f"s{i + 1}"]} for i in range(0, 8, 2)]
    kw = {**KW, "tolerance": 1e-12}  # no bf16 score can be kept
    eng = OcclusionEngine(model, GROUPS, precision="auto", **kw)
    ref = OcclusionEngine(model, GROUPS, precision="fp32", **kw)
    got = pd.concat([eng.score_batch(b) for b in batches], ignore_index=True)
    want = pd.concat([ref.score_batch(b) for b in batches], ignore_index=True)
    assert eng.pace.batches == 2 and eng.pace.skipped == 2  # batches 3 and 4 ran in fp32 at once
    counts = eng.auto_counts
    assert counts["fp32"] == counts["occlusions"] and counts["bf16"] < counts["occlusions"]
    np.testing.assert_allclose(got["value"], want["value"], rtol=1e-5, atol=1e-9)


def _targeted(n: int = 4, size: int = 16) -> list[dict]:
    x = _inputs(n, size)
    t = torch.rand(n, 1, size, size, generator=torch.Generator().manual_seed(5))
    return [
        {"image": x[i : i + 2], "target": t[i : i + 2], "id": [f"s{i}", f"s{i + 1}"]}
        for i in range(0, n, 2)
    ]


def test_loss_level_runs_in_fp32_under_auto(monkeypatch: pytest.MonkeyPatch) -> None:
    # a loss difference's bf16 error is not bounded by the full loss's: no bf16 pass at all
    monkeypatch.setenv(NATIVE_BF16_ENV, "1")
    torch.manual_seed(0)
    model = UNet(14, base_width=4, depth=2).eval()
    kw = {**KW, "levels": "loss"}
    eng = OcclusionEngine(model, GROUPS, precision="auto", **kw)
    ref = OcclusionEngine(model, GROUPS, precision="fp32", **kw)
    batches = _targeted()
    got = pd.concat([eng.score_batch(b) for b in batches], ignore_index=True)
    want = pd.concat([ref.score_batch(b) for b in batches], ignore_index=True)
    assert eng.fast is not None and eng.fast.forwards == 0
    counts = eng.auto_counts
    assert counts["occlusions"] > 0 and counts["fp32"] == counts["occlusions"]
    assert counts["bf16"] == 0 and eng.pace.batches == 0  # nothing timed, nothing probed
    pd.testing.assert_frame_equal(got, want)


def test_a_loss_level_beside_others_sends_the_batch_to_fp32(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # one forward scores every level: bf16 for the output level alone would be redone anyway
    monkeypatch.setenv(NATIVE_BF16_ENV, "1")
    torch.manual_seed(0)
    model = UNet(14, base_width=4, depth=2).eval()
    kw = {**KW, "levels": "loss,output", "tolerance": 0.5}
    eng = OcclusionEngine(model, GROUPS, precision="auto", **kw)
    ref = OcclusionEngine(model, GROUPS, precision="fp32", **kw)
    batch = _targeted(2)[0]
    pd.testing.assert_frame_equal(eng.score_batch(batch), ref.score_batch(batch))
    assert eng.fast is not None and eng.fast.forwards == 0
    assert eng.auto_counts["fp32"] == eng.auto_counts["occlusions"] > 0
    out = OcclusionEngine(model, GROUPS, precision="auto", **{**kw, "levels": "output"})
    out.score_batch(batch)
    assert out.auto_counts["bf16"] > 0  # the output level alone keeps bf16 scores


def test_an_infinite_bound_is_lost_and_nan_decides_nothing() -> None:
    bounds = np.array([[np.inf, np.inf], [np.inf, 0.0], [np.nan, np.inf], [np.nan, np.nan]])
    scales = np.ones_like(bounds)
    assert hopeless(bounds, scales, 0.01).tolist() == [True, False, True, False]
