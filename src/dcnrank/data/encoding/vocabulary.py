"""A lookup from feature values to embedding indices, with index 0 for unseen values.

It behaves like Keras ``IntegerLookup`` / ``StringLookup`` with one OOV index (the layers
the Keras-RS DCN tutorial uses): the known values, sorted as ``np.unique`` sorts them,
get indices ``1..n`` and every other value gets ``0``.

Text is held as numpy object arrays of Python strings (:data:`TEXT`), never as fixed-width
``<U`` arrays: a ``<U`` array is as wide as its longest value, so one long value would
make every value cost its length. A string is looked up by its hash, so a lookup costs
time in proportion to the value's own length, whatever the vocabulary holds.
"""

from __future__ import annotations

import itertools
import json
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = ["OOV_INDEX", "TEXT", "Vocabulary", "is_text"]

OOV_INDEX = 0

# The dtype of text arrays in the data layer: Python strings, each costing its own length.
# (numpy's StringDType would do as well, but its default sort crashes in numpy 2.4 on
# arrays with repeated values.)
TEXT = np.dtype(object)


def is_text(array: np.ndarray) -> bool:
    """Whether `array` holds text: a ``<U`` array, or a :data:`TEXT` array of strings.

    An object array is taken to hold what its first value is (the data layer builds its
    text arrays only of strings); an empty one counts as text.

    Example:
        >>> is_text(np.array(["a"])), is_text(np.array(["a"], dtype=TEXT)), is_text(np.array([1]))
        (True, True, False)
    """
    if array.dtype.kind == "U":
        return True
    return array.dtype == TEXT and (array.size == 0 or isinstance(array.flat[0], str))


def _as_values(values: Any, argument: str) -> np.ndarray:
    """Return ``values`` as an int64 array, or a text array (``<U`` or :data:`TEXT` of strings).

    Floats, bools in an object array, mixed objects and text mixed with other values are
    refused. A list of strings becomes a :data:`TEXT` array, never a fixed-width ``<U``
    one (as wide as its longest string).
    """
    array = values if isinstance(values, np.ndarray) else np.asarray(values, dtype=object)
    if array.dtype == TEXT:
        flat = array.ravel()
        if isinstance(values, np.ndarray) and flat.size == 0:
            return array  # an empty text array
        if flat.size and all(isinstance(v, str) for v in flat):
            return array
        if flat.size and all(isinstance(v, bytes) for v in flat):
            return _decoded(flat).reshape(array.shape)
        if flat.size and all(isinstance(v, int | np.integer) and not isinstance(v, bool) for v in flat):
            array = array.astype(np.int64)
        elif not isinstance(values, np.ndarray) and not any(isinstance(v, str | bytes) for v in flat):
            array = np.asarray(values)  # no text in the list: bools, floats, None… as numpy reads them
    if array.dtype.kind in "biu":
        if array.dtype.kind == "u" and array.size and array.max() > np.iinfo(np.int64).max:
            raise ValueError(f"`{argument}` holds integers too large for int64")
        return array.astype(np.int64)
    if array.dtype.kind == "S":
        return _decoded(array.ravel()).reshape(array.shape)
    if array.dtype.kind == "T":  # numpy's StringDType, whose sort is not safe to use: Python strings
        return array.astype(TEXT)
    if array.dtype.kind != "U":
        raise ValueError(
            f"`{argument}` must hold integers or strings. Received: dtype={array.dtype}"
        )
    return array


def _decoded(flat: np.ndarray) -> np.ndarray:
    """UTF-8 bytes (1-D) as a :data:`TEXT` array."""
    text = np.empty(len(flat), dtype=TEXT)
    text[:] = [bytes(v).decode("utf-8") for v in flat.tolist()]
    return text


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
        if values.dtype.kind == "U":
            values = values.astype(TEXT)  # each value its own length, not the longest one's
        if values.ndim != 1:
            raise ValueError(f"`values` must be 1-D. Received: shape={values.shape}")
        if values.size > 1 and not bool(np.all(values[1:] > values[:-1])):
            first = int(np.flatnonzero(values[1:] <= values[:-1])[0])
            raise ValueError(
                "`values` must be strictly increasing (use Vocabulary.fit). Received: "
                f"values[{first}]={values[first : first + 1].tolist()[0]!r:.200}, "
                f"values[{first + 1}]={values[first + 1 : first + 2].tolist()[0]!r:.200}"
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
        return "str" if is_text(self.values) else "int"

    def encode(self, values: Any) -> np.ndarray:
        """Map values to indices: known values to ``1..n``, anything else to 0.

        A string is looked up by its hash in a dict built on the first lookup, never
        compared with the vocabulary's values, so a value costs its own length, however
        long it or the vocabulary's values are.

        Args:
            values: ints for an int vocabulary, strings for a str vocabulary; any shape.

        Returns:
            An int64 array of the same shape.

        Raises:
            ValueError: if ``values`` is of the other kind (strings for an int vocabulary
                or the reverse) or neither.
        """
        array = _as_values(values, "values")
        if is_text(array) != (self.kind == "str"):
            raise ValueError(
                f"this vocabulary holds {self.kind} values; `values` must too. "
                f"Received: {'str' if is_text(array) else 'int'} values"
            )
        if self.values.size == 0:
            return np.zeros(array.shape, dtype=np.int64)
        if self.kind == "str":
            index = self._index()
            flat = array.ravel().tolist()
            found = np.fromiter(map(index.get, flat, itertools.repeat(OOV_INDEX)), dtype=np.int64, count=len(flat))
            return found.reshape(array.shape)
        position = np.searchsorted(self.values, array)
        clipped = np.minimum(position, self.values.size - 1)
        known = self.values[clipped] == array
        return np.where(known, clipped + 1, OOV_INDEX).astype(np.int64)

    def _index(self) -> dict[str, int]:
        """String value -> index, built once (the vocabulary is immutable)."""
        index = self.__dict__.get("_string_index")
        if index is None:
            index = {value: i for i, value in enumerate(self.values.tolist(), start=1)}
            object.__setattr__(self, "_string_index", index)
        return index

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
        if kind not in ("int", "str"):
            raise ValueError(f"`kind` must be 'int' or 'str'. Received: kind={kind!r}")
        values = data["values"]
        wanted = str if kind == "str" else int
        if not isinstance(values, list) or not all(
            isinstance(v, wanted) and not isinstance(v, bool) for v in values
        ):
            raise ValueError(f"`values` must be a list of {kind}. Received: {values!r:.200}")
        if kind == "int":
            return cls(np.asarray(values, dtype=np.int64))
        text = np.empty(len(values), dtype=TEXT)
        text[:] = values
        return cls(text)

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
        return hash((self.kind, tuple(self.values.tolist())))

    def __repr__(self) -> str:
        return f"Vocabulary({self.kind}, size={self.size})"
