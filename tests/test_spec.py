"""Feature specs: dataclasses and TOML agree, every rule is enforced, every problem reported at once."""

import pytest

from dcnrank.config import ConfigError
from dcnrank.data.encoding.table_error import TableDataError
from dcnrank.data.spec.feature_spec import (
    CategoricalColumn,
    FeatureSpec,
    MultiHotColumn,
    NumericColumn,
    load_feature_spec,
)

SPEC_TOML = """\
task = "binary"
label = "clicked"
group = "user"

[defaults.categorical]
min_count = 5

[defaults.numeric]
log1p = true

[columns]
age = { type = "numeric", log1p = false }
visits = "numeric"
user = "categorical"
site = { type = "categorical", hash_buckets = 1000, embedding_dim = 16 }
city = { type = "categorical", min_count = 2 }
genres = { type = "multi_hot", separator = ";", pooling = "sum" }
"""

EXPECTED = FeatureSpec(
    columns=(
        NumericColumn("age", log1p=False),
        NumericColumn("visits", log1p=True),
        CategoricalColumn("user", min_count=5),
        CategoricalColumn("site", hash_buckets=1000, embedding_dim=16),  # the default min_count skips hashed columns
        CategoricalColumn("city", min_count=2),
        MultiHotColumn("genres", separator=";", pooling="sum"),
    ),
    label="clicked",
    task="binary",
    group="user",
)


def write(tmp_path, text, name="spec.toml"):
    path = tmp_path / name
    path.write_text(text)
    return path


def base(**changes):
    data = {"task": "regression", "label": "y", "columns": {"x": "numeric"}}
    data.update(changes)
    return data


# ----------------------------------------------------------------- reading


def test_toml_equals_the_dataclasses(tmp_path):
    spec = load_feature_spec(write(tmp_path, SPEC_TOML))
    assert spec == EXPECTED
    assert spec.input_names == ("age", "visits", "user", "site", "city", "genres")
    assert [c.name for c in spec.of_type("numeric")] == ["age", "visits"]
    assert [c.name for c in spec.of_type("multi_hot")] == ["genres"]


def test_to_dict_round_trip_keeps_every_value():
    data = EXPECTED.to_dict()
    assert data["columns"]["site"] == {"type": "categorical", "min_count": 1, "hash_buckets": 1000, "embedding_dim": 16}
    assert data["group"] == "user"
    assert FeatureSpec.from_dict(data) == EXPECTED
    no_group = FeatureSpec((NumericColumn("x"),), label="y", task="regression")
    assert "group" not in no_group.to_dict() and FeatureSpec.from_dict(no_group.to_dict()) == no_group


def test_integers_widen_and_lists_become_tuples():
    spec = FeatureSpec([NumericColumn("x")], label="y", task="regression")
    assert spec.columns == (NumericColumn("x"),)


# ----------------------------------------------------------------- column rules


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: CategoricalColumn("c", min_count=0), r"columns\.c\.min_count: must be ≥ 1\. Received: 0"),
        (lambda: CategoricalColumn("c", hash_buckets=0), r"columns\.c\.hash_buckets: must be ≥ 1, or none"),
        (lambda: CategoricalColumn("c", embedding_dim=0), r"columns\.c\.embedding_dim: must be ≥ 1, or none"),
        (lambda: CategoricalColumn("c", min_count=1.5), r"columns\.c\.min_count: must be an int\. Received: 1\.5"),
        (lambda: CategoricalColumn(""), r"columns\.\.name: must be a non-empty column name"),
        (lambda: CategoricalColumn(3), r"column\.name: must be a string\. Received: 3"),
        (
            lambda: CategoricalColumn("c", min_count=3, hash_buckets=10),
            r"columns\.c\.min_count: must be 1 with hash_buckets.*Received: min_count=3, hash_buckets=10",
        ),
        (lambda: NumericColumn("x", log1p="yes"), r"columns\.x\.log1p: must be true or false\. Received: 'yes'"),
        (
            lambda: MultiHotColumn("g", pooling="max"),
            r"columns\.g\.pooling: must be one of mean, sum\. Received: 'max'",
        ),
        (lambda: MultiHotColumn("g", separator=""), r"columns\.g\.separator: must be a non-empty string"),
        (lambda: MultiHotColumn("g", min_count=0), r"columns\.g\.min_count: must be ≥ 1"),
    ],
)
def test_column_rules(make, message):
    with pytest.raises(ConfigError, match=message):
        make()


def test_a_column_reports_all_its_problems():
    with pytest.raises(ConfigError, match=r"\(2 errors\)") as caught:
        MultiHotColumn("g", pooling="max", embedding_dim=-1)
    assert [e.split(":")[0] for e in caught.value.errors] == ["columns.g.pooling", "columns.g.embedding_dim"]


# ----------------------------------------------------------------- spec rules


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"task": "classification"}, r"task: must be one of regression, binary, ranking\. Received: 'classification'"),
        ({"label": ""}, r"label: must be a non-empty column name"),
        ({"label": 5}, r"label: must be a string\. Received: 5"),
        ({"group": ""}, r"group: must be a non-empty column name, or none"),
        ({"columns": ()}, r"columns: must name at least one input column"),
        (
            {"columns": ("x",)},
            r"columns: must hold CategoricalColumn, NumericColumn or MultiHotColumn objects\. Received: 'x'",
        ),
        (
            {"columns": (NumericColumn("x"), CategoricalColumn("x"))},
            r"columns: each column may appear once\. Received twice: x",
        ),
        ({"label": "x"}, r"label: the label column 'x' must not also be an input column"),
    ],
)
def test_spec_rules(kwargs, message):
    arguments = {"columns": (NumericColumn("x"),), "label": "y", "task": "binary", **kwargs}
    with pytest.raises(ConfigError, match=message):
        FeatureSpec(**arguments)


def test_group_may_be_an_input_column():
    spec = FeatureSpec((CategoricalColumn("user"),), label="y", task="binary", group="user")
    assert spec.group == "user"


def test_of_type_rejects_an_unknown_type():
    with pytest.raises(
        ValueError, match=r"`type_name` must be one of categorical, numeric, multi_hot\. Received: 'dense'"
    ):
        EXPECTED.of_type("dense")


# ----------------------------------------------------------------- from_dict: keys and suggestions


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (["task"], r"a feature spec must be a table\. Received: \['task'\]"),
        (base(lable="y"), r"unknown key 'lable' \(did you mean 'label'\?\)"),
        ({"label": "y", "columns": {"x": "numeric"}}, r"task: missing; a spec needs task, label and columns"),
        ({"task": "binary", "label": "y"}, r"columns: missing"),
        (base(defaults=3), r"defaults: must be a table of column types\. Received: 3"),
        (
            base(defaults={"numerc": {}}),
            r"defaults\.numerc: unknown column type 'numerc'.*\(did you mean 'numeric'\?\)",
        ),
        (base(defaults={"numeric": 1}), r"defaults\.numeric: must be a table of options\. Received: 1"),
        (
            base(defaults={"numeric": {"log": True}}),
            r"unknown key 'defaults\.numeric\.log' \(did you mean 'defaults\.numeric\.log1p'\?\)",
        ),
        (base(columns=["x"]), r"columns: must be a table of column name = type\. Received: \['x'\]"),
        (base(columns={"x": 3}), r"columns\.x: must be a column type or a table with `type`\. Received: 3"),
        (
            base(columns={"x": {"log1p": True}}),
            r"columns\.x: missing `type` \(one of categorical, numeric, multi_hot\)",
        ),
        (
            base(columns={"x": "categorial"}),
            r"columns\.x\.type: unknown column type 'categorial'.*\(did you mean 'categorical'\?\)",
        ),
        (
            base(columns={"x": "zzz"}),
            r"columns\.x\.type: unknown column type 'zzz'; must be one of categorical, numeric, multi_hot$",
        ),
        (
            base(columns={"x": {"type": "categorical", "min_cnt": 2}}),
            r"unknown key 'columns\.x\.min_cnt' \(did you mean 'columns\.x\.min_count'\?\)",
        ),
        (base(columns={"x": {"type": "categorical", "min_count": 0}}), r"columns\.x\.min_count: must be ≥ 1"),
    ],
)
def test_from_dict_problems(data, message):
    with pytest.raises(ConfigError, match=message):
        FeatureSpec.from_dict(data)


def test_from_dict_collects_every_problem_before_raising():
    data = {
        "task": "classification",
        "label": "y",
        "extra": 1,
        "columns": {
            "a": "categorial",
            "b": {"type": "numeric", "log": True},
            "c": {"type": "multi_hot", "pooling": "max"},
        },
    }
    with pytest.raises(ConfigError) as caught:
        FeatureSpec.from_dict(data)
    keys = [e.split(":")[0] for e in caught.value.errors]
    assert keys == [
        "unknown key 'extra'",
        "columns.a.type",
        "unknown key 'columns.b.log' (did you mean 'columns.b.log1p'?)",
        "columns.c.pooling",
        "task",
    ]


def test_a_column_may_set_min_count_with_its_own_hash_buckets_only_to_1():
    data = base(
        defaults={"categorical": {"min_count": 4}},
        columns={"c": {"type": "categorical", "hash_buckets": 8, "min_count": 4}},
    )
    with pytest.raises(ConfigError, match=r"columns\.c\.min_count: must be 1 with hash_buckets"):
        FeatureSpec.from_dict(data)


# ----------------------------------------------------------------- files


def test_load_feature_spec_file_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"feature spec not found\. Received: path='.*nope\.toml'"):
        load_feature_spec(tmp_path / "nope.toml")
    with pytest.raises(ConfigError, match=r"bad\.toml: not valid TOML: .*line 1"):
        load_feature_spec(write(tmp_path, "task = \n", "bad.toml"))
    (tmp_path / "latin.toml").write_bytes('label = "é"'.encode("latin-1"))
    with pytest.raises(ConfigError, match=r"latin\.toml: not valid TOML"):
        load_feature_spec(tmp_path / "latin.toml")


def test_load_feature_spec_prefixes_every_problem_with_the_file(tmp_path):
    path = write(tmp_path, 'task = "x"\nlabel = "y"\n[columns]\nx = "numerc"\n')
    with pytest.raises(ConfigError) as caught:
        load_feature_spec(path)
    assert all(e.startswith("spec.toml: ") for e in caught.value.errors) and len(caught.value.errors) == 2


# ----------------------------------------------------------------- columns of a table


def test_check_columns_names_every_missing_column_with_suggestions():
    available = ["clicked", "age", "vistis", "user", "site", "city", "genres"]
    with pytest.raises(
        TableDataError, match=r"^clicks\.csv: missing columns 'visits' \(did you mean 'vistis'\?\), 'xyz'"
    ):
        FeatureSpec.from_dict(
            {**EXPECTED.to_dict(), "columns": {**EXPECTED.to_dict()["columns"], "xyz": "numeric"}}
        ).check_columns(available, "clicks.csv")
    with pytest.raises(TableDataError, match=r"missing column 'clicked'; the table has 6 columns"):
        EXPECTED.check_columns(["age", "visits", "user", "site", "city", "genres"], "t")
    EXPECTED.check_columns(["age", "visits", "user", "site", "city", "genres"], "t", need_label=False)


_ROLE_COLUMNS = {"u": "categorical", "i": "categorical", "g": "multi_hot", "a": "numeric"}


def test_roles_round_trip_and_name_their_positions() -> None:
    spec = FeatureSpec.from_dict(
        {"task": "regression", "label": "r", "user": "u", "item": "i", "user_columns": ["a"],
         "item_columns": ["g"], "columns": _ROLE_COLUMNS}
    )  # fmt: skip
    assert (spec.user, spec.item, spec.user_columns, spec.item_columns) == ("u", "i", ("a",), ("g",))
    assert spec.role_positions() == {"user": 0, "item": 1}
    assert FeatureSpec.from_dict(spec.to_dict()) == spec


@pytest.mark.parametrize(
    ("roles", "message"),
    [
        ({"user": "usr_id"}, "user: 'usr_id' is not one of the spec's input columns"),
        ({"item": "a"}, "item: the item column 'a' must be categorical"),
        ({"user": "u", "item": "u"}, "item: must differ from user"),
        ({"item_columns": ["gg"]}, r"item_columns: 'gg' is not one of the spec's input columns \(did you mean 'g'\?\)"),
        ({"user": "u", "user_columns": ["u"]}, "user_columns: 'u' is the user column itself"),
        ({"user_columns": ["g"], "item_columns": ["g"]}, "item_columns: 'g' is also in user_columns"),
        ({"item_columns": "g"}, "item_columns: must be a list of column names"),
    ],
)
def test_a_role_that_names_no_fitting_column_is_refused_by_name(roles: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        FeatureSpec.from_dict({"task": "regression", "label": "r", "columns": _ROLE_COLUMNS, **roles})
