"""A lookup from feature values to embedding indices, with index 0 for unseen values.

It behaves like Keras ``IntegerLookup`` / ``StringLookup`` with one OOV index (the layers
the Keras-RS DCN tutorial uses): the known values, sorted as ``np.unique`` sorts them,
get indices ``1..n`` and every other value gets ``0``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = ["OOV_INDEX", "Vocabulary"]

OOV_INDEX = 0


def _as_values(values: Any, argument: str) -> np.ndarray:
    """Return ``values`` as a 1-D int64 or str array; floats and mixed objects are refused."""
    array = np.asarray(values)
    if array.dtype == object:
        if all(isinstance(v, str) for v in array.ravel()):
            array = array.astype(np.str_)
        elif all(
            isinstance(v, int | np.integer) and not isinstance(v, bool) for v in array.ravel()
        ):
            array = array.astype(np.int64)
    if array.dtype.kind in "biu":
        if array.dtype.kind == "u" and array.size and array.max() > np.iinfo(np.int64).max:
            raise ValueError(f"`{argument}` holds integers too large for int64")
        array = array.astype(np.int64)
    elif array.dtype.kind == "S":
        array = np.char.decode(array, "utf-8")
    elif array.dtype.kind != "U":
        raise ValueError(
            f"`{argument}` must hold integers or strings. Received: dtype={array.dtype}"
        )
    return array


@dataclass(frozen=True, eq=False)
class Vocabulary:
    """Sorted unique values of one feature; value ``values[i]`` encodes to ``i + 1``.

    Args:
        values: the known values, strictly increasing, all ints or all strings (use
            :meth:`fit` to build them from data).

    Raises:
        ValueError: if ``values`` is not 1-D, not strictly increasing, or neither integer
            nor string.

    Example:
        >>> vocabulary = Vocabulary.fit(["b", "a", "b"])
        >>> vocabulary.encode(["a", "b", "z"]).tolist()
        [1, 2, 0]
        >>> vocabulary.size
        3
    """

    values: np.ndarray

    def __post_init__(self) -> None:
        values = _as_values(self.values, "values")
        if values.ndim != 1:
            raise ValueError(f"`values` must be 1-D. Received: shape={values.shape}")
        if values.size > 1 and not bool(np.all(values[1:] > values[:-1])):
            first = int(np.flatnonzero(values[1:] <= values[:-1])[0])
            raise ValueError(
                "`values` must be strictly increasing (use Vocabulary.fit). Received: "
                f"values[{first}]={values[first].item()!r}, "
                f"values[{first + 1}]={values[first + 1].item()!r}"
            )
        values = values.copy()
        values.setflags(write=False)
        object.__setattr__(self, "values", values)

    @classmethod
    def fit(cls, values: Any) -> Vocabulary:
        """Build the vocabulary of the distinct values in ``values``.

        Args:
            values: ints or strings, any shape.

        Returns:
            A vocabulary of ``np.unique(values)``.

        Raises:
            ValueError: if ``values`` holds neither integers nor strings.
        """
        return cls(np.unique(_as_values(values, "values").ravel()))

    @property
    def size(self) -> int:
        """The number of indices, ``len(values) + 1`` (the OOV index included)."""
        return int(self.values.size) + 1

    @property
    def kind(self) -> str:
        """``"int"`` or ``"str"``."""
        return "str" if self.values.dtype.kind == "U" else "int"

    def encode(self, values: Any) -> np.ndarray:
        """Map values to indices: known values to ``1..n``, anything else to 0.

        Args:
            values: ints for an int vocabulary, strings for a str vocabulary; any shape.

        Returns:
            An int64 array of the same shape.

        Raises:
            ValueError: if ``values`` is of the other kind (strings for an int vocabulary
                or the reverse) or neither.
        """
        array = _as_values(values, "values")
        if (array.dtype.kind == "U") != (self.kind == "str"):
            raise ValueError(
                f"this vocabulary holds {self.kind} values; `values` must too. "
                f"Received: dtype={array.dtype}"
            )
        if self.values.size == 0:
            return np.zeros(array.shape, dtype=np.int64)
        position = np.searchsorted(self.values, array)
        clipped = np.minimum(position, self.values.size - 1)
        known = self.values[clipped] == array
        return np.where(known, clipped + 1, OOV_INDEX).astype(np.int64)

    def decode(self, indices: Any) -> np.ndarray:
        """Map indices back to values (the inverse of :meth:`encode` on known values).

        Args:
            indices: integers in ``1..n``, any shape.

        Returns:
            The values, same shape.

        Raises:
            ValueError: if an index is 0 (OOV has no value) or out of range.
        """
        indices = np.asarray(indices, dtype=np.int64)
        invalid = (indices < 1) | (indices >= self.size)
        if invalid.any():
            raise ValueError(
                f"`indices` must be in 1..{self.size - 1}. "
                f"Received: {int(indices[invalid].ravel()[0])}"
            )
        return self.values[indices - 1]

    def to_dict(self) -> dict[str, Any]:
        """Return ``{"kind": "int" | "str", "values": [...]}``, JSON-serialisable."""
        return {"kind": self.kind, "values": self.values.tolist()}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Vocabulary:
        """Rebuild a vocabulary from :meth:`to_dict`'s output.

        Args:
            data: a dict with ``kind`` (``"int"`` or ``"str"``) and ``values``.

        Returns:
            The vocabulary.

        Raises:
            ValueError: if a key is missing, ``kind`` is unknown, or the values do not match it.
        """
        if not isinstance(data, dict) or set(data) != {"kind", "values"}:
            raise ValueError(
                "a vocabulary must be a dict with exactly the keys 'kind' and 'values'. "
                f"Received: {data!r:.200}"
            )
        kind = data["kind"]
        dtype = {"int": np.int64, "str": np.str_}.get(kind)
        if dtype is None:
            raise ValueError(f"`kind` must be 'int' or 'str'. Received: kind={kind!r}")
        values = data["values"]
        wanted = str if kind == "str" else int
        if not isinstance(values, list) or not all(
            isinstance(v, wanted) and not isinstance(v, bool) for v in values
        ):
            raise ValueError(f"`values` must be a list of {kind}. Received: {values!r:.200}")
        return cls(np.asarray(values, dtype=dtype))

    def to_json(self) -> str:
        """Serialise to a JSON string (see :meth:`to_dict`)."""
        return json.dumps(self.to_dict(), ensure_ascii=False)

    @classmethod
    def from_json(cls, text: str) -> Vocabulary:
        """Rebuild a vocabulary from :meth:`to_json`'s output.

        Args:
            text: the JSON string.

        Returns:
            The vocabulary.

        Raises:
            ValueError: if ``text`` is not valid JSON or not a vocabulary.
        """
        return cls.from_dict(json.loads(text))

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Vocabulary):
            return NotImplemented
        return self.kind == other.kind and np.array_equal(self.values, other.values)

    def __hash__(self) -> int:
        return hash((self.kind, self.values.tobytes()))

    def __repr__(self) -> str:
        return f"Vocabulary({self.kind}, size={self.size})"
