"""Train several independent copies of a model at once, as one vectorized model."""

from __future__ import annotations

import copy
import logging
import time
from collections.abc import Sequence

import torch
from torch import nn
from torch.func import functional_call, stack_module_state, vmap

from dcnrank.config.train_config import TrainConfig
from dcnrank.metrics.regression import mae, rmse
from dcnrank.progress import progress_bar
from dcnrank.training.trainer import History, make_optimizer

log = logging.getLogger(__name__)


class StackedTrainer:
    """Trains `T` models of one architecture together: numerically the same as
    training each alone with `Trainer`, but every layer runs once for all `T`.

    The models' parameters are stacked along a new leading axis (`(T, ...)`)
    and the architecture is run under `torch.func.vmap`, so a `(B, d) @ (d, k)`
    product becomes one `(T, B, d) @ (T, d, k)` batched product. The loss is the
    sum of the per-model mean losses, so each model's gradient is exactly its
    own; `KerasAdamW` is element-wise, so the update of each slice is what a
    separate optimizer would do. Model `t` sees the batches that
    `Trainer(replace(config, seed=seeds[t]))` would show it, with the same
    learning-rate schedule (`TrainConfig.learning_rate_at`). The loss is the MSE
    alone: a `Regularized` model's penalty is not added here.

    Args:
        config: the training settings shared by all models.
        seeds: per model, the seed of its batch shuffles (used when
            `config.shuffle`).
        progress: show a bar (`None`: only on a terminal).
        desc: label of the progress bar.

    Example:
        >>> models = [torch.nn.Sequential(torch.nn.Linear(2, 1), torch.nn.Flatten(0)) for _ in range(3)]
        >>> x, y = torch.randn(64, 2), torch.randn(64)
        >>> histories = StackedTrainer(TrainConfig(epochs=2, batch_size=16), seeds=[0, 1, 2]).fit(models, x, y)
        >>> len(histories), len(histories[0].epochs)
        (3, 2)
    """

    def __init__(
        self,
        config: TrainConfig,
        seeds: Sequence[int],
        progress: bool | None = False,
        desc: str = "train",
    ) -> None:
        if not seeds:
            raise ValueError("`seeds` must name at least one model. Received: seeds=[]")
        self.config = config
        self.seeds = list(seeds)
        self.progress = progress
        self.desc = desc

    def _stack(self, models: Sequence[nn.Module]) -> tuple[nn.Module, dict, dict]:
        if len(models) != len(self.seeds):
            raise ValueError(
                f"`models` must hold one model per seed ({len(self.seeds)}). Received: {len(models)} models"
            )
        params, buffers = stack_module_state(list(models))
        base = copy.deepcopy(models[0]).to("meta")
        return base, params, buffers

    def _forward(self, base: nn.Module, params: dict, buffers: dict, x: torch.Tensor, shared: bool) -> torch.Tensor:
        def call(p: dict, b: dict, xb: torch.Tensor) -> torch.Tensor:
            return functional_call(base, (p, b), (xb,))

        with self.config.autocast(x.device):
            out = vmap(call, in_dims=(0, 0, None if shared else 0), randomness="different")(params, buffers, x)
        return out.float()

    def fit(self, models: Sequence[nn.Module], x: torch.Tensor, y: torch.Tensor) -> list[History]:
        """Train `models` (one per seed) on `(x, y)`; their weights are updated in place."""
        if len(x) != len(y):
            raise ValueError(f"`x` and `y` must have the same rows. Received: {len(x)} and {len(y)}")
        if len(x) == 0:
            raise ValueError("`x` must not be empty. Received: 0 rows")
        c = self.config
        base, params, buffers = self._stack(models)
        optimizer = make_optimizer(params.values(), c)
        generators = [torch.Generator().manual_seed(s) for s in self.seeds]
        n, t = len(x), len(models)
        starts = range(0, n, c.batch_size)
        histories = [History() for _ in models]
        step = 0
        base.train()
        for epoch in progress_bar(range(c.epochs), total=c.epochs, desc=self.desc, enabled=self.progress):
            began = time.perf_counter()
            orders = torch.stack([torch.randperm(n, generator=g) for g in generators]) if c.shuffle else None
            total = torch.zeros(t, dtype=torch.float64, device=x.device)
            for start in starts:
                if orders is None:
                    xb, yb = x[start : start + c.batch_size], y[start : start + c.batch_size]  # (B, ...), (B,)
                    predictions = self._forward(base, params, buffers, xb, shared=True)  # (T, B)
                else:
                    index = orders[:, start : start + c.batch_size].to(x.device)  # (T, B)
                    xb, yb = x[index], y[index]  # (T, B, ...), (T, B)
                    predictions = self._forward(base, params, buffers, xb, shared=False)  # (T, B)
                losses = (predictions - yb).square().mean(dim=-1)  # (T,)
                optimizer.zero_grad(set_to_none=True)
                losses.sum().backward()
                for group in optimizer.param_groups:
                    group["lr"] = c.learning_rate_at(step, epoch)  # `Trainer.fit`'s schedule
                optimizer.step()
                step += 1
                total += losses.detach()
            seconds = time.perf_counter() - began
            for history, loss in zip(histories, (total / len(starts)).tolist(), strict=True):
                history.epochs.append({"epoch": epoch + 1, "loss": loss, "seconds": seconds})
        self._unstack(params, buffers, models)
        return histories

    @staticmethod
    @torch.no_grad()
    def _unstack(params: dict, buffers: dict, models: Sequence[nn.Module]) -> None:
        for i, model in enumerate(models):
            state = {name: value[i] for name, value in (*params.items(), *buffers.items())}
            model.load_state_dict(state, strict=False)

    @torch.no_grad()
    def predict(self, models: Sequence[nn.Module], x: torch.Tensor) -> torch.Tensor:
        """Every model's outputs for every row of `x`: a `(T, N)` tensor."""
        base, params, buffers = self._stack(models)
        base.eval()
        # T models share each forward pass: keep its activations the size of one model's.
        step = max(1, self.config.eval_batch_size // len(models))
        return torch.cat(
            [self._forward(base, params, buffers, x[i : i + step], shared=True) for i in range(0, len(x), step)],
            dim=1,
        )

    def evaluate(self, models: Sequence[nn.Module], x: torch.Tensor, y: torch.Tensor) -> list[dict[str, float]]:
        """Per model, `loss` (MSE), `rmse` and `mae` on `(x, y)`."""
        predictions = self.predict(models, x)  # (T, N)
        return [
            {"loss": rmse(p, y) ** 2, "rmse": rmse(p, y), "mae": mae(p, y)} for p in predictions.unbind(0)
        ]
