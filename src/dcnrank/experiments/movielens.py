"""The seed's MovieLens 100K experiment: stacked DCN, low-rank DCN and a deep network."""

from __future__ import annotations

import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from dcnrank.data import (
    EncodedTable,
    Ratings,
    Vocabulary,
    encode_ratings,
    fit_vocabularies,
    load_movielens,
    locate_movielens,
    split_indices,
)
from dcnrank.experiments.protocol import run_experiment
from dcnrank.experiments.result import ExperimentResult
from dcnrank.models.config import DCNConfig
from dcnrank.models.dcn import build_dcn
from dcnrank.training.trainer import TrainConfig

MOVIELENS_MODELS = {
    # embeddings -> FeatureCross() -> Dense(192) -> Dense(192) -> Dense(1)
    "cross": DCNConfig(structure="stacked", embedding_dim=32, deep_units=(192, 192)),
    # the same with FeatureCross(projection_dim=20)
    "cross_low_rank": DCNConfig(structure="stacked", embedding_dim=32, projection_dim=20, deep_units=(192, 192)),
    # embeddings -> Dense(192) x 3 -> Dense(1)
    "deep": DCNConfig(structure="deep_only", embedding_dim=32, deep_units=(192, 192, 192)),
}

MOVIELENS_TRAIN = TrainConfig(learning_rate=0.01, epochs=10, batch_size=1024)

VOCAB_POLICIES = ("train", "all")


@dataclass(frozen=True)
class PreparedMovieLens:
    """MovieLens ready to train on: encoded train and test rows, the vocabularies
    that encoded them, facts about the split (`info`, JSON-ready), and the training
    rows' indices into the ratings table (`train_rows`)."""

    train: EncodedTable
    test: EncodedTable
    vocabularies: dict[str, Vocabulary]
    info: dict[str, Any]
    train_rows: np.ndarray


def prepare_movielens(
    ratings: Ratings, split: str, vocab: str, seed: int, folder: str | Path | None = None
) -> PreparedMovieLens:
    """Split, fit vocabularies and encode: the train and test tables and facts about them.

    Args:
        ratings: the parsed MovieLens table.
        split: a split name (`random`, `leaky`, `u1`…`u5`, `ua`, `ub`, `temporal`).
        vocab: `"train"` fits vocabularies on the training rows only (unseen test
            values map to the OOV row 0); `"all"` fits them on every row (the seed).
        seed: seeds the split.
        folder: the MovieLens folder (needed by GroupLens' own splits).

    Returns:
        The encoded tables and vocabularies; `info` holds the split, sizes,
        train∩test overlap, vocabulary sizes and the share of test values that
        fall out of vocabulary.
    """
    if vocab not in VOCAB_POLICIES:
        raise ValueError(f"`vocab` must be one of {', '.join(VOCAB_POLICIES)}. Received: vocab={vocab!r}")
    parts = split_indices(ratings, split, seed, folder)
    vocabularies = fit_vocabularies(ratings, parts.train if vocab == "train" else None)
    train = encode_ratings(ratings, parts.train, vocabularies)
    test = encode_ratings(ratings, parts.test, vocabularies)
    oov = (test.features == 0).double().mean(dim=0).tolist()
    info = {
        "split": split,
        "vocab": vocab,
        "n_train": len(train),
        "n_test": len(test),
        "train_test_overlap": parts.overlap,
        "vocabulary_sizes": dict(zip(train.feature_names, train.vocabulary_sizes, strict=True)),
        "test_oov_share": dict(zip(train.feature_names, oov, strict=True)),
    }
    return PreparedMovieLens(train, test, vocabularies, info, parts.train)


def run_movielens(
    data_dir: str | Path | None = None,
    trials: int = 10,
    epochs: int = 10,
    split: str = "random",
    vocab: str = "train",
    seed: int = 0,
    models: tuple[str, ...] = tuple(MOVIELENS_MODELS),
    max_train_rows: int | None = None,
    precision: str = "fp32",
    vectorize: bool = True,
    device: str = "cpu",
    progress: bool | None = False,
) -> ExperimentResult:
    """Train the seed's three models `trials` times each on MovieLens 100K.

    Args:
        data_dir: where MovieLens is (see `locate_movielens`); None searches.
        trials: int, trainings per model with different seeds. Defaults to 10.
        epochs: int. Defaults to 10 (the seed's).
        split: the split name. Defaults to `"random"` (disjoint 80/20).
        vocab: vocabulary policy, `"train"` (default) or `"all"` (the seed's).
        seed: seeds the split and every trial.
        models: which of `cross`, `cross_low_rank`, `deep` to train.
        max_train_rows: keep only the first rows of the training split (for
            quick checks); None keeps all.
        precision: `"fp32"` or `"bf16"` (matrix products under autocast).
        vectorize: train all trials of a model together (`StackedTrainer`);
            `False` trains them one after another. Same numbers either way.
        device: where to train (`"cpu"`, `"cuda"`, ...). Defaults to the CPU.
        progress: show progress bars (`None`: on a terminal only).

    Returns:
        An `ExperimentResult` named "movielens"; `info` carries the split facts.
    """
    unknown = [m for m in models if m not in MOVIELENS_MODELS]
    if unknown or not models:  # checked before the data is read
        raise ValueError(f"`models` must name some of {', '.join(MOVIELENS_MODELS)}. Received: models={models!r}")
    began = time.perf_counter()
    folder = locate_movielens(data_dir, progress=bool(progress))
    ratings = load_movielens(folder)
    prepared = prepare_movielens(ratings, split, vocab, seed, folder)
    train, test, info = prepared.train, prepared.test, prepared.info
    if max_train_rows is not None:
        train = train.take(torch.arange(min(max_train_rows, len(train))))
        info["n_train"] = len(train)
    config = replace(MOVIELENS_TRAIN, epochs=epochs, precision=precision)
    info["feature_names"] = list(train.feature_names)
    return run_experiment(
        "movielens",
        MOVIELENS_MODELS,
        models,
        lambda c: build_dcn(c, vocabulary_sizes=train.vocabulary_sizes),
        (train.features, train.labels),
        (test.features, test.labels),
        config,
        trials,
        seed,
        progress,
        vectorize,
        device,
        began,
        info=info,
    )
