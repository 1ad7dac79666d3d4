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
- :mod:`.agree` -- :func:`agreement`: signed deviations vs influence with bootstrap intervals
  over test samples (``modalens agreement``; the bootstrap in :mod:`.bootstrap`);
  :mod:`.agreement_text` writes it as plain text (:func:`format_agreement`) with the notes on
  substitute metrics and too few values.
- :mod:`.figures` -- the Fig. 5-like agreement figure.
- :mod:`.fills` -- fill sanity: each strategy's generated fill against the train range.
- :mod:`.strategies` -- :func:`compare_strategies` (``modalens strategies``): shares, ranks,
  Kendall's W and fill flags per strategy; :func:`describe_strategies` for reports.
- :mod:`.strategy_figure` -- the Fig. 6-like strategy figure.
- :mod:`.pruning` -- :func:`prune`: retrain without the k least influential modalities, metric
  change and speed-up per k (``modalens prune``); :mod:`.prunefigure` draws it.
- :mod:`.sanity` -- :func:`sanity_check` (``modalens attribute --sanity``): the model-parameter
  randomisation check (Adebayo et al. 2018): does the ranking change when the weights are
  re-initialised? :func:`randomisation_check` for any model.
- :mod:`.faithfulness` -- :func:`faithfulness`: the benchmark on synthetic data with known
  importances and a decoy (``modalens bench faithfulness``); :mod:`.faithfulness_scores` scores
  every method against the truth (:func:`describe_faithfulness`), :mod:`.faithfulness_figure`
  draws it.
- :mod:`.subsets_run` -- :func:`evaluate_subsets` (``modalens subsets``): every modality subset
  scored with one model (the scoring in :mod:`.subsets`); :mod:`.dropout_check` --
  :func:`dropout_vs_ablation`: one modality-dropout model's subsets against the ablation's
  retraining.
"""

from typing import TYPE_CHECKING

from ..lazy import lazy_exports

#: public name -> module of this package that defines it (imported on first access, so that
#: reading a table, e.g. for the report, does not load torch and Lightning)
_EXPORTS = {
    "AblationResult": "ablation",
    "ablate": "ablation",
    "AgreementResult": "agree",
    "agreement": "agree",
    "format_agreement": "agreement_text",
    "measure_run": "measure",
    "PruningResult": "pruning",
    "describe_pruning": "pruning",
    "prune": "pruning",
    "RunRecord": "runs",
    "describe_sanity": "sanity",
    "format_sanity": "sanity",
    "sanity_check": "sanity",
    "Setting": "settings",
    "StrategiesResult": "strategies",
    "compare_strategies": "strategies",
    "describe_strategies": "strategies",
    "FaithfulnessResult": "faithfulness",
    "FaithfulnessSettings": "faithfulness",
    "faithfulness": "faithfulness",
    "describe_faithfulness": "faithfulness_scores",
    "SubsetsResult": "subsets",
    "evaluate_subsets": "subsets_run",
    "DropoutCheckResult": "dropout_check",
    "dropout_vs_ablation": "dropout_check",
}

if TYPE_CHECKING:  # pragma: no cover -- for type checkers and IDEs
    from .ablation import AblationResult, ablate
    from .agree import AgreementResult, agreement
    from .agreement_text import format_agreement
    from .dropout_check import DropoutCheckResult, dropout_vs_ablation
    from .faithfulness import FaithfulnessResult, FaithfulnessSettings, faithfulness
    from .faithfulness_scores import describe_faithfulness
    from .measure import measure_run
    from .pruning import PruningResult, describe_pruning, prune
    from .runs import RunRecord
    from .sanity import describe_sanity, format_sanity, sanity_check
    from .settings import Setting
    from .strategies import StrategiesResult, compare_strategies, describe_strategies
    from .subsets import SubsetsResult
    from .subsets_run import evaluate_subsets

__all__ = [
    "ablate",
    "AblationResult",
    "agreement",
    "AgreementResult",
    "compare_strategies",
    "describe_faithfulness",
    "describe_pruning",
    "describe_sanity",
    "describe_strategies",
    "DropoutCheckResult",
    "dropout_vs_ablation",
    "evaluate_subsets",
    "faithfulness",
    "FaithfulnessResult",
    "FaithfulnessSettings",
    "format_agreement",
    "format_sanity",
    "measure_run",
    "prune",
    "PruningResult",
    "RunRecord",
    "sanity_check",
    "Setting",
    "StrategiesResult",
    "SubsetsResult",
]

__getattr__, __dir__ = lazy_exports(
    __name__, {k: f"{__name__}.{v}" for k, v in _EXPORTS.items()}, globals()
)
