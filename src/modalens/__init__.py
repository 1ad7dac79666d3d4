"""modalens: which input modality does my Earth-observation model rely on?

The package is laid out as the pipeline it runs, one sub-package per stage:

- :mod:`modalens.data` -- dataset specs (YAML, presets), GeoTIFF reading, samples, statistics,
  augmentation, ``data check``, synthetic data.
- :mod:`modalens.models` -- the paper's U-Net and inference-time model optimisation.
- :mod:`modalens.tasks` -- what a task is: per-sample masked losses, metrics, outputs.
- :mod:`modalens.training` -- run configs, the Lightning module, fit, run folders, evaluation,
  whole-scene prediction.
- :mod:`modalens.attribution` -- the deep occlusion framework: strategies, distances, levels,
  Shapley values, maps, the score store and dataset-level summaries.
- :mod:`modalens.validation` -- the paper's validation (Table I, Fig. 5), strategies and fills.
- :mod:`modalens.report` -- one self-contained HTML page from a results folder.

Importing modalens changes no process-wide state, and library calls restore what they must
change while they run (:mod:`modalens.scope`). The ``modalens`` command sets thread defaults
that hold up on a shared machine (``OMP_WAIT_POLICY=PASSIVE``, ``OMP_NUM_THREADS`` = the CPUs
the process may use); a script gets the same with :func:`configure_threads`, called before
torch is imported (:mod:`modalens.threads`).

Shared utilities: :mod:`modalens.errors` (one-line user errors), :mod:`modalens.io` (atomic
writes), :mod:`modalens.precision` (one precision vocabulary), :mod:`modalens.plotting`.
:mod:`modalens.demo` and :mod:`modalens.cli` orchestrate the stages.

The entry points a user needs are importable from here (``from modalens import fit``); they are
loaded on first use, so ``import modalens`` and the command line start fast. ``__all__``:

- data: :func:`load_spec`, :func:`spec_from_dict`, :func:`get_preset`, :func:`mapinwild_spec`,
  :func:`bigearthnet_spec`, :func:`check_dataset`, :func:`generate_synthetic`,
  :class:`MultimodalDataset`;
- model and training: :class:`UNet`, :func:`fit`, :func:`evaluate`, :func:`predict`,
  :func:`load_run`;
- attribution: :class:`AttributionOptions`, :func:`paper_options`, :func:`attribute`,
  :func:`attribute_run`, :func:`occlusion_maps`, :func:`summarize_scores`;
- validation: :func:`sanity_check`, :func:`faithfulness`; the whole tour: :func:`run_demo`;
- errors (:class:`ModalensError` and its one-line :class:`SpecError`, :class:`DataError`,
  :class:`ModelError`), :func:`configure_threads` and ``__version__``.

Each sub-package's ``__all__`` lists what a user calls there (e.g.
:func:`modalens.validation.ablate`); helpers stay in their modules. Renamed: ``test`` ->
:func:`evaluate`, ``generate`` -> :func:`generate_synthetic`, ``summarize`` ->
:func:`summarize_scores` (the old names warn and forward for one release,
:mod:`modalens.deprecation`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .errors import DataError, ModalensError, ModelError, SpecError
from .lazy import lazy_exports
from .threads import configure_threads

__version__ = "0.1.0"

#: public name -> module that defines it (imported on first access)
_EXPORTS = {
    "load_spec": "modalens.data.specfile",
    "spec_from_dict": "modalens.data.specfile",
    "get_preset": "modalens.data.presets",
    "mapinwild_spec": "modalens.data.presets",
    "bigearthnet_spec": "modalens.data.presets",
    "check_dataset": "modalens.data.checks",
    "generate_synthetic": "modalens.data.synthetic",
    "MultimodalDataset": "modalens.data.dataset",
    "UNet": "modalens.models.unet",
    "fit": "modalens.training.fit",
    "evaluate": "modalens.training.evaluate",
    "predict": "modalens.training.predict",
    "load_run": "modalens.training.run",
    "AttributionOptions": "modalens.attribution.options",
    "paper_options": "modalens.attribution.options",
    "faithfulness": "modalens.validation.faithfulness",
    "attribute": "modalens.attribution.api",
    "attribute_run": "modalens.attribution.run",
    "occlusion_maps": "modalens.attribution.maps",
    "summarize_scores": "modalens.attribution.aggregation",
    "sanity_check": "modalens.validation.sanity",
    "run_demo": "modalens.demo",
    # deprecated names, one release (each call warns; not in __all__)
    "generate": "modalens.data.synthetic.generate",
    "test": "modalens.training.evaluate",
    "summarize": "modalens.attribution.aggregation",
}

if TYPE_CHECKING:  # static view of the lazy exports
    from .attribution.aggregation import summarize_scores
    from .attribution.api import attribute
    from .attribution.maps import occlusion_maps
    from .attribution.options import AttributionOptions, paper_options
    from .attribution.run import attribute_run
    from .data.checks import check_dataset
    from .data.dataset import MultimodalDataset
    from .data.presets import bigearthnet_spec, get_preset, mapinwild_spec
    from .data.specfile import load_spec, spec_from_dict
    from .data.synthetic import generate_synthetic
    from .demo import run_demo
    from .models.unet import UNet
    from .training.evaluate import evaluate
    from .training.fit import fit
    from .training.predict import predict
    from .training.run import load_run
    from .validation.faithfulness import faithfulness
    from .validation.sanity import sanity_check

__all__ = [
    "AttributionOptions",
    "DataError",
    "ModalensError",
    "ModelError",
    "MultimodalDataset",
    "SpecError",
    "UNet",
    "__version__",
    "attribute",
    "attribute_run",
    "bigearthnet_spec",
    "check_dataset",
    "configure_threads",
    "faithfulness",
    "evaluate",
    "fit",
    "generate_synthetic",
    "get_preset",
    "load_run",
    "load_spec",
    "mapinwild_spec",
    "occlusion_maps",
    "paper_options",
    "predict",
    "run_demo",
    "sanity_check",
    "spec_from_dict",
    "summarize_scores",
]


__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, globals())
