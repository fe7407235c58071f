"""The peers' DCN-V2 in dcnrank itself: `build_dcn` (parallel structure) trained by `Trainer`.

`TrainConfig(learning_rate=1e-3, weight_decay=0.0, batch_size=4096, epochs=1, shuffle=False)`
with `bce_with_logits`; the optimizer is dcnrank's `KerasAdamW` (epsilon 1e-7, no decay
here, so plain Adam). `--set train.KEY=VALUE ...` overrides any `TrainConfig` field, e.g.
`--set train.precision=bf16`. Steps are timed by a forward pre-hook on the model.

    .venv/bin/python benchmarks/peers/run_dcnrank.py --data .peers/data/criteo_like_20000 --seed 0
"""

from __future__ import annotations

import argparse
import dataclasses
import difflib
import importlib.metadata
import time
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from common import (
    BATCH_SIZE,
    CROSS_LAYERS,
    DEEP_UNITS,
    EMBEDDING_DIM,
    EVAL_BATCH_SIZE,
    LEARNING_RATE,
    StepTimer,
    check_parameters,
    evaluation,
    load_data,
    make_record,
    run_main,
    runner_parser,
    step_rows,
    thread_count,
    time_inference,
)

from dcnrank.config.model_config import DCNConfig
from dcnrank.config.train_config import TrainConfig
from dcnrank.models.dcn import build_dcn, count_parameters
from dcnrank.training.losses import bce_with_logits
from dcnrank.training.trainer import Trainer

SET_PREFIX = "train."


def parse_value(text: str) -> bool | int | float | str:
    """`"true"`/`"false"` → bool, then int, then float, else the string itself.

    Example:
        >>> [parse_value(v) for v in ("bf16", "3", "1e-3", "False")]
        ['bf16', 3, 0.001, False]
    """
    if text.lower() in ("true", "false"):
        return text.lower() == "true"
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


def parse_sets(sets: Sequence[str]) -> dict[str, Any]:
    """`["train.precision=bf16", ...]` → `{"precision": "bf16", ...}`, checked against `TrainConfig`.

    Raises:
        ValueError: on an item without `=`, a key outside `train.`, or a field `TrainConfig`
            does not have (suggesting the closest).

    Example:
        >>> parse_sets(["train.precision=bf16", "train.checkpoint_every=10"])
        {'precision': 'bf16', 'checkpoint_every': 10}
    """
    fields = [f.name for f in dataclasses.fields(TrainConfig)]
    overrides: dict[str, Any] = {}
    for item in sets:
        key, sep, value = item.partition("=")
        if not sep or not key.startswith(SET_PREFIX):
            raise ValueError(f"`--set` takes train.KEY=VALUE. Received: {item!r}")
        name = key[len(SET_PREFIX) :]
        if name not in fields:
            close = difflib.get_close_matches(name, fields, n=1)
            hint = f"; did you mean train.{close[0]}?" if close else ""
            raise ValueError(f"TrainConfig has no field {name!r}{hint} Received: {item!r}")
        overrides[name] = parse_value(value)
    return overrides


def train_config(seed: int, sets: Sequence[str] = ()) -> TrainConfig:
    """The protocol's `TrainConfig`, with the `--set` overrides applied on top."""
    base: dict[str, Any] = {
        "learning_rate": LEARNING_RATE,
        "weight_decay": 0.0,
        "batch_size": BATCH_SIZE,
        "eval_batch_size": EVAL_BATCH_SIZE,
        "epochs": 1,
        "shuffle": False,
        "seed": seed,
    }
    return TrainConfig(**{**base, **parse_sets(sets)})


def model_config() -> DCNConfig:
    """The protocol's DCN-V2: 16-wide embeddings, 3 full-rank cross layers beside an MLP [400, 400]."""
    return DCNConfig(
        structure="parallel",
        embedding_dim=EMBEDDING_DIM,
        num_cross_layers=CROSS_LAYERS,
        projection_dim=None,
        deep_units=DEEP_UNITS,
        dropout=0.0,
        cross_type="matrix",
    )


def benchmark(args: argparse.Namespace) -> dict[str, Any]:
    """Train one epoch and evaluate on the test rows; the runner's JSON record."""
    data = load_data(args.data)
    config = train_config(args.seed, args.set or ())
    torch.manual_seed(args.seed)
    model = build_dcn(model_config(), vocabulary_sizes=data.vocabulary_sizes)
    parameters = check_parameters(count_parameters(model), data.vocabulary_sizes)
    x, y = torch.from_numpy(data.train_ids), torch.from_numpy(data.train_labels)
    trainer = Trainer(config, loss_fn=bce_with_logits)

    timer = StepTimer()
    hook = model.register_forward_pre_hook(timer.start_step)
    began = time.perf_counter()
    trainer.fit(model, x, y)
    timer.finish()
    epoch_s = time.perf_counter() - began
    hook.remove()

    def predict(batch: np.ndarray) -> np.ndarray:
        return trainer.predict(model, torch.from_numpy(batch)).numpy()

    scores, rows_per_s = time_inference(predict, data.test_ids, config.eval_batch_size)
    return make_record(
        library="dcnrank",
        variant=",".join(args.set or ()) or "default",
        version=f"dcnrank {importlib.metadata.version('dcnrank')}, torch {torch.__version__}",
        seed=args.seed,
        precision=config.precision,
        parameters=parameters,
        threads=torch.get_num_threads(),
        train_rows=len(y),
        test_rows=len(data.test_labels),
        epoch_s=epoch_s,
        settings=config.to_dict(),  # the resolved TrainConfig: what a variant changed, and every default
        notes="KerasAdamW (epsilon 1e-7, weight_decay 0); steps timed by a forward pre-hook",
        **timer.summary(step_rows(len(y), config.batch_size)),
        **evaluation(data, scores, rows_per_s, probabilities=False),
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = runner_parser(__doc__.split("\n\n")[0])
    parser.add_argument("--set", nargs="+", action="extend", metavar="train.KEY=VALUE", help="TrainConfig overrides")
    args = parser.parse_args(argv)
    torch.set_num_threads(thread_count())
    return run_main(benchmark, args)


if __name__ == "__main__":
    raise SystemExit(main())
