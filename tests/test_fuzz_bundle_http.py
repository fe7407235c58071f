"""Fuzzing bundle loading and the HTTP schemas: a correct result or a clear dcnrank error.

Property tests (Hypothesis, bounded by `fuzz_support.FUZZ`):

- bundles: three small bundles are saved once: a stacked DCN of two categorical columns,
  a cross-only one of numeric, categorical, hashed and multi-hot columns, and that one
  with user and item roles and its catalogue (`catalog.json`, `catalog.safetensors`);
  each example copies one, damages its files (truncations, flipped, inserted and
  deleted bytes, a file deleted or turned into a folder, a stray file added, a JSON
  file replaced by other JSON or changed anywhere inside, the safetensors header
  changed), with the manifest's checksum re-recorded or not, and loads it with `load`.
  It either gives a bundle (predicting exactly as the
  original when nothing it reads changed) or raises a one-line `BundleError` naming
  the folder or file; a file changed behind the manifest's back is always refused;
  loading writes nothing and, whatever the header claims, allocates no more than the
  file holds.
- HTTP: `/rank` and `/predict` of a bundle with roles, with and without its catalogue,
  get valid bodies built from the spec's schema, mutations of them, and random bytes;
  the answer is a 200 of the documented shape, or a 4xx `{"error", "errors"}` of
  bounded length, never a 5xx.

Below them, one plain example per bug the fuzzing found.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
import shutil
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import torch
from fuzz_support import (
    EDGE_INTS,
    FUZZ,
    check_report,
    damaged_bytes,
    json_paths,
    json_values,
    mutated_json,
    nasty_text,
    resident_growth,
    strictly_equal,
)
from hypothesis import given
from hypothesis import strategies as st

from dcnrank.bundle import (
    BUNDLE_FILES,
    CATALOG_FILE,
    CATALOG_TENSORS_FILE,
    CONFIG_FILE,
    MANIFEST_FILE,
    METRICS_FILE,
    VOCAB_FILE,
    WEIGHTS_FILE,
    Bundle,
    BundleError,
    Catalog,
    load,
    save,
)
from dcnrank.data.encoding.table_encoder import TableEncoder
from dcnrank.data.spec.feature_spec import CategoricalColumn, FeatureSpec, MultiHotColumn, NumericColumn
from dcnrank.limits import MAX_STRING_CHARS
from dcnrank.models import DCNConfig
from dcnrank.models.table_inputs import build_table_dcn
from dcnrank.serve.limits import MAX_BODY_BYTES, MAX_ROWS

# ============================================================================ bundles

# "stacked": a stacked DCN of two categorical columns (what a MovieLens bundle was).
STACKED_CONFIG = DCNConfig(embedding_dim=2, num_cross_layers=2, deep_units=(3,))
STACKED_SPEC = FeatureSpec((CategoricalColumn("movie_id"), CategoricalColumn("user_zip_code")), label="rating",
                           task="regression")  # fmt: skip
STACKED_TRAINING_ROWS = {"movie_id": [10, 20, 30], "user_zip_code": ["a", "b", "a"], "rating": [4.0, 3.0, 5.0]}
STACKED_ROWS = {"movie_id": [10, 20, 99], "user_zip_code": ["a", "zz", "b"]}
TABLE_SPEC = FeatureSpec(
    (NumericColumn("x"), CategoricalColumn("c"), CategoricalColumn("h", hash_buckets=3), MultiHotColumn("tags")),
    label="y",
    task="binary",
)
TABLE_TRAINING_ROWS = {
    "x": [0.1, 0.5, 0.9, 0.3],
    "c": ["a", "b", "a", "b"],
    "h": ["p", "q", "r", "p"],
    "tags": ["u|v", "v", "", "u"],
    "y": [0, 1, 0, 1],
}
TABLE_ROWS = {"x": [0.2, None, 2.0], "c": ["a", "zz", "b"], "h": ["p", "new", "q"], "tags": ["u", "w|v", ""]}
# A table bundle with roles and a catalogue: user `c` (with `x`), item `h` (with `tags`).
CATALOG_SPEC = FeatureSpec(TABLE_SPEC.columns, label="y", task="binary", user="c", item="h", user_columns=("x",),
                           item_columns=("tags",))  # fmt: skip
JSON_FILES = (CONFIG_FILE, VOCAB_FILE, METRICS_FILE, MANIFEST_FILE)
CATALOG_NAMES = (*BUNDLE_FILES, CATALOG_FILE, CATALOG_TENSORS_FILE)
LOADERS: dict[str, Callable[[Path], Any]] = {"load": load}


@dataclass(frozen=True)
class Original:
    """A saved bundle: its files, the rows it scores and its scores of them."""

    kind: str  # "stacked", "table" or "catalog" (the table bundle with roles and a catalogue)
    folder: Path
    files: dict[str, bytes]
    rows: Mapping[str, list]
    scores: torch.Tensor

    def __repr__(self) -> str:  # short, for Hypothesis' report of a failing example
        return f"Original({self.kind!r})"

    @property
    def loader(self) -> str:
        return "load"

    @property
    def names(self) -> tuple[str, ...]:
        """Every file of the bundle."""
        return CATALOG_NAMES if self.kind == "catalog" else BUNDLE_FILES

    @property
    def data_names(self) -> tuple[str, ...]:
        """The files its manifest vouches for."""
        return tuple(name for name in self.names if name != MANIFEST_FILE)

    @property
    def json_names(self) -> tuple[str, ...]:
        return (*JSON_FILES, CATALOG_FILE) if self.kind == "catalog" else JSON_FILES

    def document(self, name: str) -> Any:
        return json.loads(self.files[name])


@pytest.fixture(scope="module")
def work(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One folder for the module; each example copies a bundle into its own numbered folder."""
    return tmp_path_factory.mktemp("fuzz-bundles")


@pytest.fixture(scope="module")
def originals(work: Path) -> dict[str, Original]:
    torch.manual_seed(0)
    encoder = TableEncoder.fit(STACKED_SPEC, STACKED_TRAINING_ROWS)
    stacked = save(
        build_table_dcn(STACKED_CONFIG, STACKED_SPEC, encoder.table_sizes),
        work / "originals" / "stacked",
        model_config=STACKED_CONFIG,
        encoder=encoder,
        metrics={"test": {"rmse": 0.9}},
    )
    encoder = TableEncoder.fit(TABLE_SPEC, TABLE_TRAINING_ROWS)
    config = DCNConfig(structure="cross_only", embedding_dim=2)
    table = save(
        build_table_dcn(config, TABLE_SPEC, encoder.table_sizes), work / "originals" / "table",
        model_config=config, encoder=encoder, train_config={"epochs": 1},
    )  # fmt: skip
    encoder = TableEncoder.fit(CATALOG_SPEC, TABLE_TRAINING_ROWS)
    with_catalog = save(
        build_table_dcn(config, CATALOG_SPEC, encoder.table_sizes), work / "originals" / "catalog",
        model_config=config, encoder=encoder, catalog=Catalog.build(CATALOG_SPEC, encoder, TABLE_TRAINING_ROWS),
    )  # fmt: skip
    return {
        "stacked": Original("stacked", stacked, _files(stacked), STACKED_ROWS, load(stacked).predict(STACKED_ROWS)),
        "table": Original("table", table, _files(table), TABLE_ROWS, load(table).predict(TABLE_ROWS)),
        "catalog": Original("catalog", with_catalog, _files(with_catalog, CATALOG_NAMES), TABLE_ROWS,
                            load(with_catalog).predict(TABLE_ROWS)),
    }  # fmt: skip


def _files(folder: Path, names: tuple[str, ...] = BUNDLE_FILES) -> dict[str, bytes]:
    return {name: (folder / name).read_bytes() for name in names}


_counter = iter(range(10**9))


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _json(data: bytes) -> Any:
    """`data` as JSON, as the loader parses it; `ValueError` (the class) when it is not."""
    try:
        return json.loads(data.decode("utf-8"))
    except (ValueError, RecursionError):
        return ValueError


def record(folder: Path, name: str, data: bytes) -> None:
    """Record `data` as `name`'s SHA-256 in `folder`'s manifest, as a hostile or careless
    editor who keeps the checksums right would; a manifest that is no longer one is left."""
    path = folder / MANIFEST_FILE
    manifest = _json(path.read_bytes()) if path.is_file() else None
    if isinstance(manifest, dict) and isinstance(manifest.get("sha256"), dict):
        manifest["sha256"][name] = sha256(data)
        write(path, json.dumps(manifest, ensure_ascii=False).encode("utf-8"))


def remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    elif path.exists() or path.is_symlink():
        path.unlink()


def write(path: Path, data: bytes) -> None:
    """Replace whatever `path` is by a new file (a new inode: ext4 flushes a file that is
    truncated and rewritten when it is closed, which costs milliseconds a write)."""
    remove(path)
    path.write_bytes(data)


def safetensors_parts(data: bytes) -> tuple[dict[str, Any], bytes]:
    """The header (JSON) and the tensor bytes of a safetensors file."""
    size = int.from_bytes(data[:8], "little")
    return json.loads(data[8 : 8 + size]), data[8 + size :]


def safetensors_bytes(header: Any, body: bytes) -> bytes:
    text = json.dumps(header).encode("utf-8")
    return len(text).to_bytes(8, "little") + text + body


class Damage(tuple):
    """One change to a bundle's files, applied in order to a copy of the bundle:

    - ``("write", name, bytes, rerecord)``: the file's new content, its checksum re-recorded or not;
    - ``("delete", name)``, ``("folder", name)``: the file deleted, or replaced by an empty folder;
    - ``("stray", name, bytes | None)``: an unknown file (or folder) added beside the bundle's.
    """

    def __repr__(self) -> str:  # short, for Hypothesis' report of a failing example
        return repr(tuple(f"{v[:60]!r}…({len(v)} bytes)" if isinstance(v, bytes) and len(v) > 60 else v for v in self))


def _is_stray_name(name: str) -> bool:
    return (
        "/" not in name
        and "\x00" not in name
        and name not in (".", "..")
        and len(name.encode("utf-8")) <= 200
        and name.lower() not in {n.lower() for n in CATALOG_NAMES}
    )


STRAY_NAMES = st.sampled_from(
    ["NOTES.md", "interactions.png", "interactions_layer2.png", ".DS_Store", "weights.safetensors.part",
     "config.json~", ".dcnrank-tmp-bundle", "__pycache__"]
) | nasty_text(1, 16).filter(_is_stray_name)  # fmt: skip
# Text that is JSON to the eye but that Python's parser refuses or reads oddly: nesting
# too deep for it, a number of over 4300 digits, NaN and inf, a BOM, repeated keys, nothing.
ODD_JSON = st.sampled_from(
    ["[" * 100_000 + "]" * 100_000, '{"a":' * 5000 + "0" + "}" * 5000, "[" * 50 + "]" * 50, "1" * 4301,
     "-" + "9" * 10_000, '{"a": NaN, "b": -Infinity}', "1e999", "\ufeff{}", '{"a": 1, "a": 2}', "", " ", "null",
     '"\\ud800"']
)  # fmt: skip
# JSON values that reach far into a parser: sizes, dims and counts at every boundary.
HOSTILE_VALUES = json_values(4) | EDGE_INTS | st.integers(-3, 12)


@st.composite
def header_mutation(draw: Callable[..., Any], header: dict[str, Any]) -> dict[str, Any]:
    """The safetensors header with a tensor's dtype, shape or offsets changed (to huge
    claims too), or changed anywhere as any JSON document."""
    names = [name for name in header if name != "__metadata__"]
    kind = draw(st.sampled_from(["dtype", "shape", "offsets", "claim", "any"]))
    if kind == "any":
        return draw(mutated_json(header, HOSTILE_VALUES))
    header = json.loads(json.dumps(header))
    entry = header[draw(st.sampled_from(names))]
    if kind == "dtype":
        entry["dtype"] = draw(st.sampled_from(["F16", "BF16", "F64", "I64", "I8", "U8", "BOOL", "F8_E4M3", "C64", "X"]))
    elif kind == "shape":
        entry["shape"] = draw(st.lists(EDGE_INTS | st.integers(0, 9), max_size=4))
    elif kind == "offsets":
        entry["data_offsets"] = draw(st.lists(EDGE_INTS | st.integers(0, 2000), min_size=2, max_size=2))
    else:  # a consistent claim of a huge tensor that the file does not hold
        shape = draw(st.lists(st.sampled_from([2**10, 2**16, 2**20, 2**31]), min_size=1, max_size=3))
        entry["shape"] = shape
        start = entry["data_offsets"][0]
        entry["data_offsets"] = [start, start + 4 * math.prod(shape)]
    return header


@st.composite
def one_damage(draw: Callable[..., Any], original: Original, hostile: bool = False) -> Damage:
    """One change to a bundle's files; `hostile`: a change that keeps the checksums right
    and reaches the parsers behind them (JSON, config, vocabularies, spec, safetensors header)."""
    if hostile:
        kinds = ["json", "mutate", "mutate", "header", "odd"]
    else:
        kinds = ["bytes", "bytes", "delete", "folder", "stray", "json", "mutate", "header", "odd"]
    kind = draw(st.sampled_from(kinds))
    rerecord = True if hostile else draw(st.booleans())
    if kind == "bytes":
        name = draw(st.sampled_from(original.names))
        return Damage(("write", name, draw(damaged_bytes(original.files[name])), rerecord))
    if kind in ("delete", "folder"):
        return Damage((kind, draw(st.sampled_from(original.names))))
    if kind == "stray":
        return Damage(("stray", draw(STRAY_NAMES), draw(st.none() | st.binary(max_size=16))))
    if kind == "header":
        header, body = safetensors_parts(original.files[WEIGHTS_FILE])
        return Damage(("write", WEIGHTS_FILE, safetensors_bytes(draw(header_mutation(header)), body), rerecord))
    json_data = tuple(name for name in original.json_names if name != MANIFEST_FILE)
    name = draw(st.sampled_from(original.json_names if not hostile or kind == "mutate" else json_data))
    if kind == "odd":
        return Damage(("write", name, draw(ODD_JSON).encode("utf-8"), rerecord))
    document = draw(json_values(6) if kind == "json" else mutated_json(original.document(name), HOSTILE_VALUES))
    text = json.dumps(document, ensure_ascii=draw(st.booleans()), indent=draw(st.sampled_from([None, 2])))
    return Damage(("write", name, text.encode("utf-8"), rerecord))


def apply(folder: Path, damage: Damage) -> None:
    kind, name = damage[0], damage[1]
    path = folder / name
    if kind == "write":
        write(path, damage[2])
        if damage[3] and name != MANIFEST_FILE:
            record(folder, name, damage[2])
    elif kind == "delete":
        remove(path)
    elif kind == "folder":
        remove(path)
        path.mkdir()
    elif not path.exists():  # a stray file or folder
        if damage[2] is None:
            path.mkdir()
        else:
            path.write_bytes(damage[2])


def reads_as_original(folder: Path, original: Original) -> bool:
    """Whether the loader reads what it read from the original: every bundle file there,
    with the original's bytes or (a JSON file with its checksum re-recorded) the
    original's JSON, types and all; the manifest's sums aside."""
    if not all((folder / name).is_file() for name in original.names):
        return False
    files = _files(folder, original.names)
    manifest = _json(files[MANIFEST_FILE])
    before = original.document(MANIFEST_FILE)
    if not isinstance(manifest, dict) or not isinstance(manifest.get("sha256"), dict):
        return False
    if list(manifest["sha256"]) != list(before["sha256"]):
        return False
    if not strictly_equal({**manifest, "sha256": None}, {**before, "sha256": None}):
        return False
    for name in original.data_names:
        if manifest["sha256"].get(name) != sha256(files[name]):
            return False
        same = files[name] == original.files[name]
        as_before = name in original.json_names and strictly_equal(_json(files[name]), original.document(name))
        if not same and not as_before:
            return False
    return True


def checksums_hold(folder: Path, original: Original) -> bool:
    """Whether every data file is there and has the SHA-256 the manifest records."""
    manifest = _json((folder / MANIFEST_FILE).read_bytes()) if (folder / MANIFEST_FILE).is_file() else None
    if not isinstance(manifest, dict) or not isinstance(manifest.get("sha256"), dict):
        return False
    return all(
        (folder / name).is_file() and manifest["sha256"].get(name) == sha256((folder / name).read_bytes())
        for name in original.data_names
    )


def snapshot(folder: Path) -> dict[str, bytes | None]:
    """Every path under `folder` with its bytes (None for a folder)."""
    return {str(p.relative_to(folder)): None if p.is_dir() else p.read_bytes() for p in sorted(folder.rglob("*"))}


def check_bundle_error(error: BundleError, folder: Path) -> None:
    """A `BundleError` is one line naming the folder (or a file in it), of bounded length."""
    message = check_report(error, max_lines=1, max_line_chars=1000)
    assert str(folder) in message, message


def load_outcome(loader: str, folder: Path) -> Any:
    """What `loader` makes of `folder`: a bundle, or the `BundleError` it raised (checked);
    any other exception fails the test."""
    try:
        return LOADERS[loader](folder)
    except BundleError as error:
        check_bundle_error(error, folder)
        return error


def check_damaged_bundle(work: Path, original: Original, damages: list[Damage]) -> None:
    case = work / str(next(_counter))
    folder = case / "bundle"
    shutil.copytree(original.folder, folder)
    for damage in damages:
        apply(folder, damage)
    unchanged = reads_as_original(folder, original)
    intact = checksums_hold(folder, original)
    before = snapshot(case)
    outcomes = {loader: load_outcome(loader, folder) for loader in LOADERS}
    assert snapshot(case) == before, "loading wrote into or beside the bundle folder"
    for loader, result in outcomes.items():
        if unchanged:
            assert not isinstance(result, BundleError), f"{loader} refused an unchanged bundle: {result}"
            torch.testing.assert_close(result.predict(original.rows), original.scores, rtol=0, atol=0)
        if not intact:
            assert isinstance(result, BundleError), f"{loader} loaded a bundle whose checksums do not hold"
        if isinstance(result, Bundle):
            assert result.path == folder
            try:  # a hostile bundle with good checksums may hold other (but consistent) vocabularies
                scores = result.predict(original.rows)
            except ValueError:
                continue
            assert scores.shape == (3,) and scores.dtype == torch.float32
    shutil.rmtree(case)


KINDS = st.sampled_from(["stacked", "table", "catalog"])


@FUZZ
@given(data=st.data(), kind=KINDS)
def test_a_damaged_bundle_loads_as_the_original_or_raises_a_one_line_bundle_error(work, originals, data, kind):
    original = originals[kind]
    damages = data.draw(st.lists(one_damage(original), min_size=1, max_size=3))
    check_damaged_bundle(work, original, damages)


@FUZZ
@given(data=st.data(), kind=KINDS)
def test_a_hostile_bundle_with_correct_checksums_loads_or_raises_a_one_line_bundle_error(work, originals, data, kind):
    original = originals[kind]
    damages = data.draw(st.lists(one_damage(original, hostile=True), min_size=1, max_size=2))
    check_damaged_bundle(work, original, damages)


@FUZZ
@given(data=st.data(), kind=KINDS)
def test_a_safetensors_header_never_makes_loading_allocate_what_the_file_does_not_hold(work, originals, data, kind):
    original = originals[kind]
    header, body = safetensors_parts(original.files[WEIGHTS_FILE])
    weights = safetensors_bytes(data.draw(header_mutation(header)), body)
    case = work / str(next(_counter))
    folder = case / "bundle"
    shutil.copytree(original.folder, folder)
    apply(folder, Damage(("write", WEIGHTS_FILE, weights, True)))
    with resident_growth() as growth:
        result = load_outcome(original.loader, folder)
    # the bundle is a few kilobytes; the claims run from 4 KB to 2**95 bytes, most far past 64 MB
    assert growth[0] is None or growth[0] < 64 * 1024**2, f"loading took {growth[0] / 1024**2:.0f} MB"
    assert isinstance(result, BundleError | Bundle)
    shutil.rmtree(case)


# Every value a field may be swapped for in the sweep below: wrong types, the int
# boundaries (64 bits and far beyond), NaN and inf, empty and nested containers.
SWEEP_VALUES = [None, True, -1, 0, 2**31, 2**63, 10**40, 10**400, 0.5, math.inf, math.nan, "x", [], [2**63], {},
                {"": 0}]  # fmt: skip


def sweep_documents(original: Original) -> list[tuple[str, Any, Callable[[Any], bytes]]]:
    """(file, its JSON document, document -> the file's bytes) for every JSON a loader parses."""
    header, body = safetensors_parts(original.files[WEIGHTS_FILE])
    first = next(name for name in header if name != "__metadata__")  # the others parse alike

    def weights(entries: dict[str, Any]) -> bytes:
        return safetensors_bytes({**header, **entries}, body)

    def as_json(document: Any) -> bytes:
        return json.dumps(document).encode("utf-8")

    documents = [
        *((name, original.document(name), as_json) for name in original.json_names),
        (WEIGHTS_FILE, {"__metadata__": header["__metadata__"], first: header[first]}, weights),
    ]
    if original.kind == "catalog":  # the catalogue's tensors: each entry of their header
        pairs_header, pairs_body = safetensors_parts(original.files[CATALOG_TENSORS_FILE])

        def pairs(entries: dict[str, Any]) -> bytes:
            return safetensors_bytes({**pairs_header, **entries}, pairs_body)

        documents.append((CATALOG_TENSORS_FILE, {k: v for k, v in pairs_header.items() if k != "__metadata__"}, pairs))
    return documents


@pytest.mark.parametrize("kind", ["stacked", "table", "catalog"])
def test_every_field_of_a_bundle_swapped_for_any_value_behind_good_checksums(work, originals, kind):
    """Exhaustive where the fuzzing is random: each field of each parsed file (config,
    vocabularies, metrics, manifest, safetensors header), swapped for each of
    `SWEEP_VALUES`, with the checksums re-recorded: a bundle or a one-line BundleError."""
    original = originals[kind]
    folder = work / str(next(_counter)) / "bundle"
    shutil.copytree(original.folder, folder)
    failures = []
    for name, document, to_bytes in sweep_documents(original):
        for path in json_paths(document):
            for value in SWEEP_VALUES:
                changed = json.loads(json.dumps(document))
                parent = changed
                for key in path[:-1]:
                    parent = parent[key]
                parent[path[-1]] = value
                write(folder / MANIFEST_FILE, original.files[MANIFEST_FILE])
                apply(folder, Damage(("write", name, to_bytes(changed), True)))
                try:
                    load_outcome(original.loader, folder)
                except Exception as error:  # noqa: BLE001 - collected, to report every failure at once
                    failures.append(f"{name} {path}={value!r:.30}: {type(error).__name__}: {str(error)[:150]!r}")
        apply(folder, Damage(("write", name, original.files[name], False)))
    assert not failures, f"{len(failures)} failures:\n" + "\n".join(failures[:60])


# ============================================================================ HTTP

# A bundle with roles: user `user_id` (with the four user columns), item `movie_id` (with
# `release_year` and the multi-hot `genres`), context `device`.
HTTP_SPEC = FeatureSpec(
    (CategoricalColumn("movie_id"), CategoricalColumn("user_id"), CategoricalColumn("user_gender"),
     CategoricalColumn("bucketized_user_age"), CategoricalColumn("user_zip_code"),
     CategoricalColumn("user_occupation_text"), CategoricalColumn("release_year"), MultiHotColumn("genres"),
     CategoricalColumn("device")),
    label="user_rating", task="regression", user="user_id", item="movie_id",
    user_columns=("user_gender", "bucketized_user_age", "user_zip_code", "user_occupation_text"),
    item_columns=("release_year", "genres"),
)  # fmt: skip
HTTP_TRAINING_ROWS = {
    "movie_id": [1, 2, 3, 1], "user_id": [1, 1, 2, 2], "user_gender": [1, 1, 0, 0],
    "bucketized_user_age": [25, 25, 18, 18],
    "user_zip_code": ["94043", "94043", "T8H1N", "00001"], "user_occupation_text": ["engineer", "engineer", "student",
    "student"], "release_year": [1990, 1995, 1995, 1990], "genres": ["a|b", "b", "", "a|b"],
    "device": ["web", "phone", "web", "phone"], "user_rating": [4, 5, 3, 2],
}  # fmt: skip
COLUMNS = HTTP_SPEC.input_names
STR_COLUMNS = ("user_zip_code", "user_occupation_text", "device")
USER_SIDE = HTTP_SPEC.user_columns
# The longest error body any request may get back: a first problem and a short list.
MAX_ERROR_BYTES = 16 * 1024
MAX_ERROR_CHARS = 1000


@pytest.fixture(scope="module")
def clients() -> dict[str, Any]:
    """The service around one tiny bundle, without its catalogue and with its 3 movies."""
    from fastapi.testclient import TestClient

    from dcnrank.serve import create_app

    encoder = TableEncoder.fit(HTTP_SPEC, HTTP_TRAINING_ROWS)
    config = DCNConfig(embedding_dim=2, deep_units=(4,))
    torch.manual_seed(0)
    model = build_table_dcn(config, HTTP_SPEC, encoder.table_sizes)
    catalog = Catalog.build(HTTP_SPEC, encoder, HTTP_TRAINING_ROWS)
    return {
        "bare": TestClient(create_app(Bundle(model, config, encoder))),
        "catalog": TestClient(create_app(Bundle(model, config, encoder, catalog=catalog))),
    }


@pytest.fixture(scope="module")
def schemas(clients) -> Any:
    """The bundle's request and response models (one spec for both clients)."""
    from dcnrank.serve.schemas import service_schemas

    encoder = TableEncoder.fit(HTTP_SPEC, HTTP_TRAINING_ROWS)
    config = DCNConfig(structure="cross_only", embedding_dim=2)
    return service_schemas(Bundle(build_table_dcn(config, HTTP_SPEC, encoder.table_sizes), config, encoder))


CLIENTS = st.sampled_from(["bare", "catalog"])
INT64 = st.integers(-(2**63), 2**63 - 1)
IDS = st.integers(1, 4) | st.sampled_from([2**31, 2**63 - 1])
# Strings of every kind, and just under, at and over the length limit.
LENGTHS = st.sampled_from([MAX_STRING_CHARS - 1, MAX_STRING_CHARS, MAX_STRING_CHARS + 1, 3 * MAX_STRING_CHARS])
LONG_STRINGS = LENGTHS.map(lambda n: "9" * n) | LENGTHS.map(lambda n: "é" * (n - 1) + "😀")
STRINGS = st.sampled_from(["00001", "94043", "engineer", "student", "", "NaN", "inf"]) | nasty_text() | LONG_STRINGS
VALID_STRINGS = STRINGS.filter(lambda s: len(s) <= MAX_STRING_CHARS)


class Long(list):
    """A list of thousands of items that Hypothesis reports in a line: shrinking or
    explaining a failure would otherwise print (and hold) megabytes per example."""

    def __repr__(self) -> str:
        return f"Long([{self[0]!r}, ...], {len(self)} items)" if self else "Long([])"


def _rare(common: st.SearchStrategy[Any], rare: st.SearchStrategy[Any], one_in: int = 20) -> st.SearchStrategy[Any]:
    """`rare` once in `one_in` draws, else `common` (rare ones cost a 10,000-row request)."""
    return st.integers(1, one_in).flatmap(lambda k: rare if k == 1 else common)


def _value_of(name: str) -> st.SearchStrategy[Any]:
    if name == "genres":  # a list of items (a row of lists only: mixing lists and strings is a known bug)
        return st.lists(VALID_STRINGS, max_size=4)
    return VALID_STRINGS if name in STR_COLUMNS else (st.integers(0, 3) | st.sampled_from([18, 25, 1995]) | INT64)


VALID_USER = st.fixed_dictionaries({}, optional={name: _value_of(name) for name in USER_SIDE})
VALID_RANK = st.fixed_dictionaries(
    {},
    optional={
        "user_id": IDS,
        "user": VALID_USER,
        "context": st.fixed_dictionaries({}, optional={"device": VALID_STRINGS}),
        "candidates": _rare(
            st.lists(IDS, min_size=1, max_size=8, unique=True),
            st.sampled_from([MAX_ROWS - 1, MAX_ROWS]).map(lambda n: Long(range(1, n + 1))),
        ),
        "top": st.integers(1, 5) | st.sampled_from([2**31, 2**63, 10**40]),
    },
)
VALID_ROW = st.fixed_dictionaries({}, optional={name: _value_of(name) for name in COLUMNS})
ROW = {"movie_id": 1, "user_id": 2, "user_gender": 0, "bucketized_user_age": 18, "user_zip_code": "T8H1N",
       "user_occupation_text": "student", "release_year": 1995, "genres": ["a"], "device": "web"}  # fmt: skip
# As many rows as a request may hold, each short: 10,000 long ones would pass the body cap.
VALID_PREDICT = st.fixed_dictionaries(
    {"rows": _rare(st.lists(VALID_ROW, min_size=1, max_size=5), st.builds(lambda: Long([dict(ROW)] * MAX_ROWS)))}
)
DEEP = "@@deep@@"  # a placeholder for JSON nested deeper than a Python value can be written
# What a field may be swapped for: any JSON, the int and string edges, NaN and inf (as
# numbers and as strings), nesting 1 to 100,000 deep, empty and over-long lists.
HTTP_VALUES = (
    json_values(4)
    | EDGE_INTS
    | STRINGS
    | st.sampled_from([math.nan, math.inf, -math.inf, "NaN", "Infinity", "-inf", [], {}, [[]], True, None, 1.0])
    | st.sampled_from([1, 64, 10_000, 100_000]).map(lambda depth: f"{DEEP}{depth}")
    | _rare(st.just([1]), st.builds(lambda: Long(range(1, MAX_ROWS + 2))), 10)
)


def body_bytes(document: Any) -> bytes:
    """`document` as the JSON a client sends (NaN and inf as Python writes them), with each
    deep-nesting placeholder written out as that many nested lists; once the body is past
    the service's cap (a 413 whatever follows), the rest as ``[]``."""
    text = json.dumps(document, ensure_ascii=False)
    budget = [MAX_BODY_BYTES]

    def nested(match: re.Match[str]) -> str:
        depth = int(match.group(1)) if budget[0] > 0 else 1
        budget[0] -= 2 * depth
        return "[" * depth + "]" * depth

    return re.sub(f'"{DEEP}([0-9]+)"', nested, text).encode("utf-8")


def check_error(response: Any) -> dict[str, Any]:
    """A 4xx of the documented shape, the first problem repeated as one bounded line."""
    assert 400 <= response.status_code < 500, (response.status_code, response.content[:300])
    assert len(response.content) <= MAX_ERROR_BYTES, f"an error of {len(response.content)} bytes"
    answer = response.json()
    assert set(answer) == {"error", "errors"}, answer
    problems = answer["errors"]
    assert isinstance(problems, list) and problems, answer
    for problem in problems:
        assert set(problem) == {"field", "message"}, problem
        assert isinstance(problem["field"], str) and isinstance(problem["message"], str), problem
        assert len(problem["field"]) + len(problem["message"]) <= MAX_ERROR_CHARS, problem
    assert answer["error"] == f"{problems[0]['field']}: {problems[0]['message']}"
    assert "\n" not in answer["error"], answer["error"]
    return answer


def check_rank(response: Any, body: Any, schemas: Any) -> None:
    if response.status_code != 200:
        check_error(response)
        return
    answer = schemas.rank_response.model_validate(response.json())
    scores = [item.score for item in answer.items]
    assert [item.rank for item in answer.items] == list(range(1, len(answer.items) + 1))
    assert all(math.isfinite(score) for score in scores) and scores == sorted(scores, reverse=True)
    top = body.get("top") or 10
    assert len(answer.items) == min(top, answer.candidates)
    if isinstance(body.get("candidates"), list):
        assert answer.candidates == len(body["candidates"])
        assert {item.item.model_dump()["movie_id"] for item in answer.items} <= set(body["candidates"])


def check_predict(response: Any, body: Any, schemas: Any) -> None:
    if response.status_code != 200:
        check_error(response)
        return
    answer = schemas.predict_response.model_validate(response.json())
    assert len(answer.scores) == len(body["rows"]) and all(math.isfinite(s) for s in answer.scores)


def post(client: Any, path: str, content: bytes, content_type: str = "application/json") -> Any:
    response = client.post(path, content=content, headers={"content-type": content_type})
    assert response.status_code < 500, (response.status_code, response.content[:500])
    return response


def servable(body: Mapping[str, Any], catalog: bool) -> bool:
    """Whether the ranking core can serve a schema-valid `/rank` body: it needs the catalogue
    (any user, known or not, described or not, and any distinct candidates are fine)."""
    return catalog


@FUZZ
@given(client=CLIENTS, body=VALID_RANK)
def test_a_valid_rank_request_is_served_or_refused_as_unservable(clients, schemas, client, body):
    response = post(clients[client], "/rank", body_bytes(body))
    check_rank(response, body, schemas)
    if servable(body, catalog=client == "catalog"):
        assert response.status_code == 200, response.json()
    else:
        assert response.status_code == 422, response.json()


@FUZZ
@given(client=CLIENTS, body=VALID_PREDICT)
def test_a_valid_predict_request_is_served(clients, schemas, client, body):
    response = post(clients[client], "/predict", body_bytes(body))
    assert response.status_code == 200, response.json()
    check_predict(response, body, schemas)


@FUZZ
@given(client=CLIENTS, data=st.data())
def test_a_mutated_request_is_served_or_refused_with_a_short_4xx(clients, schemas, client, data):
    path = data.draw(st.sampled_from(["/rank", "/predict"]))
    valid = data.draw(VALID_RANK if path == "/rank" else VALID_PREDICT)
    body = data.draw(mutated_json(valid, HTTP_VALUES))
    response = post(clients[client], path, body_bytes(body))
    if response.status_code == 200:
        (check_rank if path == "/rank" else check_predict)(response, body, schemas)
    else:
        check_error(response)


@FUZZ
@given(
    client=CLIENTS,
    path=st.sampled_from(["/rank", "/predict"]),
    content=st.binary(max_size=64)
    | nasty_text(0, 64).map(lambda s: s.encode("utf-8"))
    | st.sampled_from([b'{"user_id": 1, "candidates": [1, 2]}', b'{"rows": [{"movie_id": 1}]}']).flatmap(damaged_bytes),
    content_type=st.sampled_from(["application/json", "application/json; charset=latin-1", "text/plain", ""]),
)
def test_any_bytes_as_a_body_are_served_or_refused_with_a_short_4xx(clients, client, path, content, content_type):
    response = post(clients[client], path, content, content_type)
    if response.status_code != 200:
        check_error(response)


# ============================================================================ regressions


def hostile_copy(original: Original, folder: Path, name: str, change: Callable[[Any], Any] | bytes) -> Path:
    """A copy of `original` in `folder` with file `name` changed (bytes, or its JSON by
    `change(document)`, in place or returned) and its checksum re-recorded."""
    shutil.copytree(original.folder, folder)
    if isinstance(change, bytes):
        data = change
    else:
        document = original.document(name)
        document = change(document) or document
        data = json.dumps(document).encode("utf-8")
    apply(folder, Damage(("write", name, data, True)))
    return folder


def test_a_config_claiming_billions_of_cross_layers_is_refused_at_once(originals, tmp_path):
    # Before: building its skeleton (even on the meta device) ran for hours and gigabytes.
    for kind in ("stacked", "table"):
        folder = hostile_copy(originals[kind], tmp_path / kind, CONFIG_FILE,
                              lambda c: c["model"].update(num_cross_layers=2**31))  # fmt: skip
        with pytest.raises(BundleError, match=r"weights\.safetensors: .*num_cross_layers=2147483648 needs at least one "
                           r"tensor per layer, the file holds \d+$"):  # fmt: skip
            LOADERS[originals[kind].loader](folder)


@pytest.mark.parametrize(
    ("kind", "change", "reason"),
    [
        ("stacked", lambda c: c["model"].update(embedding_dim=10**40), "Overflow when unpacking long long"),
        ("stacked", lambda c: c["model"].update(embedding_dim=2**63 - 1), "Storage size calculation overflowed"),
        ("stacked", lambda c: c["model"].update(dropout="x"), "'<=' not supported"),
        ("stacked", lambda c: c["model"].update(deep_units=[0]), r"`units` must be positive ints"),
        ("table", lambda c: c["model"].update(structure="stacked", deep_units=[0]), r"`units` must be positive ints"),
        ("table", lambda c: c["spec"]["columns"]["c"].update(embedding_dim=2**31), "Storage size calculation"),
    ],
)
def test_a_model_that_cannot_be_built_is_a_one_line_bundle_error(originals, tmp_path, kind, change, reason):
    # Before: torch's or a layer's TypeError, ValueError or RuntimeError escaped, torch's
    # over several lines ("Exception raised from THPUtils_unpackLong at ...").
    folder = hostile_copy(originals[kind], tmp_path / "b", CONFIG_FILE, change)
    with pytest.raises(BundleError, match=rf"config\.json: cannot build the model it describes: .*{reason}") as info:
        LOADERS[originals[kind].loader](folder)
    check_bundle_error(info.value, folder)


def test_integers_beyond_64_bits_in_vocabularies_and_statistics_are_bundle_errors(originals, tmp_path):
    # Before: numpy's and float()'s OverflowError escaped.
    folder = hostile_copy(originals["stacked"], tmp_path / "stacked", VOCAB_FILE,
                          lambda v: v["movie_id"].update(values=[10, 20, 2**63]))  # fmt: skip
    with pytest.raises(BundleError, match=r"config\.json and vocab\.json: Python int too large to convert"):
        load(folder)
    folder = hostile_copy(originals["table"], tmp_path / "table", CONFIG_FILE,
                          lambda c: c["numeric"]["x"].update(mean=10**400))  # fmt: skip
    with pytest.raises(BundleError, match=r"config\.json and vocab\.json: int too large to convert to float"):
        load(folder)


@pytest.mark.parametrize(
    ("text", "reason"),
    [("[" * 100_000 + "]" * 100_000, "nested too deeply"), ("1" * 5000, r"Exceeds the limit \(4300 digits\)")],
)
def test_json_that_python_cannot_parse_is_a_bundle_error(originals, tmp_path, text, reason):
    # Before: json.loads' RecursionError and ValueError escaped parse_json.
    for name in (CONFIG_FILE, MANIFEST_FILE):
        folder = hostile_copy(originals["stacked"], tmp_path / name, name, text.encode())
        with pytest.raises(BundleError, match=rf"{name}: corrupt JSON that cannot be parsed \({reason}"):
            load(folder)


def test_a_data_file_that_cannot_be_read_is_a_bundle_error(originals, tmp_path, monkeypatch):
    # Before: PermissionError escaped (only the manifest's read was guarded).
    folder = tmp_path / "b"
    shutil.copytree(originals["stacked"].folder, folder)
    read_bytes = Path.read_bytes

    def refuse(path: Path) -> bytes:
        if path.name == VOCAB_FILE:
            raise PermissionError(13, "Permission denied", str(path))
        return read_bytes(path)

    monkeypatch.setattr(Path, "read_bytes", refuse)
    with pytest.raises(BundleError, match=r"vocab\.json: cannot read it \(Permission denied\)$"):
        load(folder)


def test_thousands_of_tensors_make_a_short_message(originals, tmp_path):
    # Before: every unexpected name was listed: a megabyte line for a foreign weights file.
    header, body = safetensors_parts(originals["stacked"].files[WEIGHTS_FILE])
    end = max(entry["data_offsets"][1] for name, entry in header.items() if name != "__metadata__")
    extra = {f"stray.{i}\n": {"dtype": "F32", "shape": [1], "data_offsets": [end + 4 * i, end + 4 * i + 4]}
             for i in range(5000)}  # fmt: skip
    folder = hostile_copy(originals["stacked"], tmp_path / "b", WEIGHTS_FILE,
                          safetensors_bytes({**header, **extra}, body + b"\0" * 4 * 5000))  # fmt: skip
    with pytest.raises(BundleError, match=r"unexpected tensors: 'stray\.\d+\\n', .* and 4992 more$") as info:
        load(folder)
    check_bundle_error(info.value, folder)


def test_a_hostile_version_in_the_manifest_is_echoed_on_one_short_line(originals, tmp_path):
    # Before: echoed as it was: a line break split the message, a megabyte made it a megabyte.
    folder = hostile_copy(originals["stacked"], tmp_path / "b", MANIFEST_FILE,
                          lambda m: m.update(format_version=4, dcnrank_version="9.0\n" + "x" * 10**6))  # fmt: skip
    newer = r"written by dcnrank '9\.0\\nxxx.*\): this dcnrank reads version 3; upgrade dcnrank$"
    with pytest.raises(BundleError, match=newer) as info:
        load(folder)
    check_bundle_error(info.value, folder)


def test_a_header_claiming_a_huge_tensor_is_refused_without_allocating_it(originals, tmp_path):
    header, body = safetensors_parts(originals["stacked"].files[WEIGHTS_FILE])
    entry = header[next(name for name in header if name != "__metadata__")]
    entry["shape"] = [2**20, 2**20]  # 4 TiB of float32
    entry["data_offsets"] = [entry["data_offsets"][0], entry["data_offsets"][0] + 4 * 2**40]
    folder = hostile_copy(originals["stacked"], tmp_path / "b", WEIGHTS_FILE, safetensors_bytes(header, body))
    with resident_growth() as growth, pytest.raises(BundleError, match=r"weights\.safetensors: truncated or corrupt"):
        load(folder)
    assert growth[0] is None or growth[0] < 64 * 1024**2, f"loading took {growth[0] / 1024**2:.0f} MB"
    too_long = (2**63).to_bytes(8, "little") + originals["stacked"].files[WEIGHTS_FILE][8:]  # the header's length
    with pytest.raises(BundleError, match=r"weights\.safetensors: truncated or corrupt"):
        load(hostile_copy(originals["stacked"], tmp_path / "c", WEIGHTS_FILE, too_long))


def test_ten_thousand_bad_rows_make_a_short_error(clients):
    # Before: one error per row: a 1.2 MB answer listing 10,000 problems.
    rows = [{**ROW, "user_zip_code": 0.5}] * MAX_ROWS
    response = post(clients["bare"], "/predict", json.dumps({"rows": rows}).encode())
    answer = check_error(response)
    assert len(answer["errors"]) == 21
    assert answer["errors"][-1] == {"field": "body", "message": f"... and {MAX_ROWS - 20} more problems"}


@pytest.mark.parametrize("path", ["/rank", "/predict"])
def test_a_key_with_a_line_break_is_quoted_in_the_field(clients, path):
    # Before: the key was echoed as it was, and the error's one line became two.
    body = {"user": {}, "\n": None} if path == "/rank" else {"rows": [{**ROW, "a\nb": 1}]}
    answer = check_error(post(clients["bare"], path, json.dumps(body).encode()))
    assert answer["errors"][0]["field"] == ("'\\n'" if path == "/rank" else "rows[0].'a\\nb'")


def test_an_unknown_feature_name_within_the_string_limit_is_echoed_cut_short(clients):
    # Before: /predict echoed a 4,096-character feature name whole (the ranker's message).
    key = "k" * MAX_STRING_CHARS
    answer = check_error(post(clients["bare"], "/predict", json.dumps({"rows": [{**ROW, key: 1}]}).encode()))
    assert answer["errors"][0]["field"] == "rows[0]." + "k" * 100 + "…"
    assert answer["errors"][0]["message"] == "Extra inputs are not permitted. Received: 1"


def test_a_safetensors_error_naming_a_tensor_with_a_line_break_stays_one_line(originals, tmp_path):
    # Before: safetensors' message echoed the name as it was, line break and all.
    header, body = safetensors_parts(originals["stacked"].files[WEIGHTS_FILE])
    end = max(entry["data_offsets"][1] for name, entry in header.items() if name != "__metadata__")
    for name in ("bad\nname", "bad\nname2"):  # the same bytes for both: an invalid offset
        header[name] = {"dtype": "F32", "shape": [1], "data_offsets": [end, end + 4]}
    weights = safetensors_bytes(header, body + b"\0" * 4)
    folder = hostile_copy(originals["stacked"], tmp_path / "b", WEIGHTS_FILE, weights)
    with pytest.raises(BundleError, match=r"truncated or corrupt safetensors file \(.*bad\\nname") as info:
        load(folder)
    check_bundle_error(info.value, folder)
