"""The multitask stage: modalities as auxiliary tasks, compared with their baselines.

Instead of feeding some modalities to the model, a multitask run predicts them from its shared
encoder beside the main target (Najjar et al., "modality-as-auxiliary-task"), so the deployed
model needs only its input modalities. The mechanism itself lives where every run's does --
the ``auxiliary:`` config section (:mod:`modalens.training.auxconfig`), auxiliary modalities
read as targets (:mod:`modalens.data.auxiliary`), :class:`~modalens.models.MultiTaskUNet`, one
task per head (:func:`modalens.tasks.registry.task_for_modality`) combined by
:class:`~modalens.tasks.LossWeighting` -- so ``modalens fit``, ``test`` and ``predict`` handle
multitask runs. This stage builds on all of that and on the ablation's run machinery:

- :mod:`.fit` -- :func:`fit_multitask` (``modalens mtl fit``): train, test, parameters per head.
- :mod:`.plan` -- the unimodal, input-fusion and multitask models of one config.
- :mod:`.paired` -- the Wilcoxon signed-rank test (exact or normal approximation) in numpy.
- :mod:`.table` -- ``mtl_compare.csv`` / ``.md``.
- :mod:`.compare` -- :func:`compare` (``modalens mtl compare``): every model over seeds,
  resumable, with paired tests (``mtl_tests.csv``).
- :mod:`.errormaps`, :mod:`.errorstats`, :mod:`.sensitivity`, :mod:`.explain_figures` and
  :mod:`.explain` -- :func:`explain` (``modalens mtl explain``): do the auxiliary tasks' errors
  explain the main task's? Correlations, pixel correlations, worst-decile AUROC, error maps and
  per-head occlusion sensitivity; :func:`describe_explanation` in words.
"""

from .compare import CompareResult, compare
from .explain import Explanation, describe_explanation, explain
from .fit import fit_multitask
from .paired import PairedTest, paired_test

__all__ = [
    "compare",
    "CompareResult",
    "describe_explanation",
    "explain",
    "Explanation",
    "fit_multitask",
    "paired_test",
    "PairedTest",
]
