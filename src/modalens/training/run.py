"""TODO docstring: training/run.py"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from ..data.dataset import MultimodalDataset
from ..data.reader import SampleReader
from ..data.spec import DatasetSpec
from ..data.specfile import load_spec
from ..data.stats import Statistics, apply_statistics
from ..errors import ModelError
from ..fingerprint import require_same
from ..models.unet import UNet
from .config import RESUMABLE_KEYS, load_config
from .module import TaskModule, make_tile_fn


def layout_difference(
    expected: Sequence[Mapping[str, Any]], got: Sequence[Mapping[str, Any]]
) -> str | None:
    """A short description of how two modality layouts differ (None when they are equal)."""
    exp_names = [m["name"] for m in expected]
    got_names = [m["name"] for m in got]
    if exp_names != got_names:
        return (
            f"checkpoint expects modalities {','.join(exp_names)} but data has "
            f"{','.join(got_names)}"
        )
    for e, g in zip(expected, got, strict=True):
        if list(e["channels"]) != list(g["channels"]):
            return (
                f"checkpoint expects channels {','.join(e['channels'])} for modality "
                f"{e['name']!r} but data has {','.join(g['channels'])}"
            )
        if e.get("normalization") != g.get("normalization"):
            return (
                f"checkpoint expects {e.get('normalization')} normalisation for modality "
                f"{e['name']!r} but data has {g.get('normalization')}"
            )
    return None


def check_layout(
    expected: Sequence[Mapping[str, Any]], spec: DatasetSpec, where: str | None = None
) -> None:
    """Raise a ModelError when ``spec``'s modality layout differs from a checkpoint's."""
    diff = layout_difference(expected, spec.layout())
    if diff:
        raise ModelError(
            diff,
            where,
            "use data with the modalities (use/drop) and channel order the model was trained on",
        )


def _saved_config(run_dir: Path) -> dict[str, Any]:
    path = run_dir / "config.yaml"
    if not path.exists():
        raise ModelError(
            "not a run folder (no config.yaml)", str(run_dir), "give the folder fit wrote"
        )
    return load_config(path)


def _check_resume_config(saved: Mapping[str, Any], new: Mapping[str, Any], run_dir: Path) -> None:
    require_same(
        saved,
        new,
        what="cannot resume: a config key differs from the run's",
        where=str(run_dir / "config.yaml"),
        fix="resume with the run's own config or start a new run with another --out",
        ignore=RESUMABLE_KEYS,
    )


def _read_checkpoint(path: Path) -> dict[str, Any]:
    if not Path(path).exists():
        raise ModelError("checkpoint not found", str(path), "train the run first (modalens fit)")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception:  # noqa: BLE001 - fall through to a full load of our own file
        pass
    try:
        return torch.load(path, map_location="cpu", weights_only=False)
    except Exception as exc:  # noqa: BLE001
        raise ModelError(
            f"cannot read checkpoint ({' '.join(str(exc).split())[:100]})",
            str(path),
            "it may be truncated: use last.ckpt or retrain",
        ) from None


def load_checkpoint(
    path: str | Path, spec: DatasetSpec | None = None, device: str | torch.device = "cpu"
) -> TaskModule:
    """A :class:`TaskModule` from a checkpoint, in eval mode on ``device``.

    With ``spec`` the checkpoint's modality layout is checked against it (ModelError naming the
    difference).
    """
    ckpt = _read_checkpoint(Path(path))
    hp = dict(ckpt.get("hyper_parameters") or {})
    if "task" not in hp:
        raise ModelError("not a modalens checkpoint (no task)", str(path), "use a run's checkpoint")
    if spec is not None:
        check_layout((hp.get("meta") or {}).get("layout") or [], spec, str(path))
    module = TaskModule(**hp)
    module.load_state_dict(ckpt["state_dict"])
    module.eval()
    return module.to(device)


@dataclass
class Run:
    """A trained run folder loaded for use.

    Attributes:
        run_dir: the folder.
        model: the :class:`~modalens.models.UNet` from ``best.ckpt`` in eval mode.
        module: its :class:`TaskModule` (input masking, loss, metrics).
        spec: the dataset spec with statistics applied (root possibly overridden).
        config: the resolved run config.
        task: ``regression``, ``segmentation`` or ``classification``.
        checkpoint: the checkpoint file loaded.
    """

    run_dir: Path
    model: UNet
    module: TaskModule
    spec: DatasetSpec
    config: dict[str, Any]
    task: str
    checkpoint: Path
    stats: dict[str, Any] = field(default_factory=dict)

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    @property
    def paths(self) -> dict[str, Path]:
        d = self.run_dir
        return {
            "config": d / "config.yaml",
            "dataset": d / "dataset.yaml",
            "stats": d / "stats.json",
            "best": d / "checkpoints" / "best.ckpt",
            "last": d / "checkpoints" / "last.ckpt",
            "metrics": d / "metrics.csv",
        }

    @property
    def downsampling(self) -> int:
        return self.model.downsampling

    def dataset(
        self, split: str = "test", ids: Sequence[str] | None = None, crop_size: int | None = None
    ) -> Any:
        """A deterministic :class:`~modalens.data.MultimodalDataset` (centre crops of the
        run's ``eval_crop_size``, no augmentation) of ``split``."""

        t = self.config["train"]
        if crop_size is None:
            crop_size = t["eval_crop_size"] if t["eval_crop_size"] is not None else t["crop_size"]
        return MultimodalDataset(
            self.spec,
            split=split,
            ids=ids,
            crop_size=crop_size,
            random_crop=False,
            augment=None,
            seed=t["seed"],
        )

    def reader(self) -> Any:
        """A :class:`~modalens.data.SampleReader` of the run's spec."""

        return SampleReader(self.spec)

    def predict_fn(self, precision: str = "32") -> Callable[[Tensor], Tensor]:
        """``fn(x [B,C,h,w]) -> output [B,K,h,w]`` on the model's device (regression:
        scaled prediction; segmentation: class probabilities), for
        :func:`~modalens.inference.sliding_window`."""
        return make_tile_fn(self.module, precision=precision)


def load_run(
    run_dir: str | Path,
    checkpoint: str = "best",
    data_root: str | Path | None = None,
    spec: DatasetSpec | None = None,
    device: str | torch.device = "cpu",
) -> Run:
    """Load a run folder: model from ``checkpoints/<checkpoint>.ckpt`` in eval mode, its spec
    (``dataset.yaml``) with ``stats.json`` applied.

    ``data_root`` points the spec at other data of the same layout; ``spec`` replaces it (its
    modalities must match the checkpoint's, else a ModelError names the difference).
    """

    run_dir = Path(run_dir)
    if not (run_dir / "config.yaml").exists():
        raise ModelError(
            "not a run folder (no config.yaml)", str(run_dir), "give the folder that fit wrote"
        )
    cfg = _saved_config(run_dir)
    ckpt = run_dir / "checkpoints" / f"{checkpoint}.ckpt"
    if spec is None:
        spec = load_spec(run_dir / "dataset.yaml")
    if data_root is not None:
        spec = spec.with_root(Path(data_root))
    stats_path = run_dir / "stats.json"
    stats_dict: dict[str, Any] = {}
    if stats_path.exists():
        statistics = Statistics.load(stats_path)
        spec = apply_statistics(spec, statistics)
        stats_dict = json.loads(stats_path.read_text())
    module = load_checkpoint(ckpt, spec=spec, device=device)
    return Run(
        run_dir=run_dir,
        model=module.model,
        module=module,
        spec=spec,
        config=cfg,
        task=module.task,
        checkpoint=ckpt,
        stats=stats_dict,
    )
