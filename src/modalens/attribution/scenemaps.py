"""Occlusion maps of scene-level models (scene classification): per window, how much the class
scores change.

A scene classifier has one output vector per scene, so there is no per-pixel prediction to
compare. :func:`window_map_fn` occludes one group inside one square window at a time (the
rest of the scene kept) and gives every pixel of the window the mean absolute change of the
class probabilities over the classes: a coarse map, one value per window, at the scene's pixel
grid (so it is written and drawn like the dense maps). :func:`scene_sensitivity` reads one
scene of a run (inputs masked as in training) and returns that map.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from torch import Tensor

from ..errors import SpecError
from .batches import Batch, mask_inputs
from .engine import OcclusionEngine
from .strategies import STRATEGIES, stable_seed

#: the colour bar label of a scene classifier's sensitivity map
SCENE_MAP_QUANTITY = "mean |class probability - occluded| per window"

#: windows per scene side when no window size is given
WINDOWS_PER_SIDE = 8


def default_window(height: int, width: int) -> int:
    """The window side giving about :data:`WINDOWS_PER_SIDE` windows along the shorter side."""
    return max(1, -(-min(height, width) // WINDOWS_PER_SIDE))


def window_map_fn(
    engine: OcclusionEngine,
    postprocess: Callable[[Tensor], Tensor],
    strategy: str | None = None,
    window: int | None = None,
) -> Callable[[Tensor], Tensor]:
    """A function ``fn(x [B,C,H,W]) -> [B,G,H,W]`` (float32, CPU): per group and window, the
    mean over classes of ``|postprocess(f(x)) - postprocess(f(x with the group occluded in the
    window))|``, given to every pixel of the window.

    Args:
        engine: the engine of the scene model (its groups, seed, mean, chunk size).
        postprocess: output -> class scores (e.g. the task's probabilities).
        strategy: the fill (default: the engine's first strategy).
        window: window side in pixels (default :func:`default_window`).

    Returns:
        The map function.

    Raises:
        SpecError: a strategy that needs other samples, or a window below 1.
    """
    strategy = strategy or engine.options.strategies[0]
    if STRATEGIES.get(strategy).needs_batch:
        single = STRATEGIES.names(lambda s: not s.needs_batch)
        raise SpecError(
            f"{strategy} has no meaning for single scenes", "--strategy", f"use {', '.join(single)}"
        )
    if window is not None and int(window) < 1:
        raise SpecError(f"window must be at least 1 px, got {window}", "--window", "raise it")
    gen = torch.Generator().manual_seed(stable_seed(engine.options.seed, "window-map", strategy))

    def fn(x: Tensor) -> Tensor:
        x = x.to(engine.device).float()
        engine.prepare(x)
        w = int(window) if window else default_window(*x.shape[-2:])
        with torch.inference_mode():
            return _window_map(engine, x, strategy, gen, w, postprocess)

    return fn


def _window_map(
    engine: OcclusionEngine,
    x: Tensor,
    strategy: str,
    gen: torch.Generator,
    w: int,
    post: Callable[[Tensor], Tensor],
) -> Tensor:
    if x.ndim != 4 or engine.axis(x) != 1:
        raise SpecError("window maps need images [B, C, H, W]", "channel_axis", "use axis 1")
    b, c, h, wd = x.shape
    gm = engine.group_matrix(c).to(x.device)
    g = gm.shape[0]
    f = engine.make_fill(strategy, 0, [""] * b, x, generator=gen)
    if f.kind not in ("constant", "per_sample") or f.value is None:
        raise SpecError(f"{strategy} gives no fill for single scenes", "--strategy")
    fill = f.value.expand_as(x) if f.kind == "constant" else f.value
    step = engine.chunk_length(x)
    base = torch.cat([post(engine.runner.predict(x[s : s + step])) for s in range(0, b, step)])
    wins = [(r, q) for r in range(0, h, w) for q in range(0, wd, w)]
    tasks = [(i, gi, r, q) for i in range(b) for gi in range(g) for r, q in wins]
    out = torch.full((b, g, h, wd), float("nan"), dtype=torch.float32)
    for s in range(0, len(tasks), step):
        chunk = tasks[s : s + step]
        rows = torch.as_tensor([t[0] for t in chunk], dtype=torch.long, device=x.device)
        occ = x[rows].clone()
        for j, (i, gi, r, q) in enumerate(chunk):
            ch = gm[gi]
            occ[j, ch, r : r + w, q : q + w] = fill[i, ch, r : r + w, q : q + w]
        d = (base[rows] - post(engine.runner.predict(occ))).abs().flatten(1).mean(1).cpu()
        for j, (i, gi, r, q) in enumerate(chunk):
            out[i, gi, r : r + w, q : q + w] = d[j]
    return out


def scene_sensitivity(
    run: Any,
    sid: str,
    reader: Any,
    engine: OcclusionEngine,
    strategy: str,
    window: int | None = None,
) -> tuple[np.ndarray, int]:
    """One scene's window map of a scene-level run (NaN where the scene's inputs are invalid).

    Args:
        run: the loaded run (:func:`modalens.training.run.load_run`).
        sid: the scene id.
        reader: the run's sample reader.
        engine: an engine of ``run.model`` with the groups and options of the map.
        strategy: the fill.
        window: window side in pixels (default :func:`default_window`).

    Returns:
        ``(map [G, H, W] float32, window side used)``.

    Raises:
        DataError: a scene smaller than the model takes (names the sample).
    """
    grid = reader.grid(sid)
    run.check_size(grid.height, grid.width, f"sample {sid!r}")
    image, valid = reader.read_inputs(sid)
    mask = bool(getattr(getattr(run.module, "hparams", {}), "mask_invalid_inputs", True))
    batch = Batch(torch.from_numpy(image)[None], None, torch.from_numpy(valid)[None], [sid], [""])
    batch, _ = mask_inputs(batch, mask)
    w = int(window) if window else default_window(*image.shape[-2:])
    fn = window_map_fn(engine, run.task.postprocess, strategy, w)
    arr = fn(batch.image)[0].numpy()
    arr[:, ~valid] = np.nan
    return arr.astype(np.float32), w
