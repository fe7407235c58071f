"""The seed's toy experiment: a 16-parameter cross network against a wide deep network."""

from __future__ import annotations

import time
from dataclasses import replace

import numpy as np
import torch

from dcnrank.config.model_config import DCNConfig
from dcnrank.config.train_config import TrainConfig
from dcnrank.experiments.protocol import run_experiment
from dcnrank.experiments.result import ExperimentResult
from dcnrank.models.dcn import build_dcn

TOY_FEATURES = ("country", "bananas", "cookbooks")

TOY_MODELS = {
    # keras.Sequential([FeatureCross(), Dense(1)])
    "cross": DCNConfig(structure="cross_only", num_cross_layers=1, deep_units=()),
    # keras.Sequential([Dense(512, relu), Dense(256, relu), Dense(128, relu), Dense(1)])
    "deep": DCNConfig(structure="deep_only", deep_units=(512, 256, 128)),
}

TOY_TRAIN = TrainConfig(learning_rate=0.01, epochs=100, batch_size=1024)


def mixer_data(num_rows: int = 100_000, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """The seed's blender data: three features in [0, 1) and a label with crosses.

        y = 0.1·x1 + 0.4·x2 + 0.7·x3 + 0.1·x1·x2 + 3.1·x2·x3 + 0.1·x3²

    with `x1 = country/200`, `x2 = bananas/24`, `x3 = cookbooks/6` drawn
    uniformly from the integers `[0, 200)`, `[0, 24)`, `[0, 6)`.

    Args:
        num_rows: int, number of rows. Defaults to 100,000.
        seed: int, seeds the draw.

    Returns:
        `x` of shape `(num_rows, 3)` and `y` of shape `(num_rows,)`, float32.

    Example:
        >>> x, y = mixer_data(4, seed=0)
        >>> tuple(x.shape), tuple(y.shape)
        ((4, 3), (4,))
    """
    if isinstance(num_rows, bool) or not isinstance(num_rows, int) or num_rows < 1:
        raise ValueError(f"`num_rows` must be a positive int. Received: num_rows={num_rows!r}")
    rng = np.random.default_rng(seed)
    country = rng.integers(200, size=num_rows) / 200.0
    bananas = rng.integers(24, size=num_rows) / 24.0
    cookbooks = rng.integers(6, size=num_rows) / 6.0
    x = np.stack([country, bananas, cookbooks], axis=1)
    y = 0.1 * country + 0.4 * bananas + 0.7 * cookbooks
    y += 0.1 * country * bananas + 3.1 * bananas * cookbooks + 0.1 * cookbooks * cookbooks
    return torch.from_numpy(x).float(), torch.from_numpy(y).float()


def run_toy(
    epochs: int = 100,
    trials: int = 1,
    seed: int = 0,
    num_rows: int = 100_000,
    num_train: int = 90_000,
    models: tuple[str, ...] = tuple(TOY_MODELS),
    precision: str = "fp32",
    vectorize: bool = True,
    device: str = "cpu",
    progress: bool | None = False,
) -> ExperimentResult:
    """Train the seed's cross and deep networks on mixer data and test them.

    The first `num_train` rows train, the rest test, as in the seed.

    Args:
        epochs: int, epochs per model. Defaults to 100 (the seed's).
        trials: int, independent trainings per model. Defaults to 1.
        seed: int, seeds the data and every trial.
        num_rows, num_train: data size and training rows.
        models: which of "cross" and "deep" to train. Defaults to both.
        precision: `"fp32"` or `"bf16"` (matrix products under autocast).
        vectorize: train all trials of a model together (`StackedTrainer`);
            `False` trains them one after another. Same numbers either way.
        device: where to train (`"cpu"`, `"cuda"`, ...). Defaults to the CPU.
        progress: show progress bars (`None`: on a terminal only).

    Returns:
        An `ExperimentResult` named "toy" with models "cross" and "deep".
    """
    if not 0 < num_train < num_rows:
        raise ValueError(
            f"`num_train` must be between 0 and num_rows={num_rows} (exclusive). Received: num_train={num_train!r}"
        )
    began = time.perf_counter()
    x, y = mixer_data(num_rows, seed)
    train, test = (x[:num_train], y[:num_train]), (x[num_train:], y[num_train:])
    config = replace(TOY_TRAIN, epochs=epochs, precision=precision)
    return run_experiment(
        "toy",
        TOY_MODELS,
        models,
        lambda c: build_dcn(c, dense_features=len(TOY_FEATURES)),
        train,
        test,
        config,
        trials,
        seed,
        progress,
        vectorize,
        device,
        began,
        settings={"num_rows": num_rows, "num_train": num_train},
    )
