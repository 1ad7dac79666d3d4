"""Combining the losses of several tasks into the one a multitask model minimises.

:class:`LossWeighting` takes the main task's loss and each auxiliary task's loss (by name) and
returns the total:

- ``fixed``: ``L = L_main + sum_k w_k * L_k`` with the weights ``w_k`` of the config (the main
  task's weight is 1);
- ``uncertainty``: learned homoscedastic uncertainty weighting (Kendall, Gal & Cipolla, CVPR
  2018): one learned log-variance ``s_t`` per task, main task included, and
  ``L = sum_t exp(-s_t) * L_t + s_t``. This is the regression form of their loss without the
  factor 1/2, used for every task, the classification ones included (their derivation for
  softmax likelihoods gives the same form up to an approximation); ``s_t`` starts at 0, so the
  first steps weigh every task 1. A task whose loss stays large (noisy or unpredictable) is
  given a larger variance ``exp(s_t)`` and so a smaller weight ``exp(-s_t)``.

:meth:`LossWeighting.weights` and :meth:`LossWeighting.log_vars` report the current values,
which the training module logs every epoch.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
from torch import Tensor, nn

#: the ways of combining task losses (the first is the default)
WEIGHTINGS = ("fixed", "uncertainty")


class LossWeighting(nn.Module):
    """The total loss of several tasks (see the module docstring).

    Args:
        names: the tasks, the main one first.
        weights: fixed weight per task (missing ones are 1; unused with ``uncertainty``).
        method: ``fixed`` or ``uncertainty``.

    Raises:
        ValueError: an unknown ``method``, no task, or a negative weight.
    """

    fixed: Tensor  # a buffer (registered in __init__)

    def __init__(
        self,
        names: Sequence[str],
        weights: Mapping[str, float] | None = None,
        method: str = WEIGHTINGS[0],
    ) -> None:
        super().__init__()
        if method not in WEIGHTINGS:
            raise ValueError(f"method must be one of {WEIGHTINGS}, got {method!r}")
        names = list(names)
        if not names:
            raise ValueError("no task to weigh")
        given = dict(weights or {})
        if any(float(w) < 0 for w in given.values()):
            raise ValueError("loss weights must be >= 0")
        self.names = names
        self.method = method
        self.register_buffer(
            "fixed", torch.tensor([float(given.get(n, 1.0)) for n in names], dtype=torch.float32)
        )
        self.log_var = nn.Parameter(torch.zeros(len(names))) if method == "uncertainty" else None

    @property
    def learned(self) -> bool:
        """True when the weights are learned (``uncertainty``)."""
        return self.log_var is not None

    def forward(self, losses: Mapping[str, Tensor]) -> Tensor:
        """The total loss of the tasks' losses (every task of :attr:`names` must be given)."""
        stacked = torch.stack([losses[n].float() for n in self.names])
        if self.log_var is None:
            return (self.fixed * stacked).sum()
        return (torch.exp(-self.log_var) * stacked + self.log_var).sum()

    def weights(self) -> dict[str, float]:
        """The current weight of each task (``exp(-s_t)`` when learned)."""
        w = self.fixed if self.log_var is None else torch.exp(-self.log_var.detach())
        return {n: float(v) for n, v in zip(self.names, w.tolist(), strict=True)}

    def log_vars(self) -> dict[str, float]:
        """The learned log-variances ``s_t`` by task (empty for fixed weights)."""
        if self.log_var is None:
            return {}
        values = self.log_var.detach().tolist()
        return {n: float(v) for n, v in zip(self.names, values, strict=True)}
