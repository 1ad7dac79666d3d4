"""The multitask stage: modalities as auxiliary tasks, compared with their baselines.

Instead of feeding some modalities to the model, a multitask run predicts them from its shared
encoder beside the main target (Najjar et al., "modality-as-auxiliary-task"), so the deployed
model needs only its input modalities. The mechanism itself lives where every run's does --
the ``auxiliary:`` config section (:mod:`modalens.training.auxconfig`), auxiliary modalities
read as targets (:mod:`modalens.data.auxiliary`), :class:`~modalens.models.MultiTaskUNet`, one
task per head (:func:`modalens.tasks.task_for_modality`) combined by
:class:`~modalens.tasks.LossWeighting` -- so ``modalens fit``, ``test`` and ``predict`` handle
multitask runs. This stage builds on all of that and on the ablation's run machinery:

- :mod:`.fit` -- :func:`fit_multitask` (``modalens mtl fit``): train, test, parameters per head.
- :mod:`.plan` -- the unimodal, input-fusion and multitask models of one config.
- :mod:`.paired` -- the Wilcoxon signed-rank test (exact or normal approximation) in numpy.
- :mod:`.table` -- ``mtl_compare.csv`` / ``.md``.
- :mod:`.compare` -- :func:`compare` (``modalens mtl compare``): every model over seeds,
  resumable, with paired tests (``mtl_tests.csv``).
"""

from .compare import CompareResult, compare, paired_tests, sample_errors
from .fit import fit_multitask, parameter_table
from .paired import PairedTest, paired_test, wilcoxon_signed_rank
from .plan import MODELS, main_metric, model_config, plan_models
from .table import build_compare_table, markdown_compare

__all__ = [
    "MODELS",
    "CompareResult",
    "PairedTest",
    "build_compare_table",
    "compare",
    "fit_multitask",
    "main_metric",
    "markdown_compare",
    "model_config",
    "paired_test",
    "paired_tests",
    "parameter_table",
    "plan_models",
    "sample_errors",
    "wilcoxon_signed_rank",
]
