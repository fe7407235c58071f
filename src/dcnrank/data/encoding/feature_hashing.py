"""Feature hashing: a categorical value's embedding row without a vocabulary.

The row of a value is ``1 + h mod B`` with ``h`` the little-endian integer of the
8-byte BLAKE2b digest of the value's text (``str(value)`` in UTF-8), so an int and its
decimal string share a row, the mapping is the same on every machine and Python run
(unlike `hash()`), and any language with BLAKE2b can reproduce it. Row 0 stays the
out-of-vocabulary row, used for missing values.
"""

from __future__ import annotations

import hashlib

import numpy as np

from dcnrank.data.encoding.vocabulary import OOV_INDEX, TEXT

__all__ = ["hash_rows"]


def hash_rows(values: np.ndarray, missing: np.ndarray, buckets: int) -> np.ndarray:
    """Embedding rows ``1..buckets`` of `values` by hashing; missing values get row 0.

    Each distinct value is hashed once, so the cost is one digest per distinct value.

    Args:
        values: 1-D int64 or str array.
        missing: 1-D bool array, True where the value is missing.
        buckets: int ≥ 1, the number of hash rows.

    Returns:
        An int64 array of rows in ``0..buckets``.

    Raises:
        ValueError: if `buckets` is not a positive int or the arrays differ in length.

    Example:
        >>> hash_rows(np.array(["a", "b", "a"]), np.array([False, False, True]), 1000).tolist()
        [929, 669, 0]
        >>> present = np.array([False])
        >>> hash_rows(np.array([7]), present, 50).tolist() == hash_rows(np.array(["7"]), present, 50).tolist()
        True
    """
    if isinstance(buckets, bool) or not isinstance(buckets, int) or buckets < 1:
        raise ValueError(f"`buckets` must be a positive int. Received: buckets={buckets!r}")
    if len(values) != len(missing):
        raise ValueError(
            f"`values` and `missing` must have the same length. Received: {len(values)} and {len(missing)}"
        )
    array = values if isinstance(values, np.ndarray) else np.asarray(values, dtype=TEXT)
    if array.dtype.kind == "U":  # Python strings, so that one long value does not make each cost its length
        array = array.astype(TEXT)
    uniques, inverse = np.unique(array, return_inverse=True)
    digests = np.fromiter(
        (
            int.from_bytes(hashlib.blake2b(str(u).encode("utf-8"), digest_size=8).digest(), "little") % buckets
            for u in uniques
        ),
        dtype=np.int64,
        count=len(uniques),
    )
    rows = 1 + digests[inverse.reshape(-1)]
    rows[np.asarray(missing, dtype=bool)] = OOV_INDEX
    return rows
