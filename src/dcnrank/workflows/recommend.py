"""Recommend items for a user: with a table bundle, through the one ranking core
(`dcnrank.bundle.ranking.rank_items`, which `POST /rank` also calls); with a MovieLens-style
bundle (`recommend`, until MovieLens trains through the table path), the movies the user
has not rated by predicted rating."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from dcnrank.bundle.bundle import Bundle
from dcnrank.bundle.ranking import Ranking, id_kind, rank_items
from dcnrank.bundle.table_bundle import TableBundle
from dcnrank.workflows.catalog import MOVIE_COLUMNS, USER_COLUMNS, MovieLensCatalog

__all__ = ["Recommendation", "Recommendations", "parse_user_id", "recommend", "recommend_items"]


@dataclass(frozen=True)
class Recommendation:
    """One recommended movie: its 1-based rank, id, title and predicted rating."""

    rank: int
    movie_id: int
    title: str
    predicted_rating: float


@dataclass(frozen=True)
class Recommendations:
    """The top movies for one user.

    Args:
        user_id: the user.
        in_vocabulary: whether the model knows the user id (else it scored the user
            through the out-of-vocabulary row).
        in_data: whether the user is in the MovieLens data (else every user feature
            was out of vocabulary).
        candidates: how many unrated movies were scored.
        items: the best `top` of them, best first.
    """

    user_id: int
    in_vocabulary: bool
    in_data: bool
    candidates: int
    items: list[Recommendation]


def recommend(bundle: Bundle, catalog: MovieLensCatalog, user_id: int, top: int = 10) -> Recommendations:
    """Score every movie `user_id` has not rated and return the `top` best.

    A user of the data is scored with its side features (gender, age bucket, zip
    code, occupation) from `u.user`; a user id the model's vocabulary lacks goes
    through the OOV row, and a user absent from the data has every user feature OOV.
    Ties in predicted rating go to the lower movie id.

    Args:
        bundle: the model.
        catalog: the users and movies of the data.
        user_id: int ≥ 1.
        top: int ≥ 1, how many to return. Defaults to 10.

    Returns:
        The recommendations and whether the user was known.

    Raises:
        ValueError: if `user_id` or `top` is not a positive int, or the bundle needs a
            feature that is neither a user nor a movie column.
    """
    for name, value in (("user_id", user_id), ("top", top)):
        if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 1:
            raise ValueError(f"`{name}` must be a positive int. Received: {name}={value!r}")
    unsupported = [n for n in bundle.feature_names if n not in USER_COLUMNS and n not in MOVIE_COLUMNS]
    if unsupported:
        raise ValueError(
            f"cannot recommend with feature(s) {unsupported}: only user columns "
            f"{list(USER_COLUMNS)} and movie columns {list(MOVIE_COLUMNS)} are known"
        )
    in_vocabulary = "user_id" in bundle.vocabularies and bool(bundle.vocabularies["user_id"].encode([user_id])[0])
    user = catalog.user_features(int(user_id))
    candidates = catalog.unrated_movies(int(user_id))
    if len(candidates) == 0:
        return Recommendations(int(user_id), in_vocabulary, user is not None, 0, [])
    movies = catalog.movie_columns(candidates)
    count = len(candidates)
    columns = {}
    for name in bundle.feature_names:
        if name in MOVIE_COLUMNS:
            columns[name] = movies[name]
        elif name == "user_id":
            columns[name] = np.full(count, int(user_id), dtype=np.int64)
        elif user is not None:
            columns[name] = np.repeat(np.asarray([user[name]]), count)
    scores = bundle.predict(columns, missing_as_oov=user is None).numpy()
    best = np.argsort(-scores, kind="stable")[:top]  # candidates ascend, so ties favour low ids
    items = [
        Recommendation(rank + 1, int(candidates[i]), str(movies["title"][i]), float(scores[i]))
        for rank, i in enumerate(best)
    ]
    return Recommendations(int(user_id), in_vocabulary, user is not None, count, items)


def parse_user_id(bundle: TableBundle, text: str) -> int | str:
    """A user id typed on the command line as the table bundle's user column holds it:
    an int for a column of ints, else the text itself.

    Raises:
        ValueError: naming `--user`, if the column holds ints and `text` is not one, or the
            bundle's spec names no user column.

    Example:
        >>> from dcnrank.data.feature_spec import CategoricalColumn, FeatureSpec
        >>> from dcnrank.data.table_encoder import TableEncoder
        >>> from dcnrank.models import DCNConfig
        >>> from dcnrank.models.table_inputs import build_table_dcn
        >>> spec = FeatureSpec((CategoricalColumn("u"), CategoricalColumn("i")), label="y", task="binary",
        ...                    user="u", item="i")
        >>> encoder = TableEncoder.fit(spec, {"u": [1, 2], "i": ["a", "b"], "y": [0, 1]})
        >>> config = DCNConfig(structure="cross_only", embedding_dim=2)
        >>> parse_user_id(TableBundle(build_table_dcn(config, spec, encoder.table_sizes), config, encoder), "42")
        42
    """
    user = bundle.spec.user
    if user is None:
        raise ValueError(f"--user: this bundle's spec names no user column, so it cannot recommend. Received: {text!r}")
    if id_kind(bundle, user) == "str":
        return text
    try:
        return int(text)
    except ValueError:
        if id_kind(bundle, user) == "int":
            raise ValueError(f"--user must be an integer: the column {user!r} holds ints. Received: {text!r}") from None
        return text


def recommend_items(bundle: TableBundle, user: str, top: int = 10) -> Ranking:
    """`dcnrank recommend` for a table bundle: the `top` catalogue items for the user whose id
    is the text `user`, as `POST /rank` ranks them (:func:`dcnrank.bundle.ranking.rank_items`).

    Raises:
        ValueError: if `user` is not an id of the user column's kind.
        RankingError: as `rank_items` (e.g. a bundle without a catalogue).
    """
    return rank_items(bundle, parse_user_id(bundle, user), top=top)
