"""`MovieLensCatalog`: who the users are, which movies exist, and who rated what."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from dcnrank.data.ratings import Ratings

__all__ = ["MOVIE_COLUMNS", "USER_COLUMNS", "MovieLensCatalog"]

# Ratings columns that describe the user of a row (constant per user; from u.user)…
USER_COLUMNS = ("user_id", "user_gender", "bucketized_user_age", "user_zip_code", "user_occupation_text")
# …and the movie of a row (constant per movie; from u.item).
MOVIE_COLUMNS = ("movie_id", "title", "release_year")


@dataclass(frozen=True, eq=False)
class MovieLensCatalog:
    """Users and movies of a MovieLens ratings table, one row each, sorted by id.

    Built from the joined `Ratings` the data layer parses (`u.data` with `u.user` and
    `u.item`), so it knows every user and movie that has at least one rating — in
    MovieLens 100K, all 943 users and 1682 movies.

    Args:
        users: column name (:data:`USER_COLUMNS`) -> one value per user, by `user_id`.
        movies: column name (:data:`MOVIE_COLUMNS`) -> one value per movie, by `movie_id`.
        ratings: the table, for who rated what.

    Example:
        >>> ratings = Ratings(movie_id=[7, 8], user_id=[1, 1], user_gender=[1, 1],
        ...     bucketized_user_age=[25, 25], user_zip_code=["0", "0"],
        ...     user_occupation_text=["x", "x"], user_rating=[4, 5], timestamp=[0, 0],
        ...     title=["A", "B"], genres=np.zeros((2, 19), bool), release_year=[1990, 1991])
        >>> catalog = MovieLensCatalog.from_ratings(ratings)
        >>> catalog.user_features(1)["bucketized_user_age"], catalog.unrated_movies(1).tolist()
        (25, [])
    """

    users: dict[str, np.ndarray]
    movies: dict[str, np.ndarray]
    ratings: Ratings

    @classmethod
    def from_ratings(cls, ratings: Ratings) -> MovieLensCatalog:
        """Collect each user's and each movie's attributes from its first rating row."""
        _, user_rows = np.unique(ratings.user_id, return_index=True)
        _, movie_rows = np.unique(ratings.movie_id, return_index=True)
        return cls(
            users={name: ratings.column(name)[user_rows] for name in USER_COLUMNS},
            movies={name: ratings.column(name)[movie_rows] for name in MOVIE_COLUMNS},
            ratings=ratings,
        )

    def has_user(self, user_id: int) -> bool:
        """Whether `user_id` rated anything in the data."""
        ids = self.users["user_id"]
        position = int(np.searchsorted(ids, user_id))
        return position < len(ids) and int(ids[position]) == user_id

    def user_features(self, user_id: int) -> dict[str, Any] | None:
        """The user's :data:`USER_COLUMNS` values, or None for a user not in the data."""
        if not self.has_user(user_id):
            return None
        position = int(np.searchsorted(self.users["user_id"], user_id))
        return {name: column[position].item() for name, column in self.users.items()}

    def unrated_movies(self, user_id: int) -> np.ndarray:
        """Ids of the movies `user_id` has not rated, ascending (all movies for an unknown user)."""
        rated = self.ratings.movie_id[self.ratings.user_id == user_id]
        return self.movies["movie_id"][~np.isin(self.movies["movie_id"], rated)]

    def movie_columns(self, movie_ids: np.ndarray) -> dict[str, np.ndarray]:
        """:data:`MOVIE_COLUMNS` values of known `movie_ids`, in their order.

        Raises:
            ValueError: if an id is not a movie of the data.
        """
        ids = self.movies["movie_id"]
        movie_ids = np.asarray(movie_ids, dtype=np.int64)
        position = np.minimum(np.searchsorted(ids, movie_ids), len(ids) - 1)
        unknown = ids[position] != movie_ids
        if unknown.any():
            raise ValueError(f"`movie_ids` holds unknown movie {int(movie_ids[unknown][0])}")
        return {name: column[position] for name, column in self.movies.items()}
