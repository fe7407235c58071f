"""Model-agnostic training: Keras-exact AdamW, a Trainer, regression metrics."""

from dcnrank.training.metrics import mae, rmse
from dcnrank.training.optimizer import KerasAdamW
from dcnrank.training.trainer import History, TrainConfig, Trainer

__all__ = ["History", "KerasAdamW", "TrainConfig", "Trainer", "mae", "rmse"]
