"""The tasks stage: the only code that knows what a task is (losses, metrics, outputs)."""

from .losses import masked_cross_entropy, masked_mae, masked_mse, task_loss

__all__ = ["masked_cross_entropy", "masked_mae", "masked_mse", "task_loss"]
