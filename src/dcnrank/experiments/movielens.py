"""The seed's MovieLens 100K experiment: stacked DCN, low-rank DCN and a deep network.

The data flows through the one pipeline: the MovieLens source (one row per rating), a
feature spec of the seed's six features, all categorical, and a `TableEncoder` fitted on
the training rows (or all rows, as the seed did).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from dcnrank.config.model_config import DCNConfig
from dcnrank.config.train_config import TrainConfig
from dcnrank.data import locate_movielens
from dcnrank.experiments.protocol import run_experiment
from dcnrank.experiments.result import ExperimentResult
from dcnrank.models.dcn import build_dcn

if TYPE_CHECKING:
    from dcnrank.data.encoding.table_encoder import TableEncoder
    from dcnrank.data.sources import MovieLensSource
    from dcnrank.data.spec.feature_spec import FeatureSpec

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

# The seed's six features (its names, in its order: its int features, then its str
# features, as `Ratings.feature_names`) -> the MovieLens source's columns.
SEED_FEATURES: dict[str, str] = {
    "movie_id": "movie_id",
    "user_id": "user_id",
    "user_gender": "gender",
    "bucketized_user_age": "age",
    "user_zip_code": "zip_code",
    "user_occupation_text": "occupation",
}


def seed_spec() -> FeatureSpec:
    """The seed's inputs as a feature spec of the MovieLens source's table.

    Every feature categorical (each value its own embedding row, plus the OOV row 0),
    in the seed's order, label `rating`; no roles (the seed has no bias terms or histories).

    Returns:
        The spec.

    Example:
        >>> spec = seed_spec()
        >>> spec.input_names, spec.label, spec.user
        (('movie_id', 'user_id', 'gender', 'age', 'zip_code', 'occupation'), 'rating', None)
    """
    # imported here: config/rules.py imports VOCAB_POLICIES from this module, and the
    # table path (feature_spec, table_encoder, sources) imports config
    from dcnrank.data.spec.feature_spec import CategoricalColumn, FeatureSpec

    columns = tuple(CategoricalColumn(column) for column in SEED_FEATURES.values())
    return FeatureSpec(columns, label="rating", task="regression")


@dataclass(frozen=True, eq=False)
class SeedFeatures:
    """The seed's six features of a split, encoded: what its three models train and test on.

    Args:
        train: `(features, labels)` of the training rows: int32 `(N, 6)` embedding rows
            in :data:`SEED_FEATURES` order, float32 `(N,)` ratings.
        test: the same for the test rows.
        encoder: the `TableEncoder` that encoded them (vocabularies of :func:`seed_spec`).
        info: JSON-ready facts: `split`, `vocab`, `n_train`, `n_test`,
            `train_test_overlap`, and per seed feature name `vocabulary_sizes` and
            `test_oov_share`.
        train_rows: the training rows' positions in the source's table.
    """

    train: tuple[torch.Tensor, torch.Tensor]
    test: tuple[torch.Tensor, torch.Tensor]
    encoder: TableEncoder
    info: dict[str, Any]
    train_rows: np.ndarray

    @property
    def vocabulary_sizes(self) -> list[int]:
        """Embedding rows per feature (OOV row included), in :data:`SEED_FEATURES` order."""
        sizes = self.encoder.table_sizes
        return [sizes[column] for column in SEED_FEATURES.values()]


def _check_vocab(vocab: str) -> None:
    if vocab not in VOCAB_POLICIES:
        raise ValueError(f"`vocab` must be one of {', '.join(VOCAB_POLICIES)}. Received: vocab={vocab!r}")


def encode_seed_features(source: MovieLensSource, split: str, vocab: str, seed: int) -> SeedFeatures:
    """Split a MovieLens source, fit the encoder of the seed's six features, encode both sides.

    Args:
        source: a MovieLens source (`load_movielens_source`) whose table has the user
            columns (100K or 1M).
        split: one of `source.splits` (`random`, `leaky`, `u1`…`u5`, `ua`, `ub`,
            `temporal` for 100K).
        vocab: `"train"` fits vocabularies on the training rows only (unseen test
            values map to the OOV row 0); `"all"` fits them on every row (the seed).
        seed: seeds the split.

    Returns:
        The encoded train and test rows, the encoder and facts about the split.

    Raises:
        ValueError: if `vocab` is not a policy of :data:`VOCAB_POLICIES` or `split`
            is not a split of the source.
        TableDataError: if the source's table lacks a seed feature's column.

    Example:
        >>> import tempfile
        >>> folder = Path(tempfile.mkdtemp())
        >>> ratings = "1::10::5::1\\n1::20::3::2\\n2::10::4::3\\n2::30::1::4\\n3::20::2::5\\n"  # user::movie::stars::t
        >>> _ = (folder / "ratings.dat").write_text(ratings)
        >>> _ = (folder / "movies.dat").write_text("10::A (1995)::Drama\\n20::B (1996)::Comedy\\n30::C (1997)::War\\n")
        >>> _ = (folder / "users.dat").write_text("1::M::25::4::12345\\n2::F::35::7::54321\\n3::M::18::4::12345\\n")
        >>> from dcnrank.data.sources import load_movielens_source
        >>> features = encode_seed_features(load_movielens_source(folder), "temporal", "train", seed=0)
        >>> features.info["n_train"], features.info["n_test"], features.vocabulary_sizes
        (4, 1, [4, 3, 3, 3, 3, 3])
        >>> features.test[0].tolist(), features.info["test_oov_share"]["user_id"]  # user 3 rated only in test
        ([[2, 0, 2, 0, 1, 1]], 1.0)
    """
    from dcnrank.data.encoding.table_encoder import fit_and_encode  # see seed_spec

    _check_vocab(vocab)
    train_rows, test_rows = source.split_rows(split, seed)
    spec = seed_spec()
    table = source.table.select([*SEED_FEATURES.values(), spec.label])
    fit_rows = train_rows if vocab == "train" else None
    encoder, encoded = fit_and_encode(spec, table, fit_rows, source=f"MovieLens {source.release}")
    features, labels = encoded.features.categorical, encoded.labels
    if labels is None:  # pragma: no cover - fit_and_encode reads the label column or raises
        raise ValueError("the encoded ratings have no labels")
    train_index, test_index = torch.from_numpy(train_rows), torch.from_numpy(test_rows)
    train = (features[train_index], labels[train_index])
    test = (features[test_index], labels[test_index])
    sizes = encoder.table_sizes
    oov = (test[0] == 0).double().mean(dim=0).tolist() if len(test_rows) else [0.0] * len(SEED_FEATURES)
    info = {
        "split": split,
        "vocab": vocab,
        "n_train": len(train_rows),
        "n_test": len(test_rows),
        "train_test_overlap": float(np.isin(test_rows, train_rows).mean()) if len(test_rows) else 0.0,
        "vocabulary_sizes": {name: sizes[column] for name, column in SEED_FEATURES.items()},
        "test_oov_share": dict(zip(SEED_FEATURES, oov, strict=True)),
    }
    return SeedFeatures(train, test, encoder, info, train_rows)


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

    MovieLens is read as a source (`load_movielens_source`), split (`source.split_rows`)
    and encoded by :func:`encode_seed_features`; the models are `build_dcn` over the
    six embedding tables, trained by the seed's protocol (`run_experiment`).

    Args:
        data_dir: where MovieLens is (see `locate_movielens`); None searches (and
            downloads when it is nowhere).
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
        An `ExperimentResult` named "movielens"; `info` carries the split facts
        (:class:`SeedFeatures`' `info`) and the seed's `feature_names`.

    Raises:
        ValueError: if `models` names none or an unknown model, or `vocab` or `split`
            is unknown (checked before any training).
        MovieLensNotFoundError: if MovieLens is nowhere and cannot be downloaded.
    """
    unknown = [m for m in models if m not in MOVIELENS_MODELS]
    if unknown or not models:  # checked before the data is read
        raise ValueError(f"`models` must name some of {', '.join(MOVIELENS_MODELS)}. Received: models={models!r}")
    from dcnrank.data.sources import load_movielens_source  # see seed_spec

    _check_vocab(vocab)
    began = time.perf_counter()
    source = load_movielens_source(locate_movielens(data_dir, progress=bool(progress)))
    features = encode_seed_features(source, split, vocab, seed)
    train, info = features.train, features.info
    if max_train_rows is not None:
        train = (train[0][:max_train_rows], train[1][:max_train_rows])
        info["n_train"] = len(train[0])
    config = replace(MOVIELENS_TRAIN, epochs=epochs, precision=precision)
    info["feature_names"] = list(SEED_FEATURES)
    sizes = features.vocabulary_sizes
    return run_experiment(
        "movielens",
        MOVIELENS_MODELS,
        models,
        lambda c: build_dcn(c, vocabulary_sizes=sizes),
        train,
        features.test,
        config,
        trials,
        seed,
        progress,
        vectorize,
        device,
        began,
        info=info,
    )
