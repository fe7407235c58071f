"""The peers' DCN-V2 in Keras-RS 0.4.0 on JAX: one `keras.layers.Embedding` per field,
`keras_rs.layers.FeatureCross` for the cross layers, `model.fit(shuffle=False)`.

Keras' Adam (lr 1e-3, its defaults: epsilon 1e-7), `BinaryCrossentropy(from_logits=True)`.
A callback marks every step's start; it also has a batch-end hook, so Keras runs the batch
callbacks synchronously and each step has finished before the next mark. The first
step holds XLA's compilation of the training step: `compile_s` is the first step less the
median step. JAX compiles again for a last, smaller batch (`last_step_s`).

    KERAS_BACKEND=jax .peers/keras_rs/bin/python benchmarks/peers/run_keras_rs.py --data DIR --seed 0
"""

from __future__ import annotations

import argparse
import os
import time
from collections.abc import Sequence
from typing import Any

os.environ.setdefault("KERAS_BACKEND", "jax")
os.environ.setdefault("JAX_PLATFORMS", "cpu")

import jax  # noqa: E402
import keras  # noqa: E402
import keras_rs  # noqa: E402
import numpy as np  # noqa: E402
from common import (  # noqa: E402
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


class StepMarks(keras.callbacks.Callback):
    """Marks the start of every training batch on a `StepTimer`.

    It overrides `on_train_batch_end` so that Keras dispatches the batch callbacks
    synchronously, turning each step's logs into Python floats: the step has finished on
    the device before the next one is marked (with only default batch-end hooks, JAX runs
    ahead and the marks time the dispatch, not the work).
    """

    def __init__(self, timer: StepTimer) -> None:
        super().__init__()
        self.timer = timer

    def on_train_batch_begin(self, batch: int, logs: dict | None = None) -> None:
        self.timer.start_step()

    def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
        pass  # its presence is what matters (see the class docstring)


def build_model(vocabulary_sizes: Sequence[int]) -> keras.Model:
    """Embeddings → [3 FeatureCross layers ∥ MLP 400-400] → Dense(1) logit."""
    ids = keras.Input(shape=(len(vocabulary_sizes),), dtype="int32", name="ids")
    embedded = [
        keras.layers.Embedding(size, EMBEDDING_DIM, name=f"embedding_{c}")(ids[:, c])
        for c, size in enumerate(vocabulary_sizes)
    ]
    x0 = keras.layers.Concatenate(name="x0")(embedded)  # (B, 39·16)
    cross = x0
    for i in range(CROSS_LAYERS):
        cross = keras_rs.layers.FeatureCross(name=f"cross_{i}")(x0, cross)  # (B, d)
    deep = x0
    for i, units in enumerate(DEEP_UNITS):
        deep = keras.layers.Dense(units, activation="relu", name=f"deep_{i}")(deep)  # (B, units)
    both = keras.layers.Concatenate(name="cross_and_deep")([cross, deep])  # (B, d + 400)
    logit = keras.layers.Dense(1, name="head")(both)  # (B, 1)
    return keras.Model(ids, logit)


def benchmark(args: argparse.Namespace) -> dict[str, Any]:
    """Train one epoch and evaluate on the test rows; the runner's JSON record."""
    data = load_data(args.data)
    keras.utils.set_random_seed(args.seed)
    model = build_model(data.vocabulary_sizes)
    parameters = check_parameters(model.count_params(), data.vocabulary_sizes)
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate=LEARNING_RATE),
        loss=keras.losses.BinaryCrossentropy(from_logits=True),
    )
    timer = StepTimer()
    began = time.perf_counter()
    model.fit(
        data.train_ids,
        data.train_labels,
        batch_size=BATCH_SIZE,
        epochs=1,
        shuffle=False,
        verbose=0,
        callbacks=[StepMarks(timer)],
    )
    timer.finish()
    epoch_s = time.perf_counter() - began
    steps = timer.summary(step_rows(len(data.train_labels)))

    def predict(batch: np.ndarray) -> np.ndarray:
        return model.predict_on_batch(batch)

    scores, rows_per_s = time_inference(predict, data.test_ids, EVAL_BATCH_SIZE)
    compile_s = steps["first_step_s"] - steps["median_step_s"]
    return make_record(
        library="keras_rs",
        variant="jax",
        version=f"keras-rs {keras_rs.__version__}, keras {keras.__version__}, jax {jax.__version__}",
        seed=args.seed,
        precision="fp32",
        parameters=parameters,
        threads=thread_count(),
        train_rows=len(data.train_labels),
        test_rows=len(data.test_labels),
        epoch_s=epoch_s,
        compile_s=compile_s,
        notes="compile_s = first step − median step; Keras Adam (epsilon 1e-7); inference by predict_on_batch",
        **steps,
        **evaluation(data, scores, rows_per_s, probabilities=False),
    )


def main(argv: Sequence[str] | None = None) -> int:
    args = runner_parser(__doc__.split("\n\n")[0]).parse_args(argv)
    return run_main(benchmark, args)


if __name__ == "__main__":
    raise SystemExit(main())
