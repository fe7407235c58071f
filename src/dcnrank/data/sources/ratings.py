"""The MovieLens ratings table: aligned numpy columns, one row per rating, TFDS feature names."""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import ClassVar

import numpy as np

__all__ = ["AGE_BUCKETS", "GENRE_NAMES", "Ratings", "bucketize_age"]

# The 19 genres of u.genre, in u.item's flag order.
GENRE_NAMES: tuple[str, ...] = (
    "unknown",
    "Action",
    "Adventure",
    "Animation",
    "Children's",
    "Comedy",
    "Crime",
    "Documentary",
    "Drama",
    "Fantasy",
    "Film-Noir",
    "Horror",
    "Musical",
    "Mystery",
    "Romance",
    "Sci-Fi",
    "Thriller",
    "War",
    "Western",
)

# TFDS movielens `bucketized_user_age`: each age maps to the lower edge of its bucket,
# except that ages below 18 map to 1.
AGE_BUCKETS: tuple[int, ...] = (1, 18, 25, 35, 45, 50, 56)


def bucketize_age(ages: np.ndarray) -> np.ndarray:
    """Map ages to TFDS's ``bucketized_user_age``.

    ``age < 18 -> 1``, ``18-24 -> 18``, ``25-34 -> 25``, ``35-44 -> 35``, ``45-49 -> 45``,
    ``50-55 -> 50``, ``>= 56 -> 56``.

    Args:
        ages: integer ages, any shape.

    Returns:
        An int64 array of the same shape holding values from :data:`AGE_BUCKETS`.

    Example:
        >>> bucketize_age(np.array([7, 18, 24, 25, 49, 50, 73])).tolist()
        [1, 18, 18, 25, 45, 50, 56]
    """
    edges = np.asarray(AGE_BUCKETS[1:], dtype=np.int64)
    buckets = np.asarray(AGE_BUCKETS, dtype=np.int64)
    return buckets[np.searchsorted(edges, np.asarray(ages, dtype=np.int64), side="right")]


@dataclass(frozen=True, eq=False)
class Ratings:
    """MovieLens 100K ratings as aligned, read-only numpy columns (one row per rating).

    The feature columns carry the names and encodings of TFDS ``movielens/100k-ratings``,
    which the Keras-RS DCN tutorial reads.

    Args:
        movie_id: int64 movie ids.
        user_id: int64 user ids.
        user_gender: int64, 1 for male and 0 for female (TFDS's bool).
        bucketized_user_age: int64 in :data:`AGE_BUCKETS`.
        user_zip_code: str zip codes as written in ``u.user`` (some are Canadian, e.g. "T8H1N").
        user_occupation_text: str occupations.
        user_rating: float32 ratings 1..5 (the label).
        timestamp: int64 seconds since 1970-01-01 UTC.
        title: str movie titles.
        genres: bool array of shape ``(N, len(genre_names))``.
        release_year: int64 theatrical release year, 0 when ``u.item`` gives no date.
        genre_names: names of the ``genres`` columns (default :data:`GENRE_NAMES`).

    Raises:
        ValueError: if a column has the wrong number of rows or ``genres`` the wrong width.
    """

    movie_id: np.ndarray
    user_id: np.ndarray
    user_gender: np.ndarray
    bucketized_user_age: np.ndarray
    user_zip_code: np.ndarray
    user_occupation_text: np.ndarray
    user_rating: np.ndarray
    timestamp: np.ndarray
    title: np.ndarray
    genres: np.ndarray
    release_year: np.ndarray
    genre_names: tuple[str, ...] = GENRE_NAMES

    # The tutorial's six model inputs, in its order (int features, then str features).
    feature_names: ClassVar[tuple[str, ...]] = (
        "movie_id",
        "user_id",
        "user_gender",
        "bucketized_user_age",
        "user_zip_code",
        "user_occupation_text",
    )
    label_name: ClassVar[str] = "user_rating"

    _DTYPES: ClassVar[dict[str, type]] = {
        "movie_id": np.int64,
        "user_id": np.int64,
        "user_gender": np.int64,
        "bucketized_user_age": np.int64,
        "user_zip_code": np.str_,
        "user_occupation_text": np.str_,
        "user_rating": np.float32,
        "timestamp": np.int64,
        "title": np.str_,
        "genres": np.bool_,
        "release_year": np.int64,
    }

    def __post_init__(self) -> None:
        rows = len(np.asarray(self.movie_id))
        for name, dtype in self._DTYPES.items():
            column: np.ndarray = np.asarray(getattr(self, name), dtype=dtype)
            if column.shape[:1] != (rows,):
                raise ValueError(
                    f"`{name}` must have one entry per rating ({rows} rows). "
                    f"Received: shape {column.shape}"
                )
            view = column.view()  # a read-only view leaves the caller's array writable
            view.setflags(write=False)
            object.__setattr__(self, name, view)
        object.__setattr__(self, "genre_names", tuple(str(n) for n in self.genre_names))
        if self.genres.shape != (rows, len(self.genre_names)):
            raise ValueError(
                f"`genres` must have shape ({rows}, {len(self.genre_names)}) to match "
                f"`genre_names`. Received: shape {self.genres.shape}"
            )

    @classmethod
    def column_names(cls) -> tuple[str, ...]:
        """Return the names of the per-row columns, in field order."""
        return tuple(f.name for f in fields(cls) if f.name in cls._DTYPES)

    def __len__(self) -> int:
        return int(self.movie_id.shape[0])

    def __repr__(self) -> str:
        return f"Ratings({len(self)} rows, columns={list(self.column_names())})"

    def column(self, name: str) -> np.ndarray:
        """Return the column called ``name``.

        Args:
            name: a column name, e.g. ``"user_zip_code"``.

        Returns:
            The read-only column.

        Raises:
            KeyError: if there is no such column; the message lists the valid names.
        """
        if name not in self._DTYPES:
            raise KeyError(
                f"unknown column {name!r}; valid columns: {', '.join(self.column_names())}"
            )
        return getattr(self, name)

    def take(self, indices: np.ndarray) -> Ratings:
        """Return the rows at ``indices`` (in that order) as a new :class:`Ratings`.

        Args:
            indices: 1-D integer row indices (or a boolean mask of length ``len(self)``).

        Returns:
            A new table whose columns are copies of the selected rows.

        Raises:
            ValueError: if ``indices`` is not 1-D integer or boolean.
            IndexError: if an index is out of range.
        """
        indices = np.asarray(indices)
        if indices.ndim != 1 or not (
            np.issubdtype(indices.dtype, np.integer) or indices.dtype == np.bool_
        ):
            raise ValueError(
                "`indices` must be a 1-D integer or boolean array. "
                f"Received: dtype={indices.dtype}, shape={indices.shape}"
            )
        columns = {name: getattr(self, name)[indices] for name in self._DTYPES}
        return Ratings(**columns, genre_names=self.genre_names)
