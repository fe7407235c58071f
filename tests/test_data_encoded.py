"""Tests for dcnrank.data.encoded: vocabularies fitted on chosen rows, contiguous tensors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from dcnrank.data import (
    EncodedTable,
    Ratings,
    Vocabulary,
    encode_ratings,
    fit_vocabularies,
    load_movielens,
)


def _table() -> EncodedTable:
    return EncodedTable(
        features=torch.tensor([[1, 0], [2, 1], [0, 1]]),
        labels=torch.tensor([5.0, 3.0, 1.0]),
        feature_names=("a", "b"),
        vocabulary_sizes=(3, 2),
    )


def test_fit_vocabularies_on_train_rows(tiny_movielens_dir: Path) -> None:
    ratings = load_movielens(tiny_movielens_dir)
    vocabularies = fit_vocabularies(ratings, np.array([0, 1, 2]))  # users 1 and 2 only
    assert tuple(vocabularies) == Ratings.feature_names
    assert vocabularies["user_id"].values.tolist() == [1, 2]
    assert vocabularies["user_zip_code"].values.tolist() == ["85711", "94043"]
    assert fit_vocabularies(ratings)["user_id"].values.tolist() == [1, 2, 3]  # "all" policy


def test_encode_ratings_values_and_oov(tiny_movielens_dir: Path) -> None:
    ratings = load_movielens(tiny_movielens_dir)
    vocabularies = fit_vocabularies(ratings, np.array([0, 1, 2]))
    table = encode_ratings(ratings, np.array([4, 0]), vocabularies)
    assert table.feature_names == Ratings.feature_names
    assert table.vocabulary_sizes == (3, 3, 3, 3, 3, 3)
    # Row 4: user 3 and movie 4 never appear in the train rows, nor do age bucket 1, zip
    # T8H1N and occupation "student": all OOV (0) except gender M, seen as index 2.
    expected = [[0, 0, 2, 0, 0, 0], [1, 1, 2, 1, 1, 2]]
    assert table.features.tolist() == expected
    torch.testing.assert_close(table.labels, torch.tensor([2.0, 5.0]))
    assert table.features.dtype == torch.int64 and table.features.is_contiguous()
    assert table.labels.dtype == torch.float32
    assert len(table) == 2


def test_encode_all_rows_with_custom_vocabularies(tiny_movielens_dir: Path) -> None:
    ratings = load_movielens(tiny_movielens_dir)
    table = encode_ratings(ratings, None, {"user_id": Vocabulary.fit([1, 3])})
    assert table.feature_names == ("user_id",)
    assert table.features[:, 0].tolist() == [1, 1, 0, 0, 2, 2]


def test_encode_rejects_empty_vocabularies(tiny_movielens_dir: Path) -> None:
    with pytest.raises(ValueError, match="`vocabularies` must name at least one feature"):
        encode_ratings(load_movielens(tiny_movielens_dir), None, {})


def test_rows_must_be_integer(tiny_movielens_dir: Path) -> None:
    ratings = load_movielens(tiny_movielens_dir)
    with pytest.raises(
        ValueError, match=r"`rows` must be a 1-D integer array. Received: dtype=float64"
    ):
        fit_vocabularies(ratings, np.array([0.5]))


def test_unknown_feature_name(tiny_movielens_dir: Path) -> None:
    with pytest.raises(KeyError, match="unknown column 'age'"):
        fit_vocabularies(load_movielens(tiny_movielens_dir), None, ["age"])


def test_take_gathers_rows() -> None:
    subset = _table().take(torch.tensor([2, 0]))
    assert subset.features.tolist() == [[0, 1], [1, 0]]
    torch.testing.assert_close(subset.labels, torch.tensor([1.0, 5.0]))
    assert subset.feature_names == ("a", "b") and subset.vocabulary_sizes == (3, 2)


def test_non_contiguous_features_are_made_contiguous() -> None:
    features = torch.tensor([[1, 0, 1], [2, 1, 0]]).t()[:2].t()  # a strided view
    table = EncodedTable(features, torch.zeros(2), ("a", "b"), (3, 2))
    assert table.features.is_contiguous()


def test_to_device() -> None:
    table = _table().to("cpu")
    assert table.features.device.type == "cpu"


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"features": torch.tensor([[1, 0]], dtype=torch.int32)}, r"`features` must be an int64"),
        (
            {"features": np.zeros((3, 2), dtype=np.int64)},
            r"`features` must be an int64 torch.Tensor. Received: ndarray",
        ),
        ({"labels": torch.tensor([5, 3, 1])}, r"`labels` must be a float32"),
        ({"features": torch.tensor([1, 2, 0])}, r"`features` must have shape \(N, 2\).*\(3,\)"),
        ({"vocabulary_sizes": (3,)}, r"`vocabulary_sizes` must have 2 entries. Received: \(3,\)"),
        (
            {"labels": torch.tensor([5.0, 3.0])},
            r"`labels` must have shape \(3,\). Received: shape=\(2,\)",
        ),
        (
            {"vocabulary_sizes": (2, 2)},
            r"column 'a' must hold indices in 0..1. Received: range 0..2",
        ),
        (
            {"features": torch.tensor([[1, 0], [2, -1], [0, 1]])},
            r"column 'b' must hold indices in 0..1. Received: range -1..1",
        ),
    ],
)
def test_encoded_table_validation(kwargs: dict, message: str) -> None:
    base = {
        "features": torch.tensor([[1, 0], [2, 1], [0, 1]]),
        "labels": torch.tensor([5.0, 3.0, 1.0]),
        "feature_names": ("a", "b"),
        "vocabulary_sizes": (3, 2),
    }
    with pytest.raises(ValueError, match=message):
        EncodedTable(**{**base, **kwargs})


def test_real_encoding(movielens_ratings: Ratings) -> None:
    table = encode_ratings(movielens_ratings, None, fit_vocabularies(movielens_ratings))
    assert tuple(table.features.shape) == (100_000, 6)
    assert table.vocabulary_sizes == (1683, 944, 3, 8, 796, 22)
    assert int(table.features.min()) == 1  # fitted on all rows: no OOV
