"""`Trainer`: fits any `(B, ...) -> (B,)` model on in-memory tensors or a `BatchStream`,
in one process or in several with DistributedDataParallel."""

from __future__ import annotations

import hashlib
import logging
import time
import weakref
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, cast, runtime_checkable

import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from dcnrank.config.train_config import TrainConfig
from dcnrank.free_memory import release_free_memory
from dcnrank.metrics.regression import mae, rmse
from dcnrank.progress import progress_bar
from dcnrank.training.checkpoint import (
    CHECKPOINT_FILE,
    CheckpointError,
    Resumable,
    TrainingState,
    config_fingerprint,
    has_checkpoint,
    load_checkpoint,
    save_checkpoint,
)
from dcnrank.training.distributed import all_reduce_sum, current_world
from dcnrank.training.embedding_updates import embedding_modules, lookups_per_row, set_sparse_gradients, wants_sparse
from dcnrank.training.optimizer import KerasAdamW
from dcnrank.world import World

# `Trainer.predict` hands freed memory back to the system every this many batches (often
# enough that a validation pass stays level, rarely enough that re-touching pages is free)
RELEASE_EVERY_BATCHES = 8

log = logging.getLogger(__name__)

LossFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


@dataclass
class History:
    """Per-epoch records: `epochs[i]` holds `loss` (mean training batch loss),
    `seconds`, and validation metrics when a validation set was given."""

    epochs: list[dict[str, float]] = field(default_factory=list)

    @property
    def loss(self) -> list[float]:
        return [e["loss"] for e in self.epochs]


@runtime_checkable
class BatchStream(Protocol):
    """Training batches read as they are needed (a file streamed chunk by chunk), not held.

    `Trainer.fit` takes one in place of `(x, y)`. Under DDP it already yields this
    rank's share, the same number of batches on every rank.
    """

    def num_batches(self, epoch: int) -> int:
        """How many batches `batches(epoch, 0)` yields."""
        ...

    def batches(self, epoch: int, skip: int) -> Iterator[tuple[Any, torch.Tensor, float]]:
        """`(inputs, labels, loss weight)` of epoch `epoch` (0-based) from batch `skip` on;
        the same epoch always yields the same batches."""
        ...

    def fingerprint(self) -> dict[str, Any]:
        """What identifies the data, for checkpoints (file, rows, encoder)."""
        ...


@runtime_checkable
class Regularized(Protocol):
    """A model with a penalty of its own (e.g. an L2 penalty on its embeddings) that
    `Trainer.fit` adds to every training batch's loss."""

    def regularization_loss(self) -> torch.Tensor:
        """The penalty, a scalar tensor, after the batch's forward pass (0 for none)."""
        ...


class TensorBatches:
    """Rows held in memory as a `BatchStream`: batches of `batch_size` rows, in a fresh
    order drawn from `generator` each epoch (stored order without one).

    Under DDP every rank holds all rows and takes its contiguous share of each batch
    (the global batch), with the loss weight `rows · world size / batch rows`, so that
    DDP's average of the ranks' gradients is the whole batch's.

    Example:
        >>> data = TensorBatches(torch.arange(5.0), torch.zeros(5), 2, None, World())
        >>> [xb.tolist() for xb, _, _ in data.batches(0, skip=1)], data.num_batches(0)
        ([[2.0, 3.0], [4.0]], 3)
    """

    def __init__(
        self, x: Any, y: torch.Tensor, batch_size: int, generator: torch.Generator | None, world: World
    ) -> None:
        self.x, self.y, self.batch_size, self.generator, self.world = x, y, batch_size, generator, world

    def num_batches(self, epoch: int) -> int:
        return -(-len(self.x) // self.batch_size)

    def batches(self, epoch: int, skip: int) -> Iterator[tuple[Any, torch.Tensor, float]]:
        x, y, size, world = self.x, self.y, self.batch_size, self.world
        order = None if self.generator is None else torch.randperm(len(x), generator=self.generator)
        for start in range(skip * size, len(x), size):
            rows = min(size, len(x) - start)
            lo, hi = world.shard(rows)
            weight = (hi - lo) * world.size / rows
            if order is None:
                yield x[start + lo : start + hi], y[start + lo : start + hi], weight
            else:
                index = order[start + lo : start + hi].to(x.device)
                # `index_select` is a plain gather: 6 µs where `x[index]` took 11.5 (a toy batch)
                rows_x = x.index_select(0, index) if isinstance(x, torch.Tensor) else x[index]
                yield rows_x, y.index_select(0, index), weight

    def fingerprint(self) -> dict[str, Any]:
        """The row count and a hash of the labels."""
        labels = hashlib.sha256(self.y.detach().cpu().contiguous().numpy().tobytes()).hexdigest()
        return {"rows": len(self.y), "labels": labels}


def make_optimizer(
    params: Iterable[torch.Tensor], config: TrainConfig, tables: Iterable[torch.Tensor] = (), sparse: bool = False
) -> KerasAdamW:
    """The Keras AdamW that `config` describes, over `params`.

    The embedding `tables` among them (`embedding_updates.embedding_modules`) form a group
    of their own with `config.embedding_optimizer`'s rule (row-wise AdamW when their
    gradients are `sparse`) and `config.embedding_learning_rate` (as `lr_scale`, the
    factor on the scheduled rate).
    """
    table_ids = {id(t) for t in tables}
    params = list(params)
    rest = [p for p in params if id(p) not in table_ids]
    grouped: list[dict[str, Any]] = [{"params": rest}] if rest else []
    in_tables = [p for p in params if id(p) in table_ids]
    if in_tables:
        rule = "rowwise_adagrad" if config.embedding_optimizer == "rowwise_adagrad" else "adamw"
        if rule == "adamw" and sparse:
            rule = "adamw_rows"
        scale = config.embedding_learning_rate / config.learning_rate if config.embedding_learning_rate else 1.0
        grouped.append({"params": in_tables, "rule": rule, "lr_scale": scale, "lr": config.learning_rate * scale})
    return KerasAdamW(
        grouped,
        lr=config.learning_rate,
        beta_1=config.beta_1,
        beta_2=config.beta_2,
        epsilon=config.epsilon,
        weight_decay=config.weight_decay,
    )


def _versions(value: Any) -> list[int]:
    """The in-place version counters of the tensors in `value`: a tensor, a module (its
    parameters and buffers) or a dataclass of tensors and tuples of them (`TableBatch`)."""
    if isinstance(value, torch.Tensor):
        return [value._version]
    if isinstance(value, nn.Module):
        return [t._version for t in (*value.parameters(), *value.buffers())]
    fields = getattr(value, "__dataclass_fields__", {})
    parts = [getattr(value, name) for name in fields]
    return [t._version for part in parts for t in (part if isinstance(part, tuple) else (part,))
            if isinstance(t, torch.Tensor)]  # fmt: skip


def mse_loss(predictions: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    return torch.nn.functional.mse_loss(predictions, labels)


class Trainer:
    """Trains and evaluates a model on tensors; knows nothing about DCNs.

    Batches are contiguous slices of the data (or one index gather per batch
    when shuffling), so there is no per-row Python work.

    Args:
        config: the training settings.
        loss_fn: `(predictions, labels) -> scalar`. Defaults to MSE.
        progress: show a bar (`None`: only on a terminal).
        desc: label of the progress bar.

    Example:
        >>> model = torch.nn.Sequential(torch.nn.Linear(2, 1), torch.nn.Flatten(0))
        >>> x, y = torch.randn(64, 2), torch.randn(64)
        >>> history = Trainer(TrainConfig(epochs=2, batch_size=16)).fit(model, x, y)
        >>> len(history.epochs)
        2
    """

    def __init__(
        self,
        config: TrainConfig | None = None,
        loss_fn: LossFn = mse_loss,
        progress: bool | None = False,
        desc: str = "train",
    ) -> None:
        self.config = config or TrainConfig()
        self.loss_fn = loss_fn
        self.progress = progress
        self.desc = desc
        # `predict`'s last outputs, with weak references to what they were of; a list, so that
        # a shallow copy of this trainer (`fit_with_early_stopping`'s) shares it
        self._last_predictions: list[tuple[tuple[Any, Any, Any], torch.Tensor]] = []

    def make_optimizer(self, model: nn.Module) -> KerasAdamW:
        """`make_optimizer` over `model`'s parameters, its lookup tables a group of their own."""
        modules = list(embedding_modules(model))
        tables = [m.weight for m in modules]
        return make_optimizer(model.parameters(), self.config, tables, sparse=any(m.sparse for m in modules))

    def use_sparse_gradients(self, model: nn.Module) -> bool:
        """Set `model`'s lookup tables to sparse or dense gradients as `config.embedding_updates`
        says for its size and penalty (`embedding_updates.wants_sparse`; a model's `embedding_l2`
        with `embedding_l2_scope = "table"`, as `DCN`'s); returns whether sparse."""
        modules = list(embedding_modules(model))
        rows = sum(m.weight.shape[0] for m in modules)
        lookups = self.config.batch_size * sum(lookups_per_row(m) for m in modules)
        penalised = bool(getattr(model, "embedding_l2", 0)) and getattr(model, "embedding_l2_scope", "") == "table"
        sparse = bool(modules) and wants_sparse(self.config.embedding_updates, rows, lookups, penalised)
        set_sparse_gradients(model, sparse)
        if sparse:
            log.info("sparse embedding updates: %d table rows, %d looked up a batch at most", rows, lookups)
        return sparse

    def fit(
        self,
        model: nn.Module,
        x: torch.Tensor | BatchStream,
        y: torch.Tensor | None,
        validation: tuple[torch.Tensor, torch.Tensor] | None = None,
        on_epoch: Callable[[dict[str, float]], bool] | None = None,
        checkpoint_dir: str | Path | None = None,
        resume: bool = False,
    ) -> History:
        """Train `model` in place on rows `x` with labels `y`, or on a `BatchStream`; returns the history.

        In a process group (`torchrun`, `dcnrank.training.distributed`) the model is
        wrapped in `DistributedDataParallel`. With tensors, every rank holds them all
        and trains on its contiguous share of each batch of `config.batch_size` rows
        (the global batch), its loss weighted by its share, so that the averaged
        gradient is the whole batch's and the run equals a one-process run up to
        floating-point rounding. A `BatchStream` yields each rank's own share. Only
        rank 0 writes checkpoints; the recorded loss is the mean over all ranks.

        The loss of a batch is the `loss_fn` of its predictions, plus, when `model` is
        `Regularized` (and its `embedding_l2`, if it has one, is not 0), its
        `regularization_loss()` (the recorded `loss` includes it). Before
        each optimizer step every parameter group's learning rate is set to
        `config.learning_rate_at(step, epoch)` (warm-up and per-epoch decay).

        With `checkpoint_dir`, a checkpoint (`dcnrank.training.checkpoint`) is written
        there every `config.checkpoint_every` optimizer steps and at every epoch end.
        With `resume=True` the model, optimizer, shuffle generator, torch's CPU RNG,
        history and position are restored from it and training goes on from the next
        batch, so the final weights equal those of an uninterrupted run.

        Args:
            model: the model, trained in place.
            x: inputs `(N, ...)`, or a `BatchStream`.
            y: labels `(N,)`, or None with a `BatchStream`.
            validation: `(x_val, y_val)` evaluated after every epoch (`val_*` keys).
            on_epoch: called with each epoch's record after it is appended to the
                history; returning `True` stops training (early stopping). If it is
                `Resumable`, its state is checkpointed and restored too.
            checkpoint_dir: folder for checkpoints. Defaults to `None` (none written).
            resume: continue from the checkpoint in `checkpoint_dir`. Defaults to `False`.

        Returns:
            The per-epoch history (on resume, including the epochs run before).

        Raises:
            ValueError: if `x` and `y` differ in rows or are empty (or `y` is given
                with a stream), or `resume` is set without `checkpoint_dir`.
            CheckpointError: if resuming from a missing, corrupt or foreign checkpoint,
                or starting afresh over an existing one.
        """
        if isinstance(x, BatchStream) and y is not None:
            raise ValueError("a `BatchStream` carries its labels; `y` must be None. Received: a tensor")
        if not isinstance(x, BatchStream):
            if y is None or len(x) != len(y):
                raise ValueError(
                    f"`x` and `y` must have the same rows. Received: {len(x)} and {None if y is None else len(y)}"
                )
            if len(x) == 0:
                raise ValueError("`x` must not be empty. Received: 0 rows")
        if resume and checkpoint_dir is None:
            raise ValueError("`resume=True` needs a `checkpoint_dir`. Received: checkpoint_dir=None")
        if checkpoint_dir is not None and not resume and has_checkpoint(checkpoint_dir):
            raise CheckpointError(
                f"{Path(checkpoint_dir) / CHECKPOINT_FILE}: a checkpoint is already here; resume it "
                "(resume=True, --resume) or use another checkpoint folder"
            )
        c = self.config
        world = current_world()
        device = next((p.device for p in model.parameters()), torch.device("cpu"))
        net: nn.Module = model
        self.use_sparse_gradients(model)  # before DDP, which reads each table's `sparse`
        if world.size > 1:
            net = DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)
        optimizer = self.make_optimizer(model)
        # the module itself, not the DDP wrapper; one whose `embedding_l2` is 0 (a DCN without a
        # penalty) is not asked each step (two tensor ops less a step, felt on the toy)
        regularized = isinstance(model, Regularized) and bool(getattr(model, "embedding_l2", True))
        generator = torch.Generator().manual_seed(c.seed)
        streamed = isinstance(x, BatchStream)
        data: BatchStream = (
            x if isinstance(x, BatchStream)
            else TensorBatches(x, cast(torch.Tensor, y), c.batch_size, generator if c.shuffle else None, world)
        )  # fmt: skip
        history = History()
        fingerprint = self.fingerprint(model, data) if checkpoint_dir is not None else ""
        first_epoch, first_batch, step, resumed_loss, stopped = 0, 0, 0, 0.0, False
        if resume and checkpoint_dir is not None:  # resume without a folder was refused above
            saved = load_checkpoint(checkpoint_dir, model, optimizer, fingerprint)
            if isinstance(on_epoch, Resumable):
                on_epoch.restore_checkpoint_state(saved.extra, saved.extra_tensors)
            generator.set_state(saved.shuffle_state)
            torch.set_rng_state(saved.torch_rng_state)
            history.epochs.extend(saved.history)
            first_epoch, first_batch, step, resumed_loss, stopped = (
                saved.epoch,
                saved.batch,
                saved.step,
                saved.epoch_loss,
                saved.stopped,
            )
            log.info("resuming at epoch %d, batch %d (step %d)", first_epoch + 1, first_batch, step)

        def checkpoint(epoch: int, batch: int, epoch_loss: float, shuffle_state: torch.Tensor, done: bool) -> None:
            if checkpoint_dir is None or not world.is_main:  # rank 0 writes for all
                return
            extra: dict[str, Any] = {}
            extra_tensors: dict[str, torch.Tensor] = {}
            if isinstance(on_epoch, Resumable):
                extra, extra_tensors = on_epoch.checkpoint_state()
            state = TrainingState(
                epoch, batch, step, epoch_loss, list(history.epochs), done,
                shuffle_state, torch.get_rng_state(), extra, extra_tensors,
            )  # fmt: skip
            save_checkpoint(checkpoint_dir, model, optimizer, state, fingerprint)

        epochs = range(first_epoch, c.epochs) if not stopped else range(0)
        for epoch in progress_bar(epochs, total=len(epochs), desc=self.desc, enabled=self.progress and world.is_main):
            began = time.perf_counter()
            shuffle_state = generator.get_state()  # a resume redraws this epoch's order from here
            net.train()
            total = torch.zeros((), dtype=torch.float64, device=device)
            skip = first_batch if epoch == first_epoch else 0
            if skip:
                total += resumed_loss
            num_batches, batches = data.num_batches(epoch), data.batches(epoch, skip)
            if streamed:  # a streamed epoch can take minutes: a bar over its batches
                shown = self.progress and world.is_main
                batches = progress_bar(batches, total=num_batches - skip, desc=f"epoch {epoch + 1}", enabled=shown)
            for batch, (xb, yb, weight) in enumerate(batches, start=skip):
                if xb.device != device:  # a stream reads to the CPU
                    xb, yb = xb.to(device), yb.to(device)
                with c.autocast(xb.device):
                    predictions = net(xb)
                if len(yb):
                    loss = self.loss_fn(predictions.float(), yb)
                    if regularized:
                        loss = loss + cast(Regularized, model).regularization_loss()
                    loss = loss * weight if weight != 1.0 else loss
                else:  # a rank with no row of a tiny last batch still joins the gradient average
                    loss = predictions.float().sum() * 0.0
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                for group in optimizer.param_groups:
                    group["lr"] = c.learning_rate_at(step, epoch) * group.get("lr_scale", 1.0)
                optimizer.step()
                total += loss.detach()
                step += 1
                if checkpoint_dir is not None and step % c.checkpoint_every == 0:
                    checkpoint(epoch, batch + 1, float(total), shuffle_state, False)
            optimizer.catch_up()  # rows that sparse updates left behind, before validation and checkpoints
            record = {"epoch": epoch + 1, "loss": float(all_reduce_sum(total.cpu())) / world.size / max(1, num_batches)}
            if validation is not None:
                release_free_memory()  # what the epoch's steps freed (≈ 60 ms, a toy epoch's length)
                record.update({f"val_{k}": v for k, v in self.evaluate(model, *validation).items()})
            record["seconds"] = time.perf_counter() - began
            history.epochs.append(record)
            log.debug("epoch %d: %s", epoch + 1, record)
            stop = on_epoch is not None and bool(on_epoch(record))
            if checkpoint_dir is not None:
                checkpoint(epoch + 1, 0, 0.0, generator.get_state(), stop)
            if stop:
                break
        return history

    def fingerprint(self, model: nn.Module, data: BatchStream) -> str:
        """What a checkpoint must match to be resumed: the config (but `checkpoint_every`),
        the data's fingerprint, and the model's tensor names and shapes."""
        settings = {k: v for k, v in self.config.to_dict().items() if k != "checkpoint_every"}
        shapes = {name: list(t.shape) for name, t in model.state_dict().items()}
        identity = {"train": settings, **data.fingerprint(), "model": shapes, "loss": type(self).__name__}
        return config_fingerprint(identity)

    @torch.no_grad()
    def predict(self, model: nn.Module, x: torch.Tensor) -> torch.Tensor:
        """Model outputs for every row of `x`, in order, as a `(N,)` tensor.

        The last call's outputs are kept: asked again for the same `x` object (held weakly)
        while neither it nor any weight or buffer of `model` has changed since (torch's
        in-place version counters),
        it returns them without a second pass (a run's final validation after its last
        epoch's, 200,000 rows: ≈ 11 s of a 115 s run). Every
        :data:`RELEASE_EVERY_BATCHES` batches the freed memory goes back to the system
        (`release_free_memory`: without it a validation pass grew the resident memory by
        up to 500 MB).
        """
        key = (_versions(model), _versions(x), len(x))
        if self._last_predictions:
            (model_ref, x_ref, last_key), last = self._last_predictions[0]
            if model_ref() is model and x_ref() is x and last_key == key:  # weak: a new object never matches
                return last.clone()  # a caller may change what it is given
        model.eval()
        step = self.config.eval_batch_size
        outputs = []
        with self.config.autocast(x.device):
            for i in range(0, len(x), step):
                outputs.append(model(x[i : i + step]))
                if len(outputs) % RELEASE_EVERY_BATCHES == 0:
                    release_free_memory()
        predictions = torch.cat(outputs).float()
        self._last_predictions[:] = [((weakref.ref(model), weakref.ref(x), key), predictions)]
        return predictions

    def evaluate(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> dict[str, float]:
        """`loss`, `rmse` and `mae` of `model` on `(x, y)`."""
        predictions = self.predict(model, x)
        return {
            "loss": float(self.loss_fn(predictions, y)),
            "rmse": rmse(predictions, y),
            "mae": mae(predictions, y),
        }
