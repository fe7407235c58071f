"""Model-agnostic training: Keras-exact AdamW, a Trainer, the tasks' losses and metrics,
early stopping on a validation slice."""

from dcnrank.config.train_config import TrainConfig
from dcnrank.training.early_stopping import EarlyStoppingResult, fit_with_early_stopping
from dcnrank.training.optimizer import KerasAdamW
from dcnrank.training.trainer import History, Trainer

__all__ = ["EarlyStoppingResult", "History", "KerasAdamW", "TrainConfig", "Trainer", "fit_with_early_stopping"]
