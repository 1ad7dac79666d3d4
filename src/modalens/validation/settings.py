"""The ablation plan: which runs the paper's Table I needs, and the run config of each.

An ablation starts from one run config (a YAML path or a dict like ``configs/demo.yaml``). Its
``use``/``drop`` pick the modalities to ablate (all of the dataset's by default); from them
:func:`plan_settings` makes the settings:

- ``all``: every modality (the reference);
- ``single-<m>``: modality ``m`` alone, one per modality;
- ``leaveout-<m>``: every modality but ``m``, one per modality.

With one modality only ``all`` is left; with two, leaving one out *is* using the other alone, so
only ``all`` and the two single-modality settings are trained (:func:`leave_one_out` finds the
run that stands for a leave-one-out setting). :func:`subset_setting` names the setting of any
subset of modalities (pruning's): one of the above where it is one, else ``subset-<a>+<b>``, so a
run of the same modalities has the same folder name whichever plan asks for it. Every run gets
the same config except ``use`` (the setting's modalities, listed explicitly), ``drop`` (none)
and ``train.seed`` (:func:`run_config`).

:func:`read_config` reads the config once, inlines a spec file named by ``data:`` and makes every
path absolute, as :func:`modalens.training.config.read_raw_config` does for every run (so the dict
handed to :func:`modalens.training.fit` means the same wherever it is read);
:func:`config_modalities` resolves the dataset spec to name the modalities.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from ..data import spec_from_dict
from ..errors import SpecError
from ..training.config import read_raw_config

#: the kinds of setting, in the order of the paper's Table I (``subset``: any other subset)
KINDS = ("all", "single", "leave_one_out", "subset")


@dataclass(frozen=True)
class Setting:
    """One row of Table I: which modalities a model is trained on.

    Attributes:
        name: folder-safe id: ``all``, ``single-<m>``, ``leaveout-<m>`` or
            ``subset-<m1>+<m2>...``.
        kind: ``all``, ``single``, ``leave_one_out`` or ``subset``.
        modality: the modality used alone or left out (None for ``all``).
        use: the modalities the model sees, in the dataset's order.
        title: the row's wording in another study's table (None: Table I's).
    """

    name: str
    kind: str
    modality: str | None
    use: tuple[str, ...]
    title: str | None = None

    @property
    def label(self) -> str:
        """Table I's wording: ``all modalities``, ``s1 only``, ``s1 left out`` (or the
        ``title`` of a setting of another study)."""
        if self.title is not None:
            return self.title
        if self.kind == "all":
            return "all modalities"
        if self.kind == "subset":
            return f"{' + '.join(self.use)} only"
        return f"{self.modality} only" if self.kind == "single" else f"{self.modality} left out"

    @property
    def short(self) -> str:
        """For progress lines: ``all``, ``single s1``, ``leave-out s1``."""
        if self.kind == "all":
            return "all"
        if self.kind == "subset":
            return f"subset {'+'.join(self.use)}"
        return f"{'single' if self.kind == 'single' else 'leave-out'} {self.modality}"

    def run_name(self, seed: int) -> str:
        """The run folder's name.

        Args:
            seed: the run's seed.

        Returns:
            ``<name>-seed<seed>``.
        """
        return f"{self.name}-seed{seed}"


def plan_settings(modalities: Sequence[str]) -> list[Setting]:
    """The settings to train for ``modalities`` (see the module docstring).

    Args:
        modalities: modality names in the dataset's order.

    Returns:
        ``all`` first, then the single-modality settings, then (three modalities or more) the
        leave-one-out settings.

    Raises:
        SpecError: no modality, or a name given twice.
    """
    names = [str(m) for m in modalities]
    if not names:
        raise SpecError("no modality to ablate", "use/drop", "keep at least one modality")
    if len(set(names)) != len(names):
        raise SpecError(f"modality names repeat: {names}", "use", "name each modality once")
    out = [Setting("all", "all", None, tuple(names))]
    if len(names) == 1:
        return out
    out += [Setting(f"single-{m}", "single", m, (m,)) for m in names]
    if len(names) > 2:
        out += [
            Setting(f"leaveout-{m}", "leave_one_out", m, tuple(n for n in names if n != m))
            for m in names
        ]
    return out


def subset_setting(modalities: Sequence[str], use: Sequence[str]) -> Setting:
    """The setting that trains on ``use`` out of ``modalities``.

    Args:
        modalities: every modality, in the dataset's order.
        use: the modalities kept (any order; returned in the dataset's order).

    Returns:
        ``all``, ``single-<m>`` or (three modalities or more) ``leaveout-<m>`` where the subset
        is one of those (the names :func:`plan_settings` gives), else a ``subset`` setting.

    Raises:
        SpecError: ``use`` is empty or names a modality not in ``modalities``.
    """
    names = [str(m) for m in modalities]
    unknown = [m for m in use if m not in names]
    if not use or unknown:
        raise SpecError(
            f"cannot train on {list(use)} out of {names}",
            "use",
            "keep at least one of the dataset's modalities",
        )
    kept = tuple(m for m in names if m in set(use))
    dropped = [m for m in names if m not in set(use)]
    if not dropped:
        return Setting("all", "all", None, kept)
    if len(kept) == 1:
        return Setting(f"single-{kept[0]}", "single", kept[0], kept)
    if len(dropped) == 1:
        return Setting(f"leaveout-{dropped[0]}", "leave_one_out", dropped[0], kept)
    return Setting("subset-" + "+".join(kept), "subset", None, kept)


def leave_one_out(settings: Sequence[Setting], modality: str) -> Setting | None:
    """The trained setting that leaves ``modality`` out.

    Args:
        settings: the plan (:func:`plan_settings`).
        modality: the modality left out.

    Returns:
        The setting using every other modality (with two modalities: the other one's
        single-modality setting); None when there is none.
    """
    everything = next((s.use for s in settings if s.kind == "all"), ())
    wanted = {m for m in everything if m != modality}
    if not wanted or modality not in everything:
        return None
    return next((s for s in settings if set(s.use) == wanted), None)


def plan_note(modalities: Sequence[str]) -> str | None:
    """A sentence on a plan that is not the full 1 + 2N runs.

    Args:
        modalities: the modalities ablated.

    Returns:
        The note for one or two modalities, else None.
    """
    if len(modalities) == 1:
        return f"one modality ({modalities[0]}): only the all-modality run is trained"
    if len(modalities) == 2:
        a, b = modalities
        return (
            f"two modalities: leaving {a} out is using {b} alone (and vice versa), so the "
            "leave-one-out settings are the single-modality runs and are not trained twice"
        )
    return None


def parse_seeds(seeds: str | int | Sequence[int]) -> tuple[int, ...]:
    """Seeds from ``"0,1,2"``, an int or a sequence; repeats are dropped, order kept.

    Args:
        seeds: the seeds as given (CLI text, an int or a sequence).

    Returns:
        The seeds as a tuple of ints.

    Raises:
        SpecError: a seed that is not an integer >= 0, or no seed at all.
    """
    items: list[Any]
    if isinstance(seeds, str):
        items = [s.strip() for s in seeds.split(",") if s.strip()]
    elif isinstance(seeds, int):
        items = [seeds]
    else:
        items = list(seeds)
    out: list[int] = []
    for item in items:
        try:
            value = int(str(item))
        except ValueError:
            value = -1
        if isinstance(item, bool) or value < 0:
            raise SpecError(
                f"bad seed {item!r}", "--seeds", "give integers >= 0, e.g. --seeds 0,1,2"
            )
        if value not in out:
            out.append(value)
    if not out:
        raise SpecError("no seed given", "--seeds", "give at least one, e.g. --seeds 0")
    return tuple(out)


#: libyaml's loader when PyYAML was built with it (several times faster), else the pure one
_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def read_saved_config(run_dir: str | Path) -> dict[str, Any] | None:
    """The resolved config a run folder was trained with.

    Args:
        run_dir: the run folder.

    Returns:
        Its ``config.yaml`` as a dict, or None when it is missing or unreadable.
    """
    path = Path(run_dir) / "config.yaml"
    try:
        saved = yaml.load(path.read_text(), Loader=_LOADER)
    except (OSError, yaml.YAMLError):
        return None
    return saved if isinstance(saved, dict) else None


def read_config(
    config: str | Path | Mapping[str, Any], overrides: Mapping[str, Any] | None = None
) -> tuple[dict[str, Any], str | None]:
    """The ablation's base config as a plain dict with absolute paths, and its file.

    A relative ``data.root`` is relative to the config file's folder (the working directory for a
    dict); ``data: PATH`` (a spec file) is inlined with its root made absolute; ``overrides`` (a
    nested dict, e.g. ``{"data": {"root": ...}}`` from ``--root``, relative to the working
    directory) are merged over the result.

    Args:
        config: run config YAML path or dict.
        overrides: nested dict merged over the config.

    Returns:
        ``(config dict, source file or None)``.

    Raises:
        SpecError: the file is missing, not YAML, or not a mapping.
    """
    return read_raw_config(config, overrides)


def config_modalities(cfg: Mapping[str, Any], source: str | None = None) -> list[str]:
    """The modalities a config trains on (its dataset's, after ``use``/``drop``).

    Args:
        cfg: a config from :func:`read_config`.
        source: its file, named in errors.

    Returns:
        Modality names in the dataset's order.

    Raises:
        SpecError: no ``data`` section, no dataset root, an invalid spec or an unknown
            modality in ``use``/``drop``.
    """
    where = source or "config"
    data = cfg.get("data")
    if not isinstance(data, Mapping):
        raise SpecError(
            "the config has no 'data' section",
            f"key 'data' in {where}",
            "add data: {preset: mapinwild, root: FOLDER} or a dataset spec",
        )
    if data.get("root") is None:
        raise SpecError(
            "the config names no dataset root",
            f"key 'data.root' in {where}",
            "pass --root FOLDER or set data.root",
        )
    spec = spec_from_dict(data, source=source)
    use, drop = cfg.get("use"), cfg.get("drop")
    use = [use] if isinstance(use, str) else use
    drop = [drop] if isinstance(drop, str) else drop
    if use or drop:
        spec = spec.select(use=use, drop=drop)
    return list(spec.modality_names)


def run_config(cfg: Mapping[str, Any], setting: Setting, seed: int) -> dict[str, Any]:
    """The config of one run (nothing but ``use``, ``drop`` and ``train.seed`` changes).

    Args:
        cfg: the base config (:func:`read_config`).
        setting: the setting.
        seed: the seed.

    Returns:
        A copy of ``cfg`` with the setting's ``use``, no ``drop`` and ``train.seed = seed``.

    Raises:
        SpecError: ``train`` is given but is not a mapping.
    """
    out = copy.deepcopy(dict(cfg))
    train = out.get("train") or {}
    if not isinstance(train, Mapping):
        raise SpecError("config key 'train' must be a mapping", "train", "see configs/demo.yaml")
    out["use"] = list(setting.use)
    out["drop"] = None
    out["train"] = {**train, "seed": int(seed)}
    return out
