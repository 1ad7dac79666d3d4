"""Loading a trained run: checkpoints checked against the data, and the :class:`Run` object.

:func:`load_run` reads a run folder (:class:`~modalens.training.runfolder.RunFolder`): the model
from ``checkpoints/<name>.ckpt`` in eval mode, the dataset spec (``dataset.yaml``, optionally
pointed at another copy of the data) with ``stats.json`` applied, and the saved config. The
returned :class:`Run` gives the run's task, deterministic evaluation datasets, a reader and a
tile function. Checkpoints carry the modality layout; loading one against data with other
modalities or another channel order raises a :class:`~modalens.errors.ModelError` naming the
difference (:func:`check_layout`).
"""

from __future__ import annotations

import pickle
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from ..data.coverage import require_target
from ..data.dataset import MultimodalDataset
from ..data.reader import SampleReader
from ..data.remote import resolve_root
from ..data.spec import DatasetSpec
from ..data.specfile import load_spec
from ..data.stats import with_statistics
from ..errors import DataError, ModelError
from ..models.unet import UNet, check_input_size
from ..tasks.base import Task
from .config import RunConfig
from .module import TaskModule, make_tile_fn
from .runfolder import RunFolder


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


def check_model_config(
    module: TaskModule, cfg: RunConfig, checkpoint: str | Path, config_file: str | Path
) -> None:
    """Refuse a checkpoint whose model is not the one the run's config describes (another
    ``model.base_width`` or ``model.depth``: the folder's files do not belong together).

    Raises:
        ModelError: naming both values, the checkpoint and the config file.
    """
    for key in ("base_width", "depth"):
        saved, configured = module.hparams.get(key), getattr(cfg.model, key)
        if saved is not None and int(saved) != int(configured):
            raise ModelError(
                f"the checkpoint's model has {key} {saved} but {Path(config_file).name} says "
                f"model.{key}: {configured}",
                f"{checkpoint}, {config_file}",
                "a run's config.yaml and checkpoints must come from the same training: "
                "restore the matching file or train this config again",
            )


def read_checkpoint(path: str | Path) -> dict[str, Any]:
    """The content of a checkpoint file (on CPU), loaded without running code from it.

    The file is read with ``torch.load(weights_only=True)``: only tensors, containers and plain
    values are rebuilt, with torch's own allow-list of types. That is everything a checkpoint
    written by ``modalens fit`` holds (the Lightning checkpoints of every task, multitask runs
    included, name no other type), so no type is added to it; a file naming any other class or
    function -- a pickled payload that would run on loading -- is refused, never unpickled.

    Args:
        path: the ``.ckpt`` file.

    Returns:
        The checkpoint dict (``state_dict``, ``hyper_parameters``, ``epoch``, ...).

    Raises:
        ModelError: the file is missing, cannot be read (e.g. truncated) or holds objects that
            are not allowed (the message names them).
    """
    path = Path(path)
    if not path.exists():
        raise ModelError("checkpoint not found", str(path), "train the run first (modalens fit)")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - every failure to read the file is one line
        names = _disallowed_globals(path, exc)
        reason = " ".join(str(exc).split())[:100]
    if names:
        raise ModelError(
            f"the checkpoint holds objects that are not allowed ({', '.join(names[:5])})",
            str(path),
            "modalens loads only tensors and plain values and runs no code from a checkpoint: "
            "use one modalens fit wrote, from a source you trust",
        )
    raise ModelError(
        f"cannot read checkpoint ({reason})",
        str(path),
        "it may be truncated: use last.ckpt or retrain",
    )


def _disallowed_globals(path: str | Path, exc: BaseException) -> list[str]:
    """The classes and functions that made a weights-only load of ``path`` fail with ``exc``
    (empty when it failed for another reason, e.g. a truncated file); the file is scanned,
    nothing in it is run."""
    if not isinstance(exc, pickle.UnpicklingError):
        return []
    try:
        names = torch.serialization.get_unsafe_globals_in_checkpoint(path)
    except (OSError, RuntimeError, ValueError, pickle.UnpicklingError):  # not a zip checkpoint
        names = []
    return list(names) or re.findall(r"GLOBAL (\S+) was not an allowed global", str(exc))


def load_checkpoint(
    path: str | Path, spec: DatasetSpec | None = None, device: str | torch.device = "cpu"
) -> TaskModule:
    """A :class:`TaskModule` from a checkpoint, in eval mode on ``device``.

    With ``spec`` the checkpoint's modality layout is checked against it (ModelError naming the
    difference).
    """
    ckpt = read_checkpoint(path)
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
        task: the run's :class:`~modalens.tasks.Task` (``task.name``: ``regression``,
            ``segmentation`` or ``classification``; losses, metrics, outputs).
        checkpoint: the checkpoint file loaded.
        stats: the content of ``stats.json`` (empty without one).
    """

    run_dir: Path
    model: UNet
    module: TaskModule
    spec: DatasetSpec
    config: RunConfig
    task: Task
    checkpoint: Path
    stats: dict[str, Any] = field(default_factory=dict)

    @property
    def folder(self) -> RunFolder:
        """The run folder's artefacts (:class:`~modalens.training.runfolder.RunFolder`)."""
        return RunFolder(self.run_dir)

    @property
    def device(self) -> torch.device:
        """Where the model is."""
        return next(self.model.parameters()).device

    @property
    def downsampling(self) -> int:
        """The model's downsampling factor (inputs should be a multiple of it)."""
        return self.model.downsampling

    def check_size(self, height: int, width: int, where: str) -> None:
        """Refuse an input of ``height`` x ``width`` px that the model is too deep for, in one
        line naming ``where`` (:func:`~modalens.models.check_input_size`).

        Raises:
            DataError: a side below ``2**depth``.
        """
        check_input_size(height, width, where, depth=self.model.depth)

    def dataset(
        self, split: str = "test", ids: Sequence[str] | None = None, crop_size: int | None = None
    ) -> MultimodalDataset:
        """A deterministic :class:`~modalens.data.MultimodalDataset` (centre crops of the
        run's ``eval_crop_size``, no augmentation) of ``split``.

        Args:
            split: ``train``, ``val`` or ``test``.
            ids: only these samples (default: the whole split).
            crop_size: another crop size (0: whole scenes).

        Raises:
            DataError: none of the samples has a valid target pixel (names the split).
        """
        data = self.config.train.run_data(self.spec, depth=self.model.depth)
        ds = data.dataset(split, ids=ids, crop_size=crop_size)
        require_target(self.spec, split, ds.ids)
        return ds

    def reader(self) -> SampleReader:
        """A :class:`~modalens.data.SampleReader` of the run's spec."""
        return SampleReader(self.spec)

    def predict_fn(self, precision: str = "fp32") -> Callable[[Tensor], Tensor]:
        """``fn(x [B,C,h,w]) -> output [B,K,h,w]`` on the model's device (regression:
        prediction / scale; segmentation: class probabilities), for
        :func:`~modalens.training.tiling.sliding_window`."""
        return make_tile_fn(self.module, precision=precision)


def run_spec(
    folder: RunFolder, data_root: str | Path | None = None, spec: DatasetSpec | None = None
) -> DatasetSpec:
    """The dataset spec a run reads: its ``dataset.yaml`` (or ``spec``), at ``data_root`` when
    given (relative to the working directory: the CLI's ``--data``), checked to be there.

    Args:
        folder: the run folder.
        data_root: another folder (or URL) holding the run's data, e.g. after it moved.
        spec: a spec replacing the run's own.

    Raises:
        DataError: the data folder is missing: the run's (the fix names ``--data NEW_ROOT``)
            or ``data_root``.
    """
    spec = load_spec(folder.dataset) if spec is None else spec
    if data_root is not None:
        spec = spec.with_root(resolve_root(data_root))
    if isinstance(spec.root, Path) and not spec.root.is_dir():
        if data_root is not None:
            raise DataError(
                "dataset folder not found", str(spec.root), "check the path given to --data"
            )
        raise DataError(
            f"the run's data folder {spec.root} is missing (moved or deleted)",
            str(folder.dataset),
            "pass --data NEW_ROOT, the folder that now holds the data (data_root= in Python)",
        )
    return spec


def load_run(
    run_dir: str | Path,
    checkpoint: str = "best",
    data_root: str | Path | None = None,
    spec: DatasetSpec | None = None,
    device: str | torch.device = "cpu",
) -> Run:
    """Load a run folder: model from ``checkpoints/<checkpoint>.ckpt`` in eval mode, its spec
    (``dataset.yaml``) with ``stats.json`` applied.

    Args:
        run_dir: the run folder fit wrote.
        checkpoint: ``best`` or ``last``.
        data_root: points the spec at other data of the same layout (e.g. the run's data
            after it moved; :func:`run_spec`).
        spec: replaces the run's spec (its modalities must match the checkpoint's).
        device: where to put the model.

    Returns:
        The :class:`Run`.

    Raises:
        ModelError: not a run folder, an unreadable checkpoint, or a spec whose modalities
            differ from the checkpoint's (the message names the difference).
        DataError: the data folder is missing (:func:`run_spec`).
    """
    folder = RunFolder(run_dir)
    cfg = folder.saved_config()
    ckpt = folder.checkpoint(checkpoint)
    spec = run_spec(folder, data_root, spec)
    spec, stats = with_statistics(spec, folder.stats, compute=False)
    module = load_checkpoint(ckpt, spec=spec, device=device)
    check_model_config(module, cfg, ckpt, folder.config)
    return Run(
        run_dir=folder.path,
        model=module.model,
        module=module,
        spec=spec,
        config=cfg,
        task=module.task,
        checkpoint=ckpt,
        stats=stats,
    )
