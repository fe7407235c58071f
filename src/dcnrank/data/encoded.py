"""Ratings encoded for training: one contiguous int64 feature matrix and a float32 label vector."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from dcnrank.data.ratings import Ratings
from dcnrank.data.vocabulary import Vocabulary

__all__ = ["EncodedTable", "encode_ratings", "fit_vocabularies"]


@dataclass(frozen=True, eq=False)
class EncodedTable:
    """Vocabulary indices of N rows × F features, with their labels.

    Batches are slices or index gathers of these tensors, never per-row Python.

    Args:
        features: int64 tensor ``(N, F)``; column ``j`` holds indices in
            ``0..vocabulary_sizes[j] - 1`` (0 = out of vocabulary). Made contiguous.
        labels: float32 tensor ``(N,)``.
        feature_names: the F feature names, in column order.
        vocabulary_sizes: the F vocabulary sizes (OOV index included).

    Raises:
        ValueError: if a dtype, shape or length disagrees, or an index is out of range.
    """

    features: torch.Tensor
    labels: torch.Tensor
    feature_names: tuple[str, ...]
    vocabulary_sizes: tuple[int, ...]

    def __post_init__(self) -> None:
        features, labels = self.features, self.labels
        if not isinstance(features, torch.Tensor) or features.dtype != torch.int64:
            raise ValueError(
                "`features` must be an int64 torch.Tensor. "
                f"Received: {type(features).__name__} {getattr(features, 'dtype', '')}"
            )
        if not isinstance(labels, torch.Tensor) or labels.dtype != torch.float32:
            raise ValueError(
                "`labels` must be a float32 torch.Tensor. "
                f"Received: {type(labels).__name__} {getattr(labels, 'dtype', '')}"
            )
        names = tuple(self.feature_names)
        sizes = tuple(int(s) for s in self.vocabulary_sizes)
        if features.ndim != 2 or features.shape[1] != len(names):
            raise ValueError(
                f"`features` must have shape (N, {len(names)}), one column per feature name. "
                f"Received: shape={tuple(features.shape)}"
            )
        if len(sizes) != len(names):
            raise ValueError(
                f"`vocabulary_sizes` must have {len(names)} entries. Received: {sizes}"
            )
        if labels.shape != (features.shape[0],):
            raise ValueError(
                f"`labels` must have shape ({features.shape[0]},). "
                f"Received: shape={tuple(labels.shape)}"
            )
        if features.numel():
            low = features.amin(dim=0)
            high = features.amax(dim=0)
            for column, name in enumerate(names):
                if low[column] < 0 or high[column] >= sizes[column]:
                    raise ValueError(
                        f"`features` column {name!r} must hold indices in "
                        f"0..{sizes[column] - 1}. Received: range {int(low[column])}.."
                        f"{int(high[column])}"
                    )
        object.__setattr__(self, "features", features.contiguous())
        object.__setattr__(self, "labels", labels.contiguous())
        object.__setattr__(self, "feature_names", names)
        object.__setattr__(self, "vocabulary_sizes", sizes)

    def __len__(self) -> int:
        return int(self.features.shape[0])

    def take(self, index: torch.Tensor) -> EncodedTable:
        """Return the rows at ``index`` (a 1-D integer tensor or boolean mask).

        Args:
            index: row indices or mask, on the tensors' device.

        Returns:
            A new table with the gathered rows.
        """
        return EncodedTable(
            features=self.features[index],
            labels=self.labels[index],
            feature_names=self.feature_names,
            vocabulary_sizes=self.vocabulary_sizes,
        )

    def to(self, device: torch.device | str) -> EncodedTable:
        """Return a copy whose tensors live on ``device``."""
        return EncodedTable(
            features=self.features.to(device),
            labels=self.labels.to(device),
            feature_names=self.feature_names,
            vocabulary_sizes=self.vocabulary_sizes,
        )


def _rows(ratings: Ratings, rows: np.ndarray | None) -> np.ndarray:
    if rows is None:
        return np.arange(len(ratings), dtype=np.int64)
    rows = np.asarray(rows)
    if rows.ndim != 1 or not np.issubdtype(rows.dtype, np.integer):
        raise ValueError(
            f"`rows` must be a 1-D integer array. Received: dtype={rows.dtype}, shape={rows.shape}"
        )
    return rows


def fit_vocabularies(
    ratings: Ratings,
    rows: np.ndarray | None = None,
    feature_names: Sequence[str] = Ratings.feature_names,
) -> dict[str, Vocabulary]:
    """Fit one vocabulary per feature on the given rows.

    Fitting on the train rows keeps test data out of the vocabularies; fitting on all
    rows reproduces the tutorial, which built them from the whole dataset.

    Args:
        ratings: the table.
        rows: the row indices to fit on (None: all rows).
        feature_names: the features (default: the tutorial's six).

    Returns:
        feature name -> vocabulary, in ``feature_names`` order.

    Raises:
        ValueError: if ``rows`` is not a 1-D integer array.
        KeyError: if a feature name is not a column of ``ratings``.
    """
    selected = _rows(ratings, rows)
    return {name: Vocabulary.fit(ratings.column(name)[selected]) for name in feature_names}


def encode_ratings(
    ratings: Ratings,
    rows: np.ndarray | None,
    vocabularies: Mapping[str, Vocabulary],
) -> EncodedTable:
    """Encode the given rows with the vocabularies (features in the vocabularies' order).

    Args:
        ratings: the table.
        rows: the row indices to encode, in output order (None: all rows).
        vocabularies: feature name -> vocabulary, as from :func:`fit_vocabularies`.

    Returns:
        The encoded rows; labels are ``user_rating``.

    Raises:
        ValueError: if ``rows`` is not 1-D integer or ``vocabularies`` is empty.
        KeyError: if a feature name is not a column of ``ratings``.
    """
    if not vocabularies:
        raise ValueError("`vocabularies` must name at least one feature. Received: {}")
    selected = _rows(ratings, rows)
    names = tuple(vocabularies)
    features = np.empty((len(selected), len(names)), dtype=np.int64)
    for column, name in enumerate(names):
        features[:, column] = vocabularies[name].encode(ratings.column(name)[selected])
    labels = np.ascontiguousarray(ratings.user_rating[selected], dtype=np.float32)
    return EncodedTable(
        features=torch.from_numpy(features),
        labels=torch.from_numpy(labels),
        feature_names=names,
        vocabulary_sizes=tuple(vocabularies[name].size for name in names),
    )
