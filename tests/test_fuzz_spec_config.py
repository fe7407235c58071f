"""Fuzzing the spec and config parsers: a correct result or a clear `ConfigError`, nothing else.

Property tests (Hypothesis, bounded by `fuzz_support.FUZZ`) feed `FeatureSpec.from_dict`,
`load_feature_spec`, `TrainRunConfig.from_dict`, `load_config`, `parse_override` and
`read_toml` valid inputs built from the real schema (which must round-trip) and
mutations of them, random bytes and damaged files (which must give a result or a short
`ConfigError`, never another exception, a hang or a write). Below them, one plain
example per bug the fuzzing found.
"""

from __future__ import annotations

import copy
import os
import tracemalloc
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import pytest
from fuzz_support import (
    FUZZ,
    any_values,
    check_report,
    column_names,
    damaged_bytes,
    in_toml,
    nasty_text,
    toml_text,
    toml_value,
    toml_values,
)
from hypothesis import given
from hypothesis import strategies as st

from dcnrank.config import ConfigError, DataConfig, TrainRunConfig, load_config, parse_override, valid_keys
from dcnrank.config.data_config import MONITORS, SPLIT_NAMES, VALIDATION_POLICIES
from dcnrank.config.errors import MAX_LISTED, MAX_TOML_BYTES, read_toml
from dcnrank.config.model_config import CROSS_TYPES, DEEP_NORMS, EMBEDDING_L2_SCOPES, LEVER_FLAGS, STRUCTURES
from dcnrank.config.train_config import EMBEDDING_OPTIMIZERS, EMBEDDING_UPDATES, LOSSES, PRECISIONS
from dcnrank.data.encoding.table_error import TableDataError
from dcnrank.data.spec.feature_spec import (
    POOLINGS,
    TASKS,
    CategoricalColumn,
    FeatureSpec,
    MultiHotColumn,
    NumericColumn,
    load_feature_spec,
)

INT64_MAX = 2**63 - 1
SPEC_TOML = """\
task = "binary"
label = "clicked"
group = "user"

[defaults.categorical]
min_count = 5

[columns]
age = { type = "numeric", log1p = true }
user = "categorical"
site = { type = "categorical", hash_buckets = 1000, embedding_dim = 16 }
genres = { type = "multi_hot", separator = ";", pooling = "sum" }
"""


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One folder for the whole module; each example writes its own numbered file."""
    return tmp_path_factory.mktemp("fuzz")


_counter = iter(range(10**9))


def fresh_file(folder: Path, content: bytes | str) -> Path:
    path = folder / f"f{next(_counter)}.toml"
    path.write_bytes(content.encode("utf-8") if isinstance(content, str) else content)
    return path


def outcome(call: Callable[[], Any]) -> Any:
    """`call()`'s result, or the `ConfigError` it raised after checking its report; any
    other exception fails the test."""
    try:
        return call()
    except ConfigError as error:
        check_report(error)
        assert error.errors and all("\n" not in e for e in error.errors), error.errors
        return error


def same_outcome_from_a_file(folder: Path, data: Mapping[str, Any], from_dict: Any, load: Any) -> None:
    """Written as TOML, `data` reads to the same object, or the same problems, each
    prefixed with the file name where the reader prefixes them."""
    path = fresh_file(folder, toml_text(data))
    from_file = outcome(lambda: load(path))
    if isinstance(from_dict, ConfigError):
        assert isinstance(from_file, ConfigError), from_file
        assert len(from_file.errors) == len(from_dict.errors), (from_file.errors, from_dict.errors)
    else:
        assert from_file == from_dict


def _paths(table: Mapping[str, Any], prefix: tuple[str, ...]) -> list[tuple[str, ...]]:
    """Every key path in `table`, tables before their keys."""
    paths = []
    for key, value in table.items():
        paths.append((*prefix, key))
        if isinstance(value, Mapping):
            paths.extend(_paths(value, (*prefix, key)))
    return paths


@st.composite
def mutated(draw: Any, document: Mapping[str, Any]) -> Any:
    """`document` with one to three changes at random places: a value replaced by any
    value (wrong types, NaN, huge ints, tables where scalars belong), a key deleted, an
    unknown key added, or the whole document replaced by a non-table."""
    doc: Any = copy.deepcopy(dict(document))
    for _ in range(draw(st.integers(1, 3))):
        if not isinstance(doc, dict):
            break
        paths = _paths(doc, ())
        kind = draw(st.sampled_from(["replace", "replace", "delete", "add", "whole"]))
        if kind == "whole":
            doc = draw(any_values(4).filter(lambda v: not isinstance(v, Mapping)))
            break
        path = draw(st.sampled_from(paths)) if paths else ()
        parent: Any = doc
        for key in path[:-1]:
            parent = parent[key]
        if kind == "add" or not path:
            target = parent[path[-1]] if path and isinstance(parent[path[-1]], dict) else parent
            target[draw(nasty_text(0, 12))] = draw(any_values(4))
        elif kind == "delete":
            del parent[path[-1]]
        else:
            parent[path[-1]] = draw(any_values(4))
    return doc


# --------------------------------------------------------------------------- specs


def _sized(low: int = 1) -> st.SearchStrategy[int]:
    return st.integers(low, 64) | st.integers(low, INT64_MAX)


SIZES = _sized()
# each column type's options, all optional (strategies built once: building them is not free)
NUMERIC_OPTIONS = st.fixed_dictionaries({}, optional={"log1p": st.booleans()})
HASHED_OPTIONS = st.fixed_dictionaries(
    {"hash_buckets": SIZES}, optional={"min_count": st.just(1), "embedding_dim": SIZES}
)
COUNTED_OPTIONS = st.fixed_dictionaries({}, optional={"min_count": SIZES, "embedding_dim": SIZES})
MULTI_HOT_OPTIONS = st.fixed_dictionaries(
    {},
    optional={
        "separator": nasty_text(1, 3),
        "pooling": st.sampled_from(POOLINGS),
        "min_count": SIZES,
        "embedding_dim": SIZES,
    },
)
COLUMN_OPTIONS = {
    "numeric": NUMERIC_OPTIONS,
    "categorical": HASHED_OPTIONS | COUNTED_OPTIONS,
    "multi_hot": MULTI_HOT_OPTIONS,
}
DEFAULTS = st.fixed_dictionaries(
    {},
    optional={
        "categorical": COUNTED_OPTIONS,
        "numeric": NUMERIC_OPTIONS,
        "multi_hot": st.fixed_dictionaries({}, optional={"pooling": st.sampled_from(POOLINGS)}),
    },
)


@st.composite
def valid_spec_dicts(draw: Any) -> dict[str, Any]:
    """Spec tables as `load_feature_spec` reads them, valid by construction."""
    label = draw(column_names())
    names = draw(st.lists(column_names().filter(lambda n: n != label), min_size=1, max_size=4, unique=True))
    columns: dict[str, Any] = {}
    for name in names:
        kind = draw(st.sampled_from(sorted(COLUMN_OPTIONS)))
        options = draw(COLUMN_OPTIONS[kind])
        columns[name] = kind if not options and draw(st.booleans()) else {"type": kind, **options}
    spec: dict[str, Any] = {"task": draw(st.sampled_from(TASKS)), "label": label, "columns": columns}
    if spec["task"] == "ranking" or draw(st.booleans()):  # a ranking task needs its group
        spec["group"] = draw(st.sampled_from(names) | column_names())
    if draw(st.booleans()):
        spec["defaults"] = draw(DEFAULTS)
    return spec


def spec_outcome(data: Any) -> FeatureSpec | ConfigError:
    result = outcome(lambda: FeatureSpec.from_dict(data))
    if isinstance(result, FeatureSpec):
        assert FeatureSpec.from_dict(result.to_dict()) == result
    return result


@FUZZ
@given(data=valid_spec_dicts())
def test_valid_specs_read_and_round_trip(folder, data):
    spec = FeatureSpec.from_dict(data)
    assert spec.input_names == tuple(data["columns"])
    for column in spec.columns:
        entry = data["columns"][column.name]
        declared = entry if isinstance(entry, str) else dict(entry)
        if isinstance(declared, dict):
            assert column.type == declared.pop("type")
            assert {k: getattr(column, k) for k in declared} == declared
        else:
            assert column.type == declared
    assert (spec.label, spec.task, spec.group) == (data["label"], data["task"], data.get("group"))
    assert FeatureSpec.from_dict(spec.to_dict()) == spec
    assert load_feature_spec(fresh_file(folder, toml_text(data))) == spec
    assert load_feature_spec(fresh_file(folder, toml_text(spec.to_dict()))) == spec


@FUZZ
@given(data=valid_spec_dicts().flatmap(mutated))
def test_mutated_specs_give_a_spec_or_a_short_config_error(folder, data):
    result = spec_outcome(data)
    if isinstance(result, ConfigError):
        text = str(result)
        assert any(
            word in text for word in ("task", "label", "group", "columns", "defaults", "unknown key", "a feature spec")
        ), text
    if isinstance(data, Mapping) and in_toml(data):
        same_outcome_from_a_file(folder, data, result, load_feature_spec)


@FUZZ
@given(
    columns=st.lists(
        st.builds(NumericColumn, column_names()) | st.builds(CategoricalColumn, column_names()) | any_values(2),
        max_size=6,
    )
    | any_values(3),
    label=any_values(2),
    task=st.sampled_from(TASKS) | any_values(2),
    group=st.none() | any_values(2),
)
def test_the_spec_constructor_checks_any_value(columns, label, task, group):
    result = outcome(lambda: FeatureSpec(columns=columns, label=label, task=task, group=group))
    if isinstance(result, FeatureSpec):
        assert FeatureSpec.from_dict(result.to_dict()) == result


@FUZZ
@given(
    cls=st.sampled_from([CategoricalColumn, NumericColumn, MultiHotColumn]),
    name=column_names() | any_values(2),
    options=st.dictionaries(
        st.sampled_from(["min_count", "hash_buckets", "embedding_dim", "log1p", "separator", "pooling"]),
        any_values(2) | _sized(-3),
        max_size=3,
    ),
)
def test_column_constructors_check_any_value(cls, name, options):
    valid = {f for f in cls.__dataclass_fields__ if f != "name"}
    column = outcome(lambda: cls(name, **{k: v for k, v in options.items() if k in valid}))
    if not isinstance(column, ConfigError):
        assert cls(name, **{k: v for k, v in column.to_dict().items() if k != "type"}) == column


# --------------------------------------------------------------------------- run configs


def _floats(low: float, high: float | None = None, *, low_open: bool = False, high_open: bool = False) -> Any:
    return st.floats(low, high, exclude_min=low_open, exclude_max=high_open, allow_nan=False, allow_infinity=False)


FIELD_STRATEGIES: dict[str, st.SearchStrategy[Any]] = {
    "model.structure": st.sampled_from(STRUCTURES),
    "model.embedding_dim": _sized(),
    "model.num_cross_layers": _sized(),
    "model.projection_dim": _sized(),
    "model.diag_scale": _floats(-1e300, 1e300),
    "model.deep_units": st.lists(_sized(), min_size=1, max_size=4),
    "model.dropout": _floats(0.0, 1.0, high_open=True),
    "model.cross_type": st.sampled_from(CROSS_TYPES),
    "model.num_experts": _sized(),
    **{f"model.{flag}": st.booleans() for flag in LEVER_FLAGS},
    "model.numeric_buckets": st.just(0) | st.integers(2, 64),
    "model.deep_norm": st.sampled_from(DEEP_NORMS),
    "model.embedding_l2": _floats(0.0) | st.integers(0, 10),
    "model.embedding_l2_scope": st.sampled_from(EMBEDDING_L2_SCOPES),
    "train.learning_rate": _floats(0.0, low_open=True),
    "train.epochs": _sized(),
    "train.batch_size": _sized(),
    "train.weight_decay": _floats(0.0) | st.integers(0, 10),
    "train.beta_1": _floats(0.0, 1.0, high_open=True),
    "train.beta_2": _floats(0.0, 1.0, high_open=True),
    "train.epsilon": _floats(0.0, low_open=True),
    "train.shuffle": st.booleans(),
    "train.seed": _sized(0),
    "train.eval_batch_size": _sized(),
    "train.precision": st.sampled_from(PRECISIONS),
    "train.checkpoint_every": _sized(),
    "train.warmup_steps": _sized(0),
    "train.lr_decay": _floats(0.0, 1.0, low_open=True),
    "train.loss": st.sampled_from(LOSSES),
    "train.list_size": _sized(2),
    "train.lists_per_group": _sized(0),
    "train.embedding_updates": st.sampled_from(EMBEDDING_UPDATES),
    "train.embedding_optimizer": st.sampled_from(EMBEDDING_OPTIMIZERS),
    "train.embedding_learning_rate": _floats(0.0) | st.integers(0, 10),
    "train.pointwise_weight": _floats(0.0) | st.integers(0, 10),
    "data.split": st.sampled_from(SPLIT_NAMES),
    "data.seed": _sized(0),
    "data.data_dir": nasty_text(1, 20).filter(lambda s: s.strip() != "" and "\x00" not in s),
    "data.validation_fraction": _floats(0.0, 1.0, low_open=True, high_open=True),
    "data.patience": _sized(),
    "data.max_train_rows": _sized(2),
    "data.validation": st.sampled_from(VALIDATION_POLICIES),
    "data.stream": st.booleans(),
    "data.shuffle_buffer": _sized(),
    "data.validation_max_rows": _sized(),
    "data.monitor": st.sampled_from(MONITORS),
    "data.average_epochs": _sized(),
}


def test_the_fuzzing_covers_every_config_key():
    assert sorted(FIELD_STRATEGIES) == sorted(valid_keys())


@st.composite
def valid_config_dicts(draw: Any) -> dict[str, dict[str, Any]]:
    """`{section: {field: value}}` with a random subset of fields, valid by construction."""
    keys = draw(st.lists(st.sampled_from(sorted(FIELD_STRATEGIES)), unique=True, max_size=len(FIELD_STRATEGIES)))
    data: dict[str, dict[str, Any]] = {}
    for key in keys:
        section, name = key.split(".")
        data.setdefault(section, {})[name] = draw(FIELD_STRATEGIES[key])
    model = data.get("model", {})
    cross_type = model.get("cross_type", "matrix")
    if cross_type == "vector":  # a vector cross takes no projection and no diagonal
        model.pop("projection_dim", None)
    if cross_type != "matrix":
        model.pop("diag_scale", None)
    return data


def _as_override(key: str, value: Any) -> str:
    return f"{key}={'none' if value is None else toml_value(value)}"


@FUZZ
@given(data=valid_config_dicts())
def test_valid_configs_read_and_round_trip(folder, data):
    config = TrainRunConfig.from_dict(data)
    resolved = config.to_dict()
    for section, table in data.items():
        for name, value in table.items():
            assert resolved[section][name] == value
    assert TrainRunConfig.from_dict(resolved) == config
    assert load_config(fresh_file(folder, toml_text(data))) == config
    assert load_config(fresh_file(folder, config.to_toml())) == config
    overrides = [_as_override(f"{s}.{n}", v) for s, table in resolved.items() for n, v in table.items()]
    assert load_config(overrides=overrides) == config


@FUZZ
@given(data=valid_config_dicts().flatmap(mutated))
def test_mutated_configs_give_a_config_or_a_short_config_error(folder, data):
    result = outcome(lambda: TrainRunConfig.from_dict(data))
    if isinstance(result, TrainRunConfig):
        assert TrainRunConfig.from_dict(result.to_dict()) == result
        assert load_config(fresh_file(folder, result.to_toml())) == result
    if isinstance(data, Mapping) and in_toml(data):
        same_outcome_from_a_file(folder, data, result, load_config)
        leaves = [
            _as_override(f"{s}.{n}", v)
            for s, table in data.items()
            if isinstance(table, Mapping)
            for n, v in table.items()
        ]
        outcome(lambda: load_config(overrides=leaves))


@FUZZ
@given(
    overrides=st.lists(
        st.builds(
            lambda key, value: f"{key}={value}",
            st.sampled_from(valid_keys()) | nasty_text(0, 16),
            nasty_text(0, 30) | toml_values(4).map(toml_value),
        )
        | nasty_text(0, 40),
        max_size=4,
    )
)
def test_any_override_gives_a_config_or_a_short_config_error(overrides):
    result = outcome(lambda: load_config(overrides=overrides))
    if isinstance(result, TrainRunConfig):
        assert TrainRunConfig.from_dict(result.to_dict()) == result
    for text in overrides:
        parsed = outcome(lambda text=text: parse_override(text))
        if not isinstance(parsed, ConfigError):
            key, _ = parsed
            assert key == text.partition("=")[0].strip()


@FUZZ
@given(
    values=st.dictionaries(
        st.sampled_from([k.split(".")[1] for k in valid_keys() if k.startswith("data.")]), any_values(3)
    )
)
def test_data_config_checks_any_value(values):
    result = outcome(lambda: DataConfig(**values))
    if isinstance(result, DataConfig):
        assert DataConfig(**result.to_dict()) == result


# --------------------------------------------------------------------------- files


@FUZZ
@given(
    content=st.binary(max_size=200)
    | nasty_text(0, 200).map(lambda s: s.encode("utf-8"))
    | st.sampled_from([SPEC_TOML.encode(), TrainRunConfig().to_toml().encode()]).flatmap(damaged_bytes)
)
def test_any_file_gives_a_result_or_a_short_config_error_and_writes_nothing(folder, content):
    path = fresh_file(folder, content)
    before = sorted(os.listdir(folder))
    spec = outcome(lambda: load_feature_spec(path))
    if isinstance(spec, FeatureSpec):
        assert FeatureSpec.from_dict(spec.to_dict()) == spec
    else:
        assert all(problem.startswith(f"{path.name}: ") or str(path) in problem for problem in spec.errors)
    config = outcome(lambda: load_config(path))
    assert sorted(os.listdir(folder)) == before
    assert path.read_bytes() == content
    if isinstance(config, TrainRunConfig):
        assert load_config(fresh_file(folder, config.to_toml())) == config


# --------------------------------------------------------------------------- regressions


def test_a_column_type_that_is_a_list_or_a_table_is_reported():
    with pytest.raises(ConfigError, match=r"columns\.x\.type: unknown column type \[1\]; must be one of categorical"):
        FeatureSpec.from_dict({"task": "binary", "label": "y", "columns": {"x": {"type": [1]}}})
    with pytest.raises(ConfigError, match=r"columns\.x\.type: unknown column type \{\}"):
        FeatureSpec.from_dict({"task": "binary", "label": "y", "columns": {"x": {"type": {}}}})


@pytest.mark.parametrize(
    "override, message",
    [
        ("train.learning_rate=inf", r"train\.learning_rate: must be a finite number\. Received: inf"),
        ("train.epsilon=inf", r"train\.epsilon: must be a finite number\. Received: inf"),
        ("train.weight_decay=inf", r"train\.weight_decay: must be a finite number\. Received: inf"),
        ("model.diag_scale=nan", r"model\.diag_scale: must be a finite number\. Received: nan"),
        ("model.diag_scale=-inf", r"model\.diag_scale: must be a finite number\. Received: -inf"),
        ("train.epochs=" + str(10**40), r"train\.epochs: must be a 64-bit int \(from -2\*\*63 to 2\*\*63 - 1\)"),
        (f"train.seed={2**63}", r"train\.seed: must be a 64-bit int"),
        (f"model.deep_units=[8, {2**64}]", r"model\.deep_units: must be a 64-bit int"),
        ("data.seed=-1", r"data\.seed: must be ≥ 0\. Received: -1"),
        ("train.seed=-1", r"train\.seed: must be ≥ 0\. Received: -1"),
        ('data.data_dir=""', r"data\.data_dir: must be a folder path \(not empty, no NUL character\), or none"),
        ('data.data_dir="/a\\u0000b"', r"data\.data_dir: must be a folder path .* Received: '/a\\x00b'"),
    ],
)
def test_values_that_cannot_run_are_refused_with_their_key(override, message):
    with pytest.raises(ConfigError, match=message):
        load_config(overrides=[override])


def test_text_called_none_stays_text(tmp_path):
    # found by the fuzzing: `group = "NULL"` named a column, and was read as no group
    columns = {"none": "categorical", "x": "numeric"}
    spec = FeatureSpec.from_dict(
        {"task": "binary", "label": "y", "group": "NULL", "columns": {**columns, "NULL": "numeric"}}
    )
    assert spec.group == "NULL"
    assert load_config(overrides=['data.data_dir="none"']).data.data_dir == "none"
    assert load_config(overrides=["data.data_dir=none"]).data.data_dir is None  # bare: unset
    path = tmp_path / "run.toml"
    path.write_text('[model]\nprojection_dim = "none"\n')  # TOML has no null; an int field reads "none" as None
    assert load_config(path).model.projection_dim is None


def test_spec_sizes_beyond_64_bits_are_refused():
    columns = {"x": {"type": "categorical", "hash_buckets": 2**63}}
    with pytest.raises(ConfigError, match=r"columns\.x\.hash_buckets: must be a 64-bit int"):
        FeatureSpec.from_dict({"task": "binary", "label": "y", "columns": columns})


def test_a_lone_surrogate_is_refused_before_it_breaks_writing_the_config(tmp_path):
    # argv holds one for a path that is not UTF-8 (surrogateescape)
    with pytest.raises(ConfigError, match=r"data\.data_dir: must be Unicode text \(it holds a lone surrogate"):
        load_config(overrides=["data.data_dir=/data/\udcff"])
    with pytest.raises(ConfigError, match=r"label: must be Unicode text"):
        FeatureSpec.from_dict({"task": "binary", "label": "y\ud800", "columns": {"x": "numeric"}})


def test_to_toml_escapes_del_so_the_file_reads_back(tmp_path):
    config = TrainRunConfig.from_dict({"data": {"data_dir": "/data/a\x7fb"}})
    path = tmp_path / "run.toml"
    path.write_text(config.to_toml(), encoding="utf-8")
    assert load_config(path) == config


def test_toml_nested_too_deeply_is_a_config_error(tmp_path):
    path = tmp_path / "deep.toml"
    path.write_text("[model]\ndeep_units = " + "[" * 3000 + "]" * 3000 + "\n")
    with pytest.raises(ConfigError, match=r"deep\.toml: not valid TOML: arrays or tables nested too deeply"):
        load_config(path)
    with pytest.raises(ConfigError, match=r"deep\.toml: not valid TOML: arrays or tables nested too deeply"):
        load_feature_spec(path)


def test_toml_number_of_thousands_of_digits_is_a_config_error(tmp_path):
    path = tmp_path / "long.toml"
    path.write_text("[train]\nepochs = " + "9" * 5000 + "\n")
    with pytest.raises(ConfigError, match=r"long\.toml: not valid TOML: Exceeds the limit"):
        load_config(path)


def test_overrides_that_tomllib_cannot_parse_are_bare_strings():
    with pytest.raises(ConfigError, match=r"model\.deep_units: must be a list of ints\. Received: '\[\[\[\["):
        load_config(overrides=["model.deep_units=" + "[" * 3000 + "]" * 3000])
    with pytest.raises(ConfigError, match=r"train\.epochs: must be an int\. Received: '9999"):
        load_config(overrides=["train.epochs=" + "9" * 5000])


def test_an_override_is_one_line():
    # TOML would read `5` and silently drop the second line
    with pytest.raises(
        ConfigError, match=r"override 'train\.epochs=5\\n\[model\]\\nembedding_dim=1': the value must be on one line"
    ):
        load_config(overrides=["train.epochs=5\n[model]\nembedding_dim=1"])


def test_an_override_sets_a_field_not_a_whole_section(tmp_path):
    path = tmp_path / "run.toml"
    path.write_text("[model]\ndeep_units = [8]\n")
    with pytest.raises(ConfigError, match=r"unknown key 'model' \(override 'model=\{embedding_dim=4\}'\)"):
        load_config(path, ["model={embedding_dim=4}"])  # would have dropped deep_units


def test_overrides_must_be_a_sequence_of_strings():
    with pytest.raises(ConfigError, match=r"overrides must be a list of section\.field=value strings, not one string"):
        load_config(overrides="train.epochs=5")
    with pytest.raises(ConfigError, match=r"an override must be a string section\.field=value\. Received: 5"):
        load_config(overrides=[5])


def test_a_file_beyond_the_size_bound_is_refused_without_reading_it(tmp_path):
    path = tmp_path / "huge.toml"
    with path.open("wb") as stream:
        stream.truncate(16 * MAX_TOML_BYTES)  # sparse: no disk used
    tracemalloc.start()
    try:
        with pytest.raises(ConfigError, match=r"huge\.toml: a config file must be at most 1,048,576 bytes"):
            load_config(path)
        with pytest.raises(ConfigError, match=r"huge\.toml: a feature spec must be at most 1,048,576 bytes"):
            load_feature_spec(path)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 3 * MAX_TOML_BYTES


def test_a_byte_order_mark_is_allowed(tmp_path):
    path = tmp_path / "bom.toml"
    path.write_bytes(b"\xef\xbb\xbf" + SPEC_TOML.encode())
    assert load_feature_spec(path).label == "clicked"


def test_a_folder_is_named_as_a_folder(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"feature spec not found \(it is a folder\)\. Received: path="):
        read_toml(tmp_path, "feature spec")


def test_a_long_value_is_echoed_short():
    with pytest.raises(ConfigError) as info:
        load_config(overrides=["data.split=" + "x" * 100_000])
    assert info.value.errors[0].startswith("data.split: must be one of random")
    assert len(str(info.value)) < 400


def test_a_message_lists_the_first_problems_and_counts_the_rest():
    with pytest.raises(
        ConfigError, match=rf"\(30 errors\):\n(  - .*\n){{{MAX_LISTED}}}  - \.\.\. and 10 more$"
    ) as info:
        TrainRunConfig.from_dict({"model": {f"k{i}": 1 for i in range(30)}})
    assert len(info.value.errors) == 30


def test_a_column_name_with_a_line_break_is_shown_escaped():
    columns = {"a\nb": {"type": "numeric", "log1p": 1}}
    with pytest.raises(
        ConfigError, match=r"^[^\n]*\n  - columns\.'a\\nb'\.log1p: must be true or false\. Received: 1$"
    ):
        FeatureSpec.from_dict({"task": "binary", "label": "y", "columns": columns})


def test_many_duplicated_columns_are_listed_short():
    columns = [NumericColumn(f"c{i:02d}") for i in range(30)] * 2
    with pytest.raises(ConfigError, match=r"Received twice: c00, c01, .*, c19 \.\.\.$"):
        FeatureSpec(columns=tuple(columns), label="y", task="binary")


def test_many_missing_columns_are_listed_short():
    spec = FeatureSpec(tuple(NumericColumn(f"c{i:02d}") for i in range(30)), label="y", task="binary")
    with pytest.raises(TableDataError, match=r"missing columns 'c00', .*'c19', \.\.\. \(10 more\); the table has 1"):
        spec.check_columns(["z"], "t.csv", need_label=False)
