"""`TrainConfig`: how a model is trained (optimizer, loop, precision, checkpoints)."""

from __future__ import annotations

from collections.abc import Mapping
from contextlib import AbstractContextManager, nullcontext
from dataclasses import asdict, dataclass
from typing import Any

import torch

from dcnrank.config.rules import Rule, at_least, half_open

__all__ = ["EMBEDDING_OPTIMIZERS", "EMBEDDING_UPDATES", "LOSSES", "PRECISIONS", "RULES", "TrainConfig"]

PRECISIONS = ("fp32", "bf16")
# `train.embedding_updates`: "auto" (sparse for large tables), "dense", "sparse"
# (`dcnrank.training.embedding_updates`); `train.embedding_optimizer`: the tables' rule
EMBEDDING_UPDATES = ("auto", "dense", "sparse")
EMBEDDING_OPTIMIZERS = ("adamw", "rowwise_adagrad")
# `train.loss`: "auto" (the task's own: MSE, BCE, or the default ranking loss) or a ranking
# loss of `dcnrank.training.ranking_losses.RANKING_LOSSES` (a test keeps the two in step)
LOSSES = (
    "auto", "pairwise_hinge", "pairwise_logistic", "pairwise_soft_zero_one", "pairwise_mse",
    "softmax", "list_mle", "approx_ndcg", "lambda_rank", "mse",
)  # fmt: skip

# `train.*` key -> its range rule, checked when a configuration is read (`check_field`)
RULES: Mapping[str, Rule] = {
    "train.learning_rate": (lambda v: v > 0, "must be > 0"),
    "train.epochs": (at_least(1), "must be ≥ 1"),
    "train.batch_size": (at_least(1), "must be ≥ 1"),
    "train.eval_batch_size": (at_least(1), "must be ≥ 1"),
    "train.weight_decay": (at_least(0.0), "must be ≥ 0"),
    "train.beta_1": (half_open(0.0, 1.0), "must be in [0, 1)"),
    "train.beta_2": (half_open(0.0, 1.0), "must be in [0, 1)"),
    "train.epsilon": (lambda v: v > 0, "must be > 0"),
    "train.precision": (lambda v: v in PRECISIONS, f"must be one of {', '.join(PRECISIONS)}"),
    "train.seed": (at_least(0), "must be ≥ 0"),
    "train.warmup_steps": (at_least(0), "must be ≥ 0"),
    "train.lr_decay": (lambda v: 0.0 < v <= 1.0, "must be in (0, 1]"),
    "train.loss": (lambda v: v in LOSSES, f"must be one of {', '.join(LOSSES)}"),
    "train.list_size": (at_least(2), "must be ≥ 2"),
    "train.lists_per_group": (at_least(0), "must be ≥ 0"),
    "train.pointwise_weight": (at_least(0.0), "must be ≥ 0"),
    "train.embedding_updates": (
        lambda v: v in EMBEDDING_UPDATES, f"must be one of {', '.join(EMBEDDING_UPDATES)}"
    ),
    "train.embedding_optimizer": (
        lambda v: v in EMBEDDING_OPTIMIZERS, f"must be one of {', '.join(EMBEDDING_OPTIMIZERS)}"
    ),
    "train.embedding_learning_rate": (at_least(0.0), "must be ≥ 0 (0: train.learning_rate)"),
}


@dataclass(frozen=True)
class TrainConfig:
    """How to train; the defaults are the seed's (Keras AdamW, lr 0.01, batch 1024).

    Args:
        learning_rate: float > 0. Defaults to 0.01.
        epochs: int ≥ 1. Defaults to 10.
        batch_size: int ≥ 1. Defaults to 1024.
        weight_decay: float ≥ 0, decoupled, on every parameter. Defaults to 0.004.
        beta_1, beta_2, epsilon: Adam's constants, Keras' defaults.
        shuffle: bool, reshuffle the rows every epoch. Defaults to `False`: the
            seed's fixed batch order (its data is shuffled once, then cached).
        seed: int, seeds the per-epoch shuffles. Defaults to 0.
        eval_batch_size: int, rows per forward pass when evaluating.
        precision: `"fp32"` (default) or `"bf16"`: matrix products in bfloat16
            under `torch.autocast`, weights, optimizer state and loss in fp32.
        checkpoint_every: int ≥ 1, optimizer steps between checkpoints when `fit`
            is given a `checkpoint_dir` (one is also written at every epoch end).
            Defaults to 200. It is not part of the checkpoint's fingerprint.
        warmup_steps: int ≥ 0, optimizer steps over which the learning rate ramps up
            linearly, `(s + 1) / warmup_steps` of it at step `s` (0-based, counted over
            the whole run). Defaults to 0 (no warm-up).
        lr_decay: float in (0, 1], the learning rate is multiplied by
            `lr_decay ** epoch` (0-based epoch). Defaults to 1 (no decay).
            See :meth:`learning_rate_at`.
        loss: ``"auto"`` (default: the task's own, MSE for regression, BCE for binary and
            `DEFAULT_RANKING_LOSS` for ranking) or, for a ranking task, one of
            :data:`LOSSES` (`dcnrank.training.ranking_losses`).
        list_size: int ≥ 2, rows per list of a ranking task. Defaults to 10.
        lists_per_group: int ≥ 0, for a ranking task: 0 (default) splits each group's rows
            into lists of at most `list_size` every epoch (every row once per epoch);
            `k ≥ 1` samples `k` lists of `list_size` rows without replacement from each
            group per epoch (keras-rs' list-wise tutorial: 50). A ranking batch holds
            `max(1, batch_size // list_size)` lists.
        pointwise_weight: float ≥ 0, for a ranking task: the ranking loss plus this times
            the mean squared error of the scores against the labels over the lists' rows
            (`ranking_losses.with_pointwise`). Defaults to 0 (the ranking loss alone).
        embedding_updates: `"auto"` (default), `"dense"` or `"sparse"`: whether the
            embedding tables' gradients are the rows a batch looked up and only those rows
            are updated (`dcnrank.training.embedding_updates`); `"auto"` is sparse when the
            tables hold many more rows than a batch looks up (`wants_sparse`).
        embedding_optimizer: `"adamw"` (default: the same AdamW as every other weight,
            row-wise when sparse) or `"rowwise_adagrad"` (TorchRec's, one accumulator per
            row) for the embedding tables.
        embedding_learning_rate: float ≥ 0, the tables' learning rate; 0 (default) means
            `learning_rate`. Warm-up and decay scale it as they scale `learning_rate`.

    Example:
        >>> config = TrainConfig(learning_rate=0.01, warmup_steps=4, lr_decay=0.5)
        >>> [config.learning_rate_at(step, epoch=0) for step in range(5)]
        [0.0025, 0.005, 0.0075, 0.01, 0.01]
        >>> config.learning_rate_at(step=10, epoch=2)
        0.0025
    """

    learning_rate: float = 0.01
    epochs: int = 10
    batch_size: int = 1024
    weight_decay: float = 0.004
    beta_1: float = 0.9
    beta_2: float = 0.999
    epsilon: float = 1e-7
    shuffle: bool = False
    seed: int = 0
    eval_batch_size: int = 4096
    precision: str = "fp32"
    checkpoint_every: int = 200
    warmup_steps: int = 0
    lr_decay: float = 1.0
    loss: str = "auto"
    list_size: int = 10
    lists_per_group: int = 0
    pointwise_weight: float = 0.0
    embedding_updates: str = "auto"
    embedding_optimizer: str = "adamw"
    embedding_learning_rate: float = 0.0

    def __post_init__(self) -> None:
        if self.precision not in PRECISIONS:
            raise ValueError(
                f"`precision` must be one of {', '.join(PRECISIONS)}. Received: precision={self.precision!r}"
            )
        for name in ("epochs", "batch_size", "eval_batch_size", "checkpoint_every"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"`{name}` must be a positive int. Received: {name}={value!r}")
        if not self.learning_rate > 0:
            raise ValueError(f"`learning_rate` must be > 0. Received: learning_rate={self.learning_rate!r}")
        warmup = self.warmup_steps
        if isinstance(warmup, bool) or not isinstance(warmup, int) or warmup < 0:
            raise ValueError(f"`warmup_steps` must be an int ≥ 0. Received: warmup_steps={warmup!r}")
        decay = self.lr_decay
        if isinstance(decay, bool) or not isinstance(decay, int | float) or not 0.0 < decay <= 1.0:
            raise ValueError(f"`lr_decay` must be a number in (0, 1]. Received: lr_decay={decay!r}")
        if self.loss not in LOSSES:
            raise ValueError(f"`loss` must be one of {', '.join(LOSSES)}. Received: loss={self.loss!r}")
        for name, allowed in (("embedding_updates", EMBEDDING_UPDATES), ("embedding_optimizer", EMBEDDING_OPTIMIZERS)):
            if getattr(self, name) not in allowed:
                raise ValueError(
                    f"`{name}` must be one of {', '.join(allowed)}. Received: {name}={getattr(self, name)!r}"
                )
        for name in ("embedding_learning_rate", "pointwise_weight"):
            rate = getattr(self, name)
            if isinstance(rate, bool) or not isinstance(rate, int | float) or not 0 <= rate < float("inf"):
                raise ValueError(f"`{name}` must be a number ≥ 0. Received: {name}={rate!r}")
        for name, low in (("list_size", 2), ("lists_per_group", 0)):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise ValueError(f"`{name}` must be an int ≥ {low}. Received: {name}={value!r}")

    @property
    def lists_per_batch(self) -> int:
        """Lists in a ranking batch: `batch_size` counts rows, `max(1, batch_size // list_size)`."""
        return max(1, self.batch_size // self.list_size)

    def learning_rate_at(self, step: int, epoch: int) -> float:
        """The learning rate of optimizer step `step` (0-based, over the whole run) in epoch `epoch` (0-based).

            `lr = learning_rate · min(1, (step + 1) / warmup_steps) · lr_decay ** epoch`

        (the warm-up factor is 1 without warm-up). It depends on `(step, epoch)` only, so a
        resumed run steps with the rates of an uninterrupted one; with the defaults it is
        `learning_rate` exactly.
        """
        rate = self.learning_rate
        if self.warmup_steps and step + 1 < self.warmup_steps:
            rate *= (step + 1) / self.warmup_steps
        if self.lr_decay != 1.0:
            rate *= self.lr_decay**epoch
        return rate

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def autocast(self, device: torch.device | str = "cpu") -> AbstractContextManager:
        """The mixed-precision context of this config (a no-op for fp32: `nullcontext`,
        which costs 0.4 µs a step where a disabled `torch.autocast` costs 5)."""
        if self.precision != "bf16":
            return nullcontext()
        return torch.autocast(torch.device(device).type, dtype=torch.bfloat16)
