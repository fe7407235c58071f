"""`Ranker`: score one user's candidate movies, or explicit rows of raw feature values,
with a bundle in one batched forward pass. The HTTP-free core of `dcnrank serve`."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from dcnrank.bundle.bundle import Bundle
from dcnrank.data.vocabulary import OOV_INDEX
from dcnrank.limits import MAX_STRING_CHARS
from dcnrank.serve.errors import RequestError, key_text
from dcnrank.serve.limits import DEFAULT_TOP
from dcnrank.workflows.catalog import MOVIE_COLUMNS, USER_COLUMNS, MovieLensCatalog

__all__ = ["USER_FEATURES", "Prediction", "RankedMovie", "Ranker", "Ranking"]

# What a request may say about a user besides its id.
USER_FEATURES = tuple(name for name in USER_COLUMNS if name != "user_id")
_INT64_MAX = 2**63 - 1


@dataclass(frozen=True)
class RankedMovie:
    """One ranked candidate: its 1-based rank, id, predicted rating and title (None when
    the catalog does not know the movie)."""

    rank: int
    movie_id: int
    score: float
    title: str | None


@dataclass(frozen=True)
class Ranking:
    """The best candidates for one user.

    Args:
        user_id: the user's id, or None for a user given by features only.
        candidates: how many movies were scored.
        items: the best `top` of them, best first.
        unknown: feature -> the given values its vocabulary lacks (scored through the
            out-of-vocabulary row), e.g. `{"movie_id": [99999]}`.
        missing: features nobody gave (scored through the out-of-vocabulary row).
    """

    user_id: int | None
    candidates: int
    items: list[RankedMovie]
    unknown: dict[str, list[int | str]]
    missing: list[str]


@dataclass(frozen=True)
class Prediction:
    """Scores of explicit rows, in order, and the values scored through the OOV row."""

    scores: list[float]
    unknown: dict[str, list[int | str]]


class Ranker:
    """Scores with a bundle and, optionally, the MovieLens catalog.

    :meth:`rank` builds the model's `(N, F)` index tensor for N candidate movies
    directly: the user's indices are looked up once and broadcast, the catalog
    movies' side features are encoded once when the ranker is built, and the N rows
    go through the model in a single forward pass. Without a catalog, `/rank` needs
    explicit candidates and movie side features other than the id are
    out-of-vocabulary.

    Args:
        bundle: the model.
        catalog: the users and movies of the data, for default candidates (the movies
            a user has not rated), a known user's features, and titles. Defaults to none.

    Example:
        >>> from dcnrank.bundle import Bundle, BundleConfig
        >>> from dcnrank.data import Vocabulary
        >>> from dcnrank.models import DCNConfig, build_dcn
        >>> vocabularies = {"movie_id": Vocabulary.fit([1, 50]), "user_id": Vocabulary.fit([42])}
        >>> config = BundleConfig(DCNConfig(embedding_dim=2, deep_units=(4,)), ("movie_id", "user_id"), (3, 2))
        >>> bundle = Bundle(build_dcn(config.model, vocabulary_sizes=[3, 2]), config, vocabularies)
        >>> ranking = Ranker(bundle).rank(user_id=42, candidates=[1, 50, 99999], top=2)
        >>> [item.rank for item in ranking.items], ranking.candidates, ranking.unknown, ranking.missing
        ([1, 2], 3, {'movie_id': [99999]}, [])
    """

    def __init__(self, bundle: Bundle, catalog: MovieLensCatalog | None = None) -> None:
        self.bundle = bundle
        self.catalog = catalog
        self._vocabularies = bundle.vocabularies
        if catalog is not None:
            self._movie_ids = np.asarray(catalog.movies["movie_id"], dtype=np.int64)
            self._titles = catalog.movies["title"]
            # Indices of every catalog movie's side features, encoded once, gathered per request.
            self._movie_indices = {
                name: self._vocabularies[name].encode(catalog.movies[name])
                for name in bundle.feature_names
                if name in MOVIE_COLUMNS and name != "movie_id"
            }

    def rank(
        self,
        *,
        user_id: int | None = None,
        user: Mapping[str, int | str] | None = None,
        candidates: Sequence[int] | None = None,
        top: int = DEFAULT_TOP,
    ) -> Ranking:
        """Score candidate movies for one user and return the `top` best.

        The user is its id, its features, or both: features in `user` win over the
        catalog's for `user_id`; a feature given by neither is scored through its
        out-of-vocabulary row and listed in `missing`. Ties go to the earlier candidate.

        Args:
            user_id: int ≥ 1, a user id, or None.
            user: user feature name (:data:`USER_FEATURES`) -> raw value, or None.
            candidates: movie ids (ints ≥ 1, no repeats) to rank. Defaults to every
                catalog movie the user has not rated (every movie for a user given by
                features only).
            top: int ≥ 1, how many to return. Defaults to 10.

        Returns:
            The ranking, with the values the model does not know.

        Raises:
            RequestError: naming the field: neither `user_id` nor `user`, a bad id or
                `top`, a feature that is not a user feature or of the wrong kind, an
                empty or repeating candidate list, or no candidates and no catalog.
        """
        if user_id is None and user is None:
            raise RequestError("user_id", "give `user_id` or `user` (the user's features). Received neither")
        if user_id is not None:
            _check_positive_int("user_id", user_id)
        if isinstance(top, bool) or not isinstance(top, int) or top < 1:
            raise RequestError("top", f"must be a positive int. Received: top={top!r}")
        user = dict(user or {})
        for name in user:
            if name not in USER_FEATURES:
                raise RequestError(f"user.{name}", f"is not a user feature; they are {', '.join(USER_FEATURES)}")
        ids = self._candidates(user_id, candidates)
        count = len(ids)
        index = np.full((count, len(self.bundle.feature_names)), OOV_INDEX, dtype=np.int64)
        unknown: dict[str, list[int | str]] = {}
        missing: list[str] = []
        positions, in_catalog = self._catalog_positions(ids)
        catalog_user = self.catalog.user_features(user_id) if self.catalog is not None and user_id is not None else None
        for j, name in enumerate(self.bundle.feature_names):
            vocabulary = self._vocabularies[name]
            if name == "movie_id":
                index[:, j] = vocabulary.encode(ids)
                _note_unknown(unknown, name, ids, index[:, j])
            elif name in MOVIE_COLUMNS:
                if self.catalog is None:
                    missing.append(name)
                else:
                    index[in_catalog, j] = self._movie_indices[name][positions[in_catalog]]
            elif name == "user_id" or name in USER_FEATURES:
                value: int | str | None
                if name == "user_id":
                    value, field = user_id, "user_id"
                else:
                    value = user[name] if name in user else (catalog_user or {}).get(name)
                    field = f"user.{name}"
                if value is None:
                    missing.append(name)
                    continue
                _check_kind(field, value, vocabulary.kind)
                encoded = vocabulary.encode([value])
                index[:, j] = encoded[0]
                _note_unknown(unknown, name, [value], encoded)
            else:  # a feature that describes neither the user nor the movie
                missing.append(name)
        if count == 0:  # the user has rated every movie
            return Ranking(user_id, 0, [], unknown, missing)
        scores = self.bundle.predict(torch.from_numpy(index), batch_size=count).numpy()  # one pass
        best = np.argsort(-scores, kind="stable")[:top]
        items = [
            RankedMovie(
                rank=rank + 1,
                movie_id=int(ids[i]),
                score=float(scores[i]),
                title=str(self._titles[positions[i]]) if in_catalog[i] else None,
            )
            for rank, i in enumerate(best)
        ]
        return Ranking(user_id, count, items, unknown, missing)

    def predict(self, rows: Sequence[Mapping[str, Any]]) -> Prediction:
        """Score explicit rows of raw feature values in one forward pass.

        Args:
            rows: one mapping per row from every feature of the model to its raw value
                (an int or a str, as the feature's vocabulary holds).

        Returns:
            One predicted rating per row, and the values scored through the OOV row.

        Raises:
            RequestError: naming the row and feature: no rows, a row that is not a
                mapping, an unknown or missing feature, a value of the wrong kind.
        """
        names = self.bundle.feature_names
        if len(rows) == 0:
            raise RequestError("rows", "must hold at least one row. Received: []")
        wanted = set(names)
        for i, row in enumerate(rows):
            if not isinstance(row, Mapping):
                raise RequestError(f"rows[{i}]", f"must be an object of feature values. Received: {row!r:.100}")
            if row.keys() != wanted:
                extra = [key for key in row if key not in wanted]
                if extra:
                    raise RequestError(
                        f"rows[{i}].{key_text(str(extra[0]))}",
                        f"is not a feature of this model; its features are {', '.join(names)}",
                    )
                absent = [name for name in names if name not in row]
                raise RequestError(
                    f"rows[{i}]", f"missing feature(s) {', '.join(absent)}; give every feature of {', '.join(names)}"
                )
        columns = {}
        for name in names:
            column = [row[name] for row in rows]
            kind = self._vocabularies[name].kind
            if not _all_of_kind(column, kind):
                i = next(i for i, value in enumerate(column) if not _all_of_kind([value], kind))
                _check_kind(f"rows[{i}].{name}", column[i], kind)
            columns[name] = column
        index = self.bundle.encode(columns)
        unknown: dict[str, list[int | str]] = {}
        for j, name in enumerate(names):
            _note_unknown(unknown, name, columns[name], index[:, j].numpy())
        scores = self.bundle.predict(index, batch_size=len(rows))  # one pass
        return Prediction(scores.tolist(), unknown)

    def _candidates(self, user_id: int | None, candidates: Sequence[int] | None) -> np.ndarray:
        if candidates is None:
            if self.catalog is None:
                raise RequestError(
                    "candidates",
                    "required: this server has no MovieLens catalog to take a user's unrated movies from",
                )
            if user_id is None:
                return np.asarray(self.catalog.movies["movie_id"], dtype=np.int64)
            return np.asarray(self.catalog.unrated_movies(user_id), dtype=np.int64)
        if len(candidates) == 0:
            raise RequestError("candidates", "must hold at least one movie id. Received: []")
        for i, value in enumerate(candidates):
            _check_positive_int(f"candidates[{i}]", value)
        ids = np.asarray(candidates, dtype=np.int64)
        unique, counts = np.unique(ids, return_counts=True)
        if (counts > 1).any():
            raise RequestError(
                "candidates", f"must not repeat a movie id. Received: {int(unique[counts > 1][0])} more than once"
            )
        return ids

    def _catalog_positions(self, ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Each id's row in the catalog's movies, and whether it is there at all."""
        if self.catalog is None or len(self._movie_ids) == 0:
            return np.zeros(len(ids), dtype=np.int64), np.zeros(len(ids), dtype=bool)
        positions = np.minimum(np.searchsorted(self._movie_ids, ids), len(self._movie_ids) - 1)
        return positions, self._movie_ids[positions] == ids


def _check_positive_int(field: str, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or not 1 <= value <= _INT64_MAX:
        raise RequestError(field, f"must be an int from 1 to 2**63-1. Received: {value!r:.100}")


def _all_of_kind(values: Sequence[Any], kind: str) -> bool:
    if kind == "str":  # bounded: a lookup may cost memory in proportion to the longest string
        return all(isinstance(v, str) and len(v) <= MAX_STRING_CHARS for v in values)
    return all(
        isinstance(v, int | np.integer) and not isinstance(v, bool) and -_INT64_MAX - 1 <= v <= _INT64_MAX
        for v in values
    )


def _check_kind(field: str, value: Any, kind: str) -> None:
    """Raise unless `value` is of the vocabulary's kind (an int64 int, or a str of at
    most MAX_STRING_CHARS characters)."""
    if not _all_of_kind([value], kind):
        if kind == "str" and isinstance(value, str):
            raise RequestError(
                field, f"must be at most {MAX_STRING_CHARS} characters. Received: a str of {len(value)} characters"
            )
        wanted = "a str" if kind == "str" else "an int that fits int64"
        raise RequestError(field, f"must be {wanted}, as this feature's vocabulary holds. Received: {value!r:.100}")


def _note_unknown(unknown: dict[str, list], name: str, values: Any, indices: np.ndarray) -> None:
    """Record under `name` the distinct `values` (in first-seen order) that encoded to OOV.

    The values are picked out one by one, never made into one numpy array: a str array
    is as wide as its longest value times its length."""
    oov = np.flatnonzero(np.asarray(indices) == OOV_INDEX)
    if len(oov):
        picked = (values[i] for i in oov.tolist())
        unknown[name] = list(dict.fromkeys(v.item() if isinstance(v, np.generic) else v for v in picked))
