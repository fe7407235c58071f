"""Tests for dcnrank.data.encoding.vocabulary: OOV index 0, sorted indices, ints and strings, JSON."""

from __future__ import annotations

import json

import numpy as np
import pytest

from dcnrank.data import OOV_INDEX, Vocabulary


def test_int_vocabulary_sorted_with_oov_zero() -> None:
    vocabulary = Vocabulary.fit([30, 10, 20, 10])
    assert vocabulary.values.tolist() == [10, 20, 30]
    assert vocabulary.size == 4
    assert vocabulary.kind == "int"
    assert vocabulary.encode([10, 20, 30, 15, 99, -1, 0]).tolist() == [1, 2, 3, 0, 0, 0, 0]
    assert OOV_INDEX == 0


def test_str_vocabulary_sorted_with_oov_zero() -> None:
    vocabulary = Vocabulary.fit(np.array(["writer", "artist", "T8H1N", "artist", "00000"]))
    assert vocabulary.values.tolist() == ["00000", "T8H1N", "artist", "writer"]  # np.unique order
    assert vocabulary.size == 5
    assert vocabulary.kind == "str"
    encoded = vocabulary.encode(["artist", "zzz", "writer", "", "00000", "artis"])
    assert encoded.tolist() == [3, 0, 4, 0, 1, 0]
    assert encoded.dtype == np.int64


def test_encode_keeps_shape() -> None:
    vocabulary = Vocabulary.fit([1, 2, 3])
    assert vocabulary.encode(np.array([[3, 1], [7, 2]])).tolist() == [[3, 1], [0, 2]]


def test_fit_accepts_bool_bytes_and_object_arrays() -> None:
    assert Vocabulary.fit(np.array([True, False])).values.tolist() == [0, 1]
    assert Vocabulary.fit(np.array([b"b", b"a"])).values.tolist() == ["a", "b"]
    assert Vocabulary.fit(np.array(["b", "a"], dtype=object)).values.tolist() == ["a", "b"]
    assert Vocabulary.fit(np.array([2, 1], dtype=object)).values.tolist() == [1, 2]


def test_decode_inverts_encode() -> None:
    vocabulary = Vocabulary.fit(["b", "a", "c"])
    assert vocabulary.decode(vocabulary.encode(["c", "a"])).tolist() == ["c", "a"]
    with pytest.raises(ValueError, match=r"`indices` must be in 1..3. Received: 0"):
        vocabulary.decode([1, 0])
    with pytest.raises(ValueError, match=r"`indices` must be in 1..3. Received: 4"):
        vocabulary.decode([4])


def test_empty_vocabulary_maps_everything_to_oov() -> None:
    vocabulary = Vocabulary(np.array([], dtype=np.int64))
    assert vocabulary.size == 1
    assert vocabulary.encode([1, 2]).tolist() == [0, 0]


def test_values_are_read_only_and_copied() -> None:
    source = np.array([1, 2, 3])
    vocabulary = Vocabulary(source)
    source[0] = 100
    assert vocabulary.values.tolist() == [1, 2, 3]
    with pytest.raises(ValueError, match="read-only"):
        vocabulary.values[0] = 5


@pytest.mark.parametrize(
    "vocabulary",
    [
        Vocabulary.fit([5, 1, 3]),
        Vocabulary.fit(["M", "F", "Café", "T8H1N"]),
        Vocabulary(np.array([], dtype=np.int64)),
    ],
    ids=["int", "str", "empty"],
)
def test_json_round_trip(vocabulary: Vocabulary) -> None:
    text = vocabulary.to_json()
    restored = Vocabulary.from_json(text)
    assert restored == vocabulary
    assert restored.kind == vocabulary.kind
    assert restored.values.tolist() == vocabulary.values.tolist()
    assert json.loads(text)["values"] == vocabulary.values.tolist()


def test_to_dict_layout() -> None:
    assert Vocabulary.fit([2, 1]).to_dict() == {"kind": "int", "values": [1, 2]}
    assert Vocabulary.fit(["b", "a"]).to_dict() == {"kind": "str", "values": ["a", "b"]}


def test_equality_and_hash() -> None:
    assert Vocabulary.fit([1, 2]) == Vocabulary.fit([2, 1, 1])
    assert Vocabulary.fit([1, 2]) != Vocabulary.fit([1, 3])
    assert Vocabulary.fit(["1"]) != Vocabulary.fit([1])
    assert len({Vocabulary.fit([1, 2]), Vocabulary.fit([2, 1])}) == 1


def test_constructor_rejects_unsorted_values() -> None:
    with pytest.raises(ValueError, match=r"strictly increasing.*values\[0\]=3, values\[1\]=1"):
        Vocabulary(np.array([3, 1]))
    with pytest.raises(ValueError, match=r"strictly increasing.*values\[1\]='b', values\[2\]='b'"):
        Vocabulary(np.array(["a", "b", "b"]))


def test_constructor_rejects_2d_values() -> None:
    with pytest.raises(ValueError, match=r"`values` must be 1-D. Received: shape=\(1, 2\)"):
        Vocabulary(np.array([[1, 2]]))


@pytest.mark.parametrize(
    "values",
    [np.array([1.0, 2.0]), np.array([1, "a"], dtype=object), [None]],
    ids=["float", "mixed", "none"],
)
def test_fit_rejects_non_int_non_str(values: object) -> None:
    with pytest.raises(ValueError, match=r"`values` must hold integers or strings. Received: dtype="):
        Vocabulary.fit(values)


def test_fit_rejects_uint64_beyond_int64() -> None:
    with pytest.raises(ValueError, match="too large for int64"):
        Vocabulary.fit(np.array([2**63], dtype=np.uint64))


def test_encode_rejects_the_other_kind() -> None:
    with pytest.raises(ValueError, match=r"holds int values; `values` must too. Received: str values"):
        Vocabulary.fit([1, 2]).encode(["1"])
    with pytest.raises(ValueError, match=r"holds str values; `values` must too. Received: int values"):
        Vocabulary.fit(["1"]).encode([1])


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('{"kind": "int"}', r"exactly the keys 'kind' and 'values'"),
        ("[1, 2]", r"exactly the keys 'kind' and 'values'"),
        (
            '{"kind": "float", "values": [1.5]}',
            r"`kind` must be 'int' or 'str'. Received: kind='float'",
        ),
        ('{"kind": "int", "values": [1, "a"]}', r"`values` must be a list of int"),
        ('{"kind": "int", "values": [true]}', r"`values` must be a list of int"),
        ('{"kind": "str", "values": ["a", 1]}', r"`values` must be a list of str"),
        ('{"kind": "int", "values": [2, 1]}', r"strictly increasing"),
        ("not json", r"Expecting value"),
    ],
)
def test_from_json_rejects_bad_input(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Vocabulary.from_json(text)


def test_repr() -> None:
    assert repr(Vocabulary.fit(["a", "b"])) == "Vocabulary(str, size=3)"
