"""Shared Hypothesis settings and strategies for dcnrank's fuzz tests.

Every fuzz test asserts the one rule of untrusted input: a clear dcnrank error or a
correct result, never another exception, a hang, a partial file or unbounded memory.
The tests stay bounded so that `make test` stays fast:

- ``DCNRANK_FUZZ_EXAMPLES`` (default 200): examples per property test;
- ``DCNRANK_FUZZ_DEADLINE_MS`` (default 5000): the longest one example may take, far
  above what any should need (milliseconds), so a deadline failure means a hang;
- ``derandomize=True``: the same examples on every run, so CI is reproducible;
- ``database=None``, and Hypothesis' other caches in a folder of the temporary
  directory (unless ``HYPOTHESIS_STORAGE_DIRECTORY`` names one): nothing is written
  into the repository (no ``.hypothesis/``; `.gitignore` lists it all the same).

Use it as::

    from fuzz_support import FUZZ, nasty_text

    @FUZZ
    @given(nasty_text())
    def test_something(text): ...
"""

from __future__ import annotations

import copy
import json
import math
import os
import tempfile
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from datetime import timedelta
from functools import cache
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.configuration import set_hypothesis_home_dir


def _env_int(name: str, default: int) -> int:
    raw = os.environ.get(name, "")
    if raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        value = 0
    if value < 1:
        raise ValueError(f"${name} must be a positive int. Received: {name}={raw!r}")
    return value


FUZZ_EXAMPLES = _env_int("DCNRANK_FUZZ_EXAMPLES", 200)
FUZZ_DEADLINE_MS = _env_int("DCNRANK_FUZZ_DEADLINE_MS", 5000)

# Even with database=None, Hypothesis caches (the constants it finds in the code under
# test, Unicode tables) under ./.hypothesis; keep them out of the repository.
if not os.environ.get("HYPOTHESIS_STORAGE_DIRECTORY"):
    _user = os.getuid() if hasattr(os, "getuid") else "user"
    set_hypothesis_home_dir(os.path.join(tempfile.gettempdir(), f"dcnrank-hypothesis-{_user}"))

settings.register_profile(
    "dcnrank-fuzz",
    max_examples=FUZZ_EXAMPLES,
    deadline=timedelta(milliseconds=FUZZ_DEADLINE_MS),
    derandomize=True,
    database=None,
    print_blob=False,
    # function-scoped fixtures (tmp_path) are not reset between examples; the tests
    # that take one write a fresh file name per example
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
FUZZ = settings(settings.get_profile("dcnrank-fuzz"))

# Characters that break naive parsers, quoting and messages: quotes, backslashes,
# control characters (NUL, DEL, line breaks, tab), TOML's syntax, a BOM, non-ASCII
# letters, a wide emoji and Unicode's line separators.
NASTY_CHARACTERS = "\x00\x01\x07\x08\t\n\r\x1b\x7f\x85 \"'\\=.#[]{},:\ufeff\u2028\u2029é中😀"


@cache  # building a strategy is not free; each is built once
def nasty_text(min_size: int = 0, max_size: int = 12) -> st.SearchStrategy[str]:
    """Unicode strings (no lone surrogates) rich in `NASTY_CHARACTERS`."""
    alphabet = st.characters(exclude_categories=("Cs",)) | st.sampled_from(NASTY_CHARACTERS)
    return st.text(alphabet, min_size=min_size, max_size=max_size)


@cache
def column_names(max_size: int = 10) -> st.SearchStrategy[str]:
    """Names a table column may have: any non-blank Unicode text (quotes, dots, unicode...)."""
    return nasty_text(1, max_size).filter(lambda s: s.strip() != "")


# ints around every boundary a field may have, and far beyond 64 bits
EDGE_INTS = st.sampled_from(
    [0, 1, 2, -1, 2**31 - 1, 2**31, 2**53 + 1, 2**63 - 1, 2**63, -(2**63), -(2**63) - 1, 10**40]
)
EDGE_FLOATS = st.sampled_from([0.0, -0.0, 0.5, 1.0, 1e-300, 1e300, math.inf, -math.inf, math.nan])


@cache
def toml_scalars() -> st.SearchStrategy[Any]:
    """Scalars a TOML file can hold (ints of any size, floats with NaN and inf, strings, bools)."""
    return st.one_of(
        st.booleans(),
        st.integers(),
        EDGE_INTS,
        st.floats(),
        EDGE_FLOATS,
        nasty_text(),
        st.dates(),
        st.datetimes(),
    )


@cache
def toml_values(max_leaves: int = 6) -> st.SearchStrategy[Any]:
    """TOML values: scalars, arrays and tables of them, nested a few levels."""
    return st.recursive(
        toml_scalars(),
        lambda inner: st.lists(inner, max_size=4) | st.dictionaries(nasty_text(0, 8), inner, max_size=4),
        max_leaves=max_leaves,
    )


@cache
def any_values(max_leaves: int = 6) -> st.SearchStrategy[Any]:
    """What a Python or JSON caller may pass: TOML's values, and None and tuples besides."""
    return st.recursive(
        toml_scalars() | st.none(),
        lambda inner: (
            st.lists(inner, max_size=4) | st.tuples(inner, inner) | st.dictionaries(nasty_text(0, 8), inner, max_size=4)
        ),
        max_leaves=max_leaves,
    )


def in_toml(value: Any) -> bool:
    """Whether TOML reads `value` back exactly as `toml_value` writes it: no None (TOML
    has no null) and no tuple (it reads back as a list) anywhere."""
    if value is None or isinstance(value, tuple):
        return False
    if isinstance(value, Mapping):
        return all(isinstance(k, str) and in_toml(v) for k, v in value.items())
    if isinstance(value, list):
        return all(in_toml(v) for v in value)
    return True


def _toml_string(text: str) -> str:
    # A TOML basic string is a JSON string, except that TOML also wants DEL escaped.
    return json.dumps(text, ensure_ascii=False).replace("\x7f", "\\u007f")


def toml_value(value: Any) -> str:
    """`value` as TOML text (tables inline). A key whose value is None is left out (TOML
    has no null; dcnrank's optional fields default to None); see `in_toml`."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        return repr(value) if math.isfinite(value) else ("inf" if value > 0 else "-inf")
    if isinstance(value, str):
        return _toml_string(value)
    if isinstance(value, Mapping):
        pairs = (f"{_toml_string(k)} = {toml_value(v)}" for k, v in value.items() if v is not None)
        return "{" + ", ".join(pairs) + "}"
    if isinstance(value, list | tuple):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    return value.isoformat()  # a date or a datetime


def toml_text(document: Mapping[str, Any]) -> str:
    """A TOML document holding `document`'s keys, each on one line (tables inline)."""
    return "".join(f"{_toml_string(k)} = {toml_value(v)}\n" for k, v in document.items() if v is not None)


@st.composite
def damaged_bytes(draw: Callable[..., Any], original: bytes) -> bytes:
    """`original` truncated, with bytes flipped, inserted or deleted: what a torn write,
    a bad disk or a bad copy leaves."""
    data = bytearray(original)
    for _ in range(draw(st.integers(1, 4))):
        kind = draw(st.sampled_from(["truncate", "flip", "insert", "delete"]))
        at = draw(st.integers(0, len(data)))
        if kind == "truncate":
            del data[at:]
        elif kind == "flip" and at < len(data):
            data[at] ^= 1 << draw(st.integers(0, 7))
        elif kind == "insert":
            data[at:at] = draw(st.binary(min_size=1, max_size=8))
        elif kind == "delete":
            del data[at : at + draw(st.integers(1, 8))]
    return bytes(data)


def check_report(error: BaseException, *, max_lines: int = 22, max_line_chars: int = 600) -> str:
    """Assert that `error`'s message is a clear report: non-empty, a short list of short
    lines (the default fits a `ConfigError`'s header, 20 problems and a "more" line).

    Returns:
        The message, for further checks.
    """
    message = str(error)
    lines = message.split("\n")
    assert message.strip(), f"{type(error).__name__} with an empty message"
    assert len(lines) <= max_lines, f"{len(lines)} lines: {message[:500]!r}"
    longest = max(lines, key=len)
    assert len(longest) <= max_line_chars, f"a line of {len(longest)} characters: {longest[:300]!r}"
    return message


@cache
def json_scalars() -> st.SearchStrategy[Any]:
    """What a JSON parser may hand back as a scalar: null, bools, ints of any size, floats
    (NaN and inf too: Python's json reads them), and nasty strings."""
    return st.one_of(st.none(), st.booleans(), st.integers(), EDGE_INTS, st.floats(), EDGE_FLOATS, nasty_text())


@cache
def json_values(max_leaves: int = 6) -> st.SearchStrategy[Any]:
    """JSON documents: scalars, lists and objects of them, nested a few levels."""
    return st.recursive(
        json_scalars(),
        lambda inner: st.lists(inner, max_size=4) | st.dictionaries(nasty_text(0, 8), inner, max_size=4),
        max_leaves=max_leaves,
    )


def json_paths(document: Any, prefix: tuple[Any, ...] = (), seen: set[int] | None = None) -> list[tuple[Any, ...]]:
    """Every key and index path in a JSON `document`, containers before what they hold; a
    container held in several places (``[row] * 10_000``) is walked once, at its first path,
    so that the paths stay as few as the document's distinct values."""
    seen = set() if seen is None else seen
    children: Any = ()
    if isinstance(document, dict | list) and id(document) not in seen:
        seen.add(id(document))
        children = document.items() if isinstance(document, dict) else enumerate(document)
    paths = []
    for key, value in children:
        paths.append((*prefix, key))
        paths.extend(json_paths(value, (*prefix, key), seen))
    return paths


def strictly_equal(a: Any, b: Any) -> bool:
    """Whether two JSON values are equal with their types: unlike ``==``, ``1``, ``1.0`` and
    ``True`` differ (a parser that wants an int refuses the others)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return list(a) == list(b) and all(strictly_equal(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return len(a) == len(b) and all(strictly_equal(x, y) for x, y in zip(a, b, strict=True))
    return a == b


@st.composite
def mutated_json(draw: Callable[..., Any], document: Any, values: st.SearchStrategy[Any] | None = None) -> Any:
    """A JSON `document` with one to three changes anywhere in it (inside lists too): a
    value replaced by any JSON value (wrong types, NaN, huge ints, objects where scalars
    belong; `values` when given), a key or item deleted, a key or item added, or the
    whole document replaced by another JSON value."""
    strategy = values if values is not None else json_values(4)

    def value() -> Any:  # a copy: a sampled constant ([], {}) must never be changed in place
        return copy.deepcopy(draw(strategy))

    doc: Any = copy.deepcopy(document)
    for _ in range(draw(st.integers(1, 3))):
        paths = json_paths(doc)
        kind = draw(st.sampled_from(["replace", "replace", "replace", "delete", "add", "whole"]))
        if kind == "whole" or not paths:
            doc = value()
            continue
        path = draw(st.sampled_from(paths))
        parent: Any = doc
        for key in path[:-1]:
            parent = parent[key]
        if kind == "replace":
            parent[path[-1]] = value()
        elif kind == "delete":
            del parent[path[-1]]
        elif isinstance(parent, list):
            parent.insert(draw(st.integers(0, len(parent))), value())
        else:
            parent[draw(nasty_text(0, 12))] = value()
    return doc


def _status_kb(key: str) -> int | None:
    try:
        lines = Path("/proc/self/status").read_text().splitlines()
    except OSError:
        return None
    return next((int(line.split()[1]) for line in lines if line.startswith(key + ":")), None)


@contextmanager
def resident_growth() -> Iterator[list[int | None]]:
    """How much this process's peak resident memory rose above its resident memory at the
    start of the block, in bytes: ``[growth]`` once the block ends, ``[None]`` where Linux's
    ``/proc/self/clear_refs`` cannot reset the peak (it counts C and C++ allocations, which
    `tracemalloc` misses: torch's and safetensors'.)"""
    result: list[int | None] = [None]
    try:
        Path("/proc/self/clear_refs").write_text("5")  # peak := current
        start = _status_kb("VmRSS")
    except OSError:
        start = None
    try:
        yield result
    finally:
        peak = _status_kb("VmHWM") if start is not None else None
        result[0] = None if peak is None or start is None else (peak - start) * 1024
