"""Item side features of MovieLens, per item vocabulary index: genres and release-year buckets."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import torch

from dcnrank.data.ratings import Ratings
from dcnrank.data.vocabulary import Vocabulary

__all__ = ["NUM_YEAR_BUCKETS", "YEAR_EDGES", "bucketize_release_year", "item_side_table"]

# Release years are skewed to the 1990s (most of MovieLens 100K's ratings are of 1994–1998
# films), so buckets are decades before 1980 and narrower after.
YEAR_EDGES: tuple[int, ...] = (1940, 1950, 1960, 1970, 1980, 1985, 1990, 1993, 1995, 1996, 1997, 1998)
# bucket 0: unknown year (0); 1: before 1940; then one per edge.
NUM_YEAR_BUCKETS = len(YEAR_EDGES) + 2


def bucketize_release_year(years: np.ndarray) -> np.ndarray:
    """Map release years to buckets `0..NUM_YEAR_BUCKETS-1`; year 0 (unknown) maps to 0.

    Example:
        >>> bucketize_release_year(np.array([0, 1930, 1940, 1995, 1998])).tolist()
        [0, 1, 2, 10, 13]
    """
    years = np.asarray(years, dtype=np.int64)
    buckets = np.searchsorted(np.asarray(YEAR_EDGES), years, side="right") + 1
    return np.where(years == 0, 0, buckets).astype(np.int64)


def item_side_table(
    ratings: Ratings, rows: np.ndarray, vocabularies: Mapping[str, Vocabulary], item: str = "movie_id"
) -> tuple[torch.Tensor, torch.Tensor]:
    """Genres and release-year bucket of every item in the item vocabulary, from `rows` only.

    Only the given rows are read (the training rows), so items seen only in test data
    keep the OOV row's zeros, as their ids do.

    Args:
        ratings: the table.
        rows: the row indices to read item attributes from.
        vocabularies: feature name -> vocabulary; `vocabularies[item]` numbers the items.
        item: the item feature. Defaults to `"movie_id"`.

    Returns:
        `(genres, year_buckets)`: float32 `(V, G)` multi-hot and int64 `(V,)`, row `i`
        for item index `i` (row 0, OOV, is zeros).

    Raises:
        KeyError: if `item` has no vocabulary.
    """
    vocabulary = vocabularies[item]
    selected = np.asarray(rows, dtype=np.int64)
    index = vocabulary.encode(ratings.column(item)[selected])
    genres = np.zeros((vocabulary.size, ratings.genres.shape[1]), dtype=np.float32)
    years = np.zeros(vocabulary.size, dtype=np.int64)
    genres[index] = ratings.genres[selected]
    years[index] = bucketize_release_year(ratings.release_year[selected])
    genres[0], years[0] = 0.0, 0
    return torch.from_numpy(genres), torch.from_numpy(years)
