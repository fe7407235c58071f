"""Score a bundle on the test rows of a MovieLens split: RMSE, MAE and ranking metrics."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from dcnrank.bundle.bundle import Bundle
from dcnrank.data import Ratings, encode_ratings, split_indices
from dcnrank.metrics.ranking import ranking_metrics
from dcnrank.training.metrics import mae, rmse

__all__ = ["RELEVANT_RATING", "evaluate_split", "split_settings"]

# MovieLens ratings at or above this are "relevant" for MAP, MRR, precision and recall.
RELEVANT_RATING = 4.0


def evaluate_split(
    bundle: Bundle,
    ratings: Ratings,
    split: str,
    seed: int,
    folder: str | Path | None = None,
    k: int = 10,
) -> dict[str, Any]:
    """Metrics of `bundle` on the test rows of a split, encoded with its own vocabularies.

    Ranking metrics group the test rows by user (raw ids, so users outside the
    vocabulary stay apart), rank each user's rated movies by predicted rating, and take
    the rating as relevance: NDCG uses gain `2^rating − 1`; MAP, MRR, precision and
    recall call a rating ≥ 4 relevant.

    Args:
        bundle: the model.
        ratings: the MovieLens table.
        split: the split name (see `dcnrank.data.SPLIT_NAMES`).
        seed: the split's seed.
        folder: the MovieLens folder (GroupLens' own splits read files there).
        k: int ≥ 1, the ranking cutoff. Defaults to 10.

    Returns:
        `split`, `seed`, `rows`, `users`, `rmse`, `mae`, `ndcg@k`, `map@k`, `mrr`,
        `precision@k`, `recall@k`.

    Raises:
        ValueError: if the split is unknown or a bundle feature is not a MovieLens column.
    """
    parts = split_indices(ratings, split, seed, folder)
    try:
        table = encode_ratings(ratings, parts.test, bundle.vocabularies)
    except KeyError as error:
        raise ValueError(
            f"this bundle's features {list(bundle.feature_names)} are not all MovieLens "
            f"columns ({error.args[0]})"
        ) from None
    predictions = bundle.predict(table.features)
    ranking = ranking_metrics(
        table.labels.numpy(),
        predictions.numpy(),
        ratings.user_id[parts.test],
        k=k,
        threshold=RELEVANT_RATING,
    )
    users = ranking.pop("groups")
    return {
        "split": split,
        "seed": seed,
        "rows": len(table),
        "users": users,
        "rmse": rmse(predictions, table.labels),
        "mae": mae(predictions, table.labels),
        **ranking,
    }


def split_settings(
    train_config: Mapping[str, Any], split: str | None = None, seed: int | None = None
) -> tuple[str, int]:
    """The split and seed to evaluate on: the given ones, else those the bundle trained with.

    Args:
        train_config: the bundle's training config (`BundleConfig.train`).
        split: an explicit split name, or None.
        seed: an explicit seed, or None.

    Returns:
        `(split, seed)`.

    Raises:
        ValueError: if neither the arguments nor `train_config["data"]` give them.
    """
    data = train_config.get("data", {}) if isinstance(train_config, Mapping) else {}
    split = split if split is not None else data.get("split")
    seed = seed if seed is not None else data.get("seed")
    if not isinstance(split, str) or isinstance(seed, bool) or not isinstance(seed, int):
        raise ValueError(
            "the bundle's training config does not record data.split and data.seed; "
            f"give them explicitly. Received: split={split!r}, seed={seed!r}"
        )
    return split, seed
