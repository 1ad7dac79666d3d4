"""The validation stage: does occlusion influence agree with retraining without a modality?

The paper (Ekim & Schmitt, IEEE GRSL 2024, Table I and Fig. 5) validates its occlusion
influence with an ablation -- models trained on each modality alone and with each modality left
out -- and reads the agreement off a bar chart. This stage runs that ablation reproducibly and
puts numbers on the agreement. It builds on every other stage and nothing but the command line
and the demo imports it.

- :mod:`.settings` -- the ablation plan (all, single, leave-one-out settings) and run configs.
- :mod:`.runs` -- one run: train, resume or skip; test; its cached Table I row.
- :mod:`.measure` -- training seconds per epoch, inference seconds per sample, parameters.
- :mod:`.record` -- ``ablation.json``: the config an ablation folder was made from.
- :mod:`.table` -- Table I as CSV and Markdown (mean ± std over seeds).
- :mod:`.ablation` -- :func:`ablate`: every run of the plan, resumable (``modalens ablate``).
- :mod:`.correlation` -- Spearman, Kendall tau-b and Pearson in numpy (ties: average ranks).
- :mod:`.agreement` -- :func:`agreement`: deviations vs influence with bootstrap intervals
  over test samples (``modalens agreement``).
- :mod:`.figures` -- the Fig. 5-like agreement figure.
- :mod:`.faithfulness` -- :func:`faithfulness`: the benchmark on synthetic data with known
  importances and a decoy (``modalens bench faithfulness``); :mod:`.faithfulness_scores` scores
  every method against the truth (:func:`describe_faithfulness`), :mod:`.faithfulness_figure`
  draws it.
"""

from .ablation import AblationResult, ablate
from .agreement import AgreementResult, agreement, format_agreement
from .correlation import average_ranks, kendall, pearson, shares, spearman
from .faithfulness import FaithfulnessResult, faithfulness
from .faithfulness_figure import faithfulness_figure
from .faithfulness_scores import describe_faithfulness, method_label
from .measure import epoch_seconds, inference_seconds, measure_run
from .runs import RunRecord
from .settings import Setting, leave_one_out, parse_seeds, plan_settings
from .table import build_table, markdown_table

__all__ = [
    "AblationResult",
    "AgreementResult",
    "FaithfulnessResult",
    "RunRecord",
    "Setting",
    "ablate",
    "agreement",
    "average_ranks",
    "build_table",
    "describe_faithfulness",
    "epoch_seconds",
    "faithfulness",
    "faithfulness_figure",
    "format_agreement",
    "inference_seconds",
    "kendall",
    "leave_one_out",
    "markdown_table",
    "measure_run",
    "method_label",
    "parse_seeds",
    "pearson",
    "plan_settings",
    "shares",
    "spearman",
]
