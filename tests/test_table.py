"""Encoded tables: column conversions, hashing, batches, the fitted encoder, task metrics,
table bundles and the train/predict workflows, with hand-checkable values."""

import hashlib
import json
import math

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
import torch
from torch.testing import assert_close

from dcnrank.bundle import BundleError, load, save
from dcnrank.config import ConfigError, load_config
from dcnrank.data import Vocabulary
from dcnrank.data.encoding.feature_hashing import hash_rows
from dcnrank.data.encoding.table_batch import TableBatch
from dcnrank.data.encoding.table_columns import Categories, categories_as, read_categories, read_items, read_numbers
from dcnrank.data.encoding.table_encoder import EncodedRows, TableEncoder, fit_and_encode
from dcnrank.data.encoding.table_error import TableDataError
from dcnrank.data.spec.feature_spec import CategoricalColumn, FeatureSpec, MultiHotColumn, NumericColumn
from dcnrank.models import DCNConfig
from dcnrank.models.table_inputs import build_table_dcn
from dcnrank.row_messages import describe_rows
from dcnrank.training import TrainConfig, Trainer, fit_with_early_stopping
from dcnrank.training.tasks import TaskTrainer, task_loss, task_metrics, task_predictions
from dcnrank.workflows.predict import predict_table
from dcnrank.workflows.train import train_table

SPEC = FeatureSpec(
    columns=(
        NumericColumn("x"),
        NumericColumn("count", log1p=True),
        CategoricalColumn("city"),
        CategoricalColumn("site", hash_buckets=7),
        MultiHotColumn("tags"),
    ),
    label="y",
    task="binary",
    group="user",
)


ROWS = {
    "x": [1.0, 3.0, None, 5.0],
    "count": [0, 3, 1, None],
    "city": ["paris", "rome", "paris", "oslo"],
    "site": [10, 11, None, 10],
    "tags": ["a|b", None, "b||c", "a"],
    "y": [1, 0, 1, 0],
    "user": ["u1", "u1", "u2", "u2"],
}


# ----------------------------------------------------------------- column conversions


def test_read_numbers_values_and_errors():
    numbers = read_numbers(pa.table({"v": pa.array([1, None, 3], pa.int32())}), "v", "t")
    assert numbers.values.tolist() == [1.0, 0.0, 3.0] and numbers.missing.tolist() == [False, True, False]
    assert read_numbers(pa.table({"v": [True, False]}), "v", "t").values.tolist() == [1.0, 0.0]
    assert read_numbers(pa.table({"v": ["1_000", "2"]}), "v", "t").values.tolist() == [1000.0, 2.0]  # Python's syntax
    with pytest.raises(TableDataError, match=r"^t\.csv: column 'v' must hold numbers\. Received 1 row: v\[1\]='1,5'$"):
        read_numbers(pa.table({"v": ["1", "1,5", None]}), "v", "t.csv")
    with pytest.raises(
        TableDataError, match=r"column 'v' must hold finite numbers\. Received 2 rows: v\[0\]=inf, v\[2\]=-inf"
    ):
        read_numbers(pa.table({"v": [math.inf, 1.0, -math.inf]}), "v", "t")
    with pytest.raises(TableDataError, match=r"column 'v' must hold numbers\. Received: type list<item: int64>"):
        read_numbers(pa.table({"v": [[1]]}), "v", "t")


def test_describe_rows_counts_all_and_shows_five():
    assert describe_rows("c", list(range(7)), list("abcdefg")).startswith("7 rows (first 5 shown): c[0]='a'")


def test_read_categories_kinds_and_errors():
    assert read_categories(pa.table({"c": ["a", "", None]}), "c", "t").missing.tolist() == [False, True, True]
    ints = read_categories(pa.table({"c": pa.array([5, None], pa.int8())}), "c", "t")
    assert ints.kind == "int" and ints.values.tolist() == [5, 0] and ints.missing.tolist() == [False, True]
    assert read_categories(pa.table({"c": [True, False]}), "c", "t").values.tolist() == [1, 0]
    coded = pa.table({"c": pa.array(["x", "y", "x"]).dictionary_encode()})
    assert read_categories(coded, "c", "t").values.tolist() == ["x", "y", "x"]
    with pytest.raises(
        TableDataError,
        match=r"column 'c' is categorical and must hold ints or strings, not fractions\. Received 1 row: c\[1\]=0\.5",
    ):
        read_categories(pa.table({"c": [1.0, 0.5]}), "c", "t")
    with pytest.raises(
        TableDataError, match=r"column 'c' is categorical and must hold ints or strings\. Received: type date32"
    ):
        read_categories(pa.table({"c": pa.array([0], pa.date32())}), "c", "t")
    with pytest.raises(TableDataError, match=r"column 'c' holds integers too large for int64"):
        read_categories(pa.table({"c": pa.array([2**63], pa.uint64())}), "c", "t")


def test_categories_convert_to_the_vocabulary_kind():
    text = categories_as(Categories(np.array([7, 0]), np.array([False, True])), "str", "t", "c")
    assert text.values.tolist() == ["7", ""]
    assert categories_as(text, "str", "t", "c") is text
    with pytest.raises(
        TableDataError,
        match=r"column 'c' must hold integers \(this model's vocabulary holds ints\)\. Received 1 row: c\[1\]='x'",
    ):
        categories_as(Categories(np.array(["1", "x"]), np.array([False, False])), "int", "t", "c")


def test_read_items_from_text_and_lists():
    items = read_items(pa.table({"g": [["a", None, "b"], None, [], ["c"]]}), "g", "|", "t")
    assert items.values.tolist() == ["a", "b", "c"] and items.rows.tolist() == [0, 0, 3] and items.num_rows == 4
    ints = read_items(pa.table({"g": [[3, 4], [5]]}), "g", "|", "t")
    assert ints.values.tolist() == [3, 4, 5] and ints.rows.tolist() == [0, 0, 1]
    with pytest.raises(
        TableDataError,
        match=r"column 'g' is multi_hot and must hold text separated by ';' or lists\. Received: type int64",
    ):
        read_items(pa.table({"g": [1]}), "g", ";", "t")
    with pytest.raises(TableDataError, match=r"not fractions\. Received 1 row: g\[1\]=1\.5 \(in its list items\)"):
        read_items(pa.table({"g": [[1.0, 1.5]]}), "g", "|", "t")


# ----------------------------------------------------------------- hashing


def test_hash_rows_follow_the_documented_formula():
    expected = 1 + int.from_bytes(hashlib.blake2b(b"paris", digest_size=8).digest(), "little") % 1000
    rows = hash_rows(np.array(["paris", "paris", "x"]), np.array([False, False, True]), 1000)
    assert rows.tolist() == [expected, expected, 0]
    assert (
        hash_rows(np.array([42]), np.array([False]), 9).tolist()
        == hash_rows(np.array(["42"]), np.array([False]), 9).tolist()
    )
    with pytest.raises(ValueError, match=r"`buckets` must be a positive int\. Received: buckets=0"):
        hash_rows(np.array(["a"]), np.array([False]), 0)
    with pytest.raises(ValueError, match=r"`values` and `missing` must have the same length\. Received: 1 and 2"):
        hash_rows(np.array(["a"]), np.array([False, True]), 3)


# ----------------------------------------------------------------- batches


def batch_of(n=3):
    return TableBatch(
        torch.arange(n).reshape(n, 1),
        torch.arange(2 * n, dtype=torch.float32).reshape(n, 2),
        torch.zeros(n, 2, dtype=torch.bool),
        (torch.full((n, 2), -1),),
    )


def test_batch_slices_gathers_and_moves():
    batch = batch_of()
    assert len(batch) == 3 and batch.device == torch.device("cpu")
    picked = batch[torch.tensor([2, 0])]
    assert picked.categorical.tolist() == [[2], [0]] and picked.numeric.tolist() == [[4.0, 5.0], [0.0, 1.0]]
    assert len(batch[1:]) == 2 and batch[1:].multi_hot[0].shape == (2, 2)
    assert batch.to("cpu").numeric.equal(batch.numeric)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            {"categorical": torch.zeros(3, 1)},
            r"`categorical` must be a 2-D torch\.int32 or torch\.int64 tensor\. Received: Tensor torch\.float32",
        ),
        ({"numeric": torch.zeros(3)}, r"`numeric` must be a 2-D torch\.float32 tensor"),
        (
            {"missing": torch.zeros(3, 2, dtype=torch.bool)[:2]},
            r"every tensor must have 3 rows, as `categorical`\. Received: `missing` has 2",
        ),
        (
            {"missing": torch.zeros(3, 1, dtype=torch.bool)},
            r"`missing` must have the shape of `numeric` \(3, 2\)\. Received: \(3, 1\)",
        ),
        ({"multi_hot": ([[1]],)},
         r"`multi_hot\[0\]` must be a 2-D torch\.int32 or torch\.int64 tensor\. Received: list"),
    ],
)
def test_batch_rules(change, message):
    batch = batch_of()
    fields = {
        "categorical": batch.categorical,
        "numeric": batch.numeric,
        "missing": batch.missing,
        "multi_hot": batch.multi_hot,
    }
    with pytest.raises(ValueError, match=message):
        TableBatch(**{**fields, **change})


# ----------------------------------------------------------------- the encoder


def test_fit_and_encode_by_hand():
    encoder, rows = fit_and_encode(SPEC, ROWS, rows=np.array([0, 1, 2]))
    # x: training values 1 and 3 (row 2 is missing): mean 2, std 1.
    assert encoder.numeric["x"] == (2.0, 1.0)
    # count: log1p of 0, 3, 1 over the three training rows.
    logs = np.log1p([0.0, 3.0, 1.0])
    assert encoder.numeric["count"] == pytest.approx((logs.mean(), logs.std()))
    assert encoder.vocabularies["city"] == Vocabulary.fit(["paris", "rome"])  # oslo is only in row 3
    assert encoder.vocabularies["tags"] == Vocabulary.fit(["a", "b", "c"])
    assert encoder.table_sizes == {"city": 3, "site": 8, "tags": 4}
    f = rows.features
    assert f.categorical[:, 0].tolist() == [1, 2, 1, 0]  # oslo: OOV
    site = hash_rows(np.array(["10", "11"]), np.array([False, False]), 7)
    assert f.categorical[:, 1].tolist() == [site[0], site[1], 0, site[0]]
    assert_close(f.numeric[:, 0], torch.tensor([-1.0, 1.0, 0.0, 3.0]))
    assert f.missing.tolist() == [[False, False], [False, False], [True, False], [False, True]]
    assert_close(
        f.numeric[:, 1],
        torch.tensor((np.log1p([0.0, 3.0, 1.0, 0.0]) - logs.mean()) / logs.std(), dtype=torch.float32)
        * torch.tensor([1.0, 1, 1, 0]),
    )
    assert f.multi_hot[0].tolist() == [[1, 2], [-1, -1], [2, 3], [1, -1]]
    assert rows.labels.tolist() == [1.0, 0.0, 1.0, 0.0] and rows.groups.tolist() == ["u1", "u1", "u2", "u2"]


def test_min_count_and_empty_vocabularies():
    spec = FeatureSpec(
        (CategoricalColumn("c", min_count=2), MultiHotColumn("g", min_count=2)), label="y", task="regression"
    )
    encoder, rows = fit_and_encode(
        spec, {"c": ["a", "a", "b", None], "g": ["x|y", "x", "z", "x"], "y": [1.0, 2.0, 3.0, 4.0]}
    )
    assert encoder.vocabularies["c"] == Vocabulary.fit(["a"]) and encoder.vocabularies["g"] == Vocabulary.fit(["x"])
    assert rows.features.categorical[:, 0].tolist() == [1, 1, 0, 0]
    assert rows.features.multi_hot[0].tolist() == [[1, 0], [1, -1], [0, -1], [1, -1]]
    spec = FeatureSpec((CategoricalColumn("c"), MultiHotColumn("g"), NumericColumn("x")), label="y", task="regression")
    empty = TableEncoder.fit(spec, {"c": [None, None], "g": [None, None], "x": [1.0, None], "y": [0.0, 1.0]})
    assert empty.table_sizes == {"c": 1, "g": 1}
    encoded = empty.encode({"c": ["a", "b"], "g": ["x", None], "x": [None, None]}).features
    assert encoded.categorical.tolist() == [[0], [0]] and encoded.multi_hot[0].tolist() == [[0], [-1]]
    assert encoded.missing.tolist() == [[True], [True]]


def test_a_constant_numeric_column_gets_std_1():
    encoder = TableEncoder.fit(
        FeatureSpec((NumericColumn("x"),), label="y", task="regression"), {"x": [4.0, 4.0], "y": [0.0, 1.0]}
    )
    assert encoder.numeric["x"] == (4.0, 1.0)


def test_a_model_trained_on_ints_scores_text_and_back():
    spec = FeatureSpec((CategoricalColumn("id"),), label="y", task="regression")
    from_ints = TableEncoder.fit(spec, {"id": [5, 7], "y": [0.0, 1.0]})
    assert from_ints.encode({"id": ["7", "5", None, "9"]}).features.categorical[:, 0].tolist() == [2, 1, 0, 0]
    with pytest.raises(
        TableDataError,
        match=r"column 'id' must hold integers \(this model's vocabulary holds ints\)\. Received 1 row: id\[0\]='x7'",
    ):
        from_ints.encode({"id": ["x7"]})
    from_text = TableEncoder.fit(spec, {"id": ["5", "7"], "y": [0.0, 1.0]})
    assert from_text.encode({"id": [7, 5]}).features.categorical[:, 0].tolist() == [2, 1]


def test_encode_without_label_and_with_dataframes():
    encoder = TableEncoder.fit(SPEC, pd.DataFrame(ROWS))
    inputs = {k: v for k, v in ROWS.items() if k not in ("y", "user")}
    rows = encoder.encode(pd.DataFrame(inputs))
    assert rows.labels is None and rows.groups is None and len(rows) == 4
    with pytest.raises(TableDataError, match=r"^DataFrame: missing column 'city'"):
        encoder.encode(pd.DataFrame(inputs).drop(columns="city"))


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            {"count": [0, -1, 2, 3]},
            r"^data: column 'count' has log1p = true, so its values must be > -1\. Received 1 row: count\[1\]=-1\.0$",
        ),
        (
            {"y": [1, None, 0, None]},
            r"label column 'y' must have a value in every row\. Received 2 rows: y\[1\]=None, y\[3\]=None",
        ),
        (
            {"y": [1, 2, 0, 1]},
            r"label column 'y' \(task = \"binary\"\): `labels` must be 0 or 1 \(not NaN\)\. "
            r"Received 1 row: labels\[1\]=2\.0",
        ),
        ({"y": ["1", "yes", "0", "1"]}, r"column 'y' must hold numbers\. Received 1 row: y\[1\]='yes'"),
        (
            {"user": ["u1", None, "u2", "u2"]},
            r"group column 'user' must have a value in every row\. Received 1 row: user\[1\]=None",
        ),
        ({"x": ["1", "2", "three", "4"]}, r"column 'x' must hold numbers\. Received 1 row: x\[2\]='three'"),
    ],
)
def test_bad_cells_are_named_by_column_and_row(change, message):
    with pytest.raises(TableDataError, match=message):
        fit_and_encode(SPEC, {**ROWS, **change})


def test_fit_checks_rows_and_numeric_coverage():
    with pytest.raises(ValueError, match=r"`rows` must be a 1-D array of row positions in 0\.\.3\. Received: \[4\]"):
        fit_and_encode(SPEC, ROWS, rows=[4])
    with pytest.raises(
        TableDataError, match=r"numeric column 'x' has no value in the 1 training rows, so it cannot be standardised"
    ):
        fit_and_encode(SPEC, ROWS, rows=np.array([2]))
    with pytest.raises(TableDataError, match=r"^data: missing columns 'y', 'user'"):
        TableEncoder.fit(SPEC, {k: v for k, v in ROWS.items() if k not in ("y", "user")})


def test_a_regression_label_may_be_any_finite_number():
    spec = FeatureSpec((NumericColumn("x"),), label="y", task="regression")
    assert TableEncoder.fit(spec, {"x": [1.0, 2.0], "y": [0.5, -3.0]}).encode(
        {"x": [1.0], "y": [7.25]}
    ).labels.tolist() == [7.25]


def test_encoder_dict_round_trip_compares_values():
    encoder = TableEncoder.fit(SPEC, ROWS)
    back = TableEncoder.from_dict(json.loads(json.dumps(encoder.to_dict())))
    assert back.spec == encoder.spec and back.numeric == encoder.numeric and back.vocabularies == encoder.vocabularies
    expected, got = encoder.encode(ROWS).features, back.encode(ROWS).features
    assert expected.categorical.equal(got.categorical) and expected.numeric.equal(got.numeric)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda d: d.pop("numeric"), r"exactly the keys 'spec', 'vocabularies' and 'numeric'"),
        (lambda d: d.update(vocabularies=[1]), r"`vocabularies` must map column names to entries\. Received: \[1\]"),
        (
            lambda d: d["vocabularies"].update(city={"kind": "float", "values": []}),
            r"vocabulary of 'city': `kind` must be 'int' or 'str'",
        ),
        (lambda d: d["numeric"].update(x={"mean": 1.0}), r"numeric statistics of 'x' must be \{mean, std\}"),
        (lambda d: d["numeric"].update(x={"mean": "1", "std": 1.0}), r"numeric statistics of 'x' must be numbers"),
        (
            lambda d: d["numeric"].update(x={"mean": 1.0, "std": 0.0}),
            r"`numeric\['x'\]` must be a finite \(mean, std\) with std > 0\. Received: \(1\.0, 0\.0\)",
        ),
        (
            lambda d: d["vocabularies"].pop("tags"),
            r"`vocabularies` must hold the vocabulary columns \['city', 'tags'\] in order\. Received: \['city'\]",
        ),
        (lambda d: d["numeric"].pop("count"), r"`numeric` must hold the numeric columns \['x', 'count'\] in order"),
    ],
)
def test_encoder_from_dict_rules(change, message):
    data = TableEncoder.fit(SPEC, ROWS).to_dict()
    change(data)
    with pytest.raises(ValueError, match=message):
        TableEncoder.from_dict(data)


def test_encoded_rows_take_keeps_labels_and_groups_aligned():
    rows = TableEncoder.fit(SPEC, ROWS).encode(ROWS).take(torch.tensor([3, 0]))
    assert rows.labels.tolist() == [0.0, 1.0] and rows.groups.tolist() == ["u2", "u1"]
    assert isinstance(rows, EncodedRows) and len(rows) == 2


# ----------------------------------------------------------------- tasks


def test_task_loss_predictions_and_metrics():
    assert task_loss("regression")(torch.tensor([1.0, 3.0]), torch.tensor([2.0, 2.0])).item() == 1.0
    assert_close(task_predictions("binary", torch.tensor([0.0, math.log(3.0)])), torch.tensor([0.5, 0.75]))
    assert task_predictions("regression", torch.tensor([2.5])).tolist() == [2.5]
    regression = task_metrics("regression", torch.tensor([2.0, 2.0]), torch.tensor([1.0, 4.0]))
    assert regression == pytest.approx({"loss": 2.5, "rmse": math.sqrt(2.5), "mae": 1.5})
    labels, logits = torch.tensor([0.0, 1.0, 1.0, 0.0]), torch.tensor([0.1, 0.9, 0.2, 0.3])
    binary = task_metrics("binary", labels, logits, np.array(["a", "a", "b", "b"]))
    assert binary["auc"] == 0.75 and binary["group_auc"] == 0.5 and binary["groups"] == 2
    assert binary["logloss"] == pytest.approx(
        float(torch.nn.functional.binary_cross_entropy_with_logits(logits, labels))
    )
    one_class = task_metrics("binary", torch.tensor([1.0, 1.0]), torch.tensor([0.0, 1.0]), np.array([1, 1]))
    assert one_class["auc"] is None and one_class["group_auc"] is None
    with pytest.raises(ValueError, match=r"`task` must be one of regression, binary, ranking\. Received: task='ordi"):
        task_loss("ordinal")
    with pytest.raises(ValueError, match=r"`predictions` must be finite"):
        task_metrics("binary", labels, torch.tensor([0.0, math.nan, 0.0, 0.0]))


def test_early_stopping_monitor_must_be_a_record_key():
    x, y = torch.randn(32, 2), (torch.arange(32) % 2).float()
    model = torch.nn.Sequential(torch.nn.Linear(2, 1), torch.nn.Flatten(0))
    with pytest.raises(
        ValueError, match=r"`monitor` must be a key of the epoch records .*Received: monitor='val_rmse'"
    ):
        fit_with_early_stopping(TaskTrainer("binary", TrainConfig(epochs=2)), model, x, y, (x, y), patience=1)
    result = fit_with_early_stopping(
        TaskTrainer("binary", TrainConfig(epochs=2)), model, x, y, (x, y), patience=2, monitor="val_auc"
    )
    assert result.monitor == "val_auc" and math.isnan(result.best_val_rmse)
    assert result.best_value == result.history.epochs[result.best_epoch - 1]["val_auc"]


# ----------------------------------------------------------------- table bundles


def small_model(encoder, structure="stacked", seed=0):
    torch.manual_seed(seed)
    config = DCNConfig(structure=structure, embedding_dim=3, deep_units=(4,))
    return build_table_dcn(config, encoder.spec, encoder.table_sizes), config


@pytest.mark.parametrize("structure", ["stacked", "cross_only", "parallel", "deep_only"])
def test_table_bundle_round_trip_gives_identical_predictions(tmp_path, structure):
    encoder = TableEncoder.fit(SPEC, ROWS)
    model, config = small_model(encoder, structure)
    folder = save(
        model,
        tmp_path / "b",
        model_config=config,
        encoder=encoder,
        train_config={"train": {"epochs": 1}},
        metrics={"auc": 0.5},
    )
    bundle = load(folder)
    model.eval()
    with torch.no_grad():
        expected = torch.sigmoid(model(encoder.encode(ROWS).features))
    assert torch.equal(bundle.predict(ROWS), expected)
    assert torch.equal(bundle.predict(pd.DataFrame(ROWS)), expected)
    assert (
        bundle.spec == SPEC
        and bundle.encoder.numeric == encoder.numeric
        and bundle.encoder.vocabularies == encoder.vocabularies
    )
    assert bundle.train == {"train": {"epochs": 1}} and bundle.metrics == {"auc": 0.5} and bundle.model_config == config
    for name, tensor in model.state_dict().items():
        assert torch.equal(bundle.model.state_dict()[name], tensor)
    assert not any(p.requires_grad for p in bundle.model.parameters())
    assert "Bundle(" in repr(bundle) and bundle.outputs(bundle.encode(ROWS), batch_size=3).shape == (4,)


def test_table_bundle_files(tmp_path):
    encoder = TableEncoder.fit(SPEC, ROWS)
    folder = save(*small_model(encoder)[:1], tmp_path / "b", model_config=small_model(encoder)[1], encoder=encoder)
    config = json.loads((folder / "config.json").read_text())
    assert config["format"] == "dcnrank.bundle" and config["format_version"] == 3
    manifest = json.loads((folder / "manifest.json").read_text())
    assert manifest["format"] == "dcnrank.bundle" and manifest["format_version"] == 3
    assert manifest["sha256"]["config.json"] == hashlib.sha256((folder / "config.json").read_bytes()).hexdigest()
    assert config["spec"] == SPEC.to_dict() and config["table_sizes"] == {"city": 4, "site": 8, "tags": 4}
    assert config["numeric"]["x"] == {"mean": 3.0, "std": math.sqrt(8 / 3)}
    assert json.loads((folder / "vocab.json").read_text())["tags"] == {"kind": "str", "values": ["a", "b", "c"]}


def record_sum(folder, name):
    """Record a hand-edited file's new SHA-256 in the manifest, so that only its meaning is wrong."""
    manifest = json.loads((folder / "manifest.json").read_text())
    manifest["sha256"][name] = hashlib.sha256((folder / name).read_bytes()).hexdigest()
    (folder / "manifest.json").write_text(json.dumps(manifest))


def rewrite_config(folder, change):
    config = json.loads((folder / "config.json").read_text())
    change(config)
    (folder / "config.json").write_text(json.dumps(config))
    record_sum(folder, "config.json")


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda c: c.pop("spec"), r"config\.json: missing key\(s\) spec"),
        (
            lambda c: c.update(model={"structure": "zigzag"}),
            r"config\.json: invalid `model`: `structure` must be one of",
        ),
        (lambda c: c.update(train=[]), r"config\.json: `train` must be a JSON object"),
        (
            lambda c: c["spec"].update(task="ordinal"),
            r"config\.json: invalid `spec`: task: must be one of regression, binary, ranking",
        ),
        (lambda c: c["numeric"].pop("x"), r"config\.json and vocab\.json: `numeric` must hold the numeric columns"),
        (
            lambda c: c["table_sizes"].update(city=9),
            r"vocab\.json: the vocabularies give table sizes .* but config\.json records table_sizes=",
        ),
        (
            lambda c: c["spec"]["columns"]["site"].update(hash_buckets=9),
            r"weights\.safetensors: does not match the architecture in config\.json: "
            r".*expected shape \(14, 3\), found \(12, 3\)",
        ),
    ],
)
def test_load_table_errors(tmp_path, change, message):
    encoder = TableEncoder.fit(SPEC, ROWS)
    model, config = small_model(encoder)
    folder = save(model, tmp_path / "b", model_config=config, encoder=encoder)
    rewrite_config(folder, change)
    if "expected shape" in message:  # the recorded sizes follow the spec, so only the weights disagree
        rewrite_config(folder, lambda c: c["table_sizes"].update(site=10))
    with pytest.raises(BundleError, match=message):
        load(folder)


def test_load_table_rejects_a_vocab_file_that_is_not_an_object(tmp_path):
    encoder = TableEncoder.fit(SPEC, ROWS)
    model, config = small_model(encoder)
    folder = save(model, tmp_path / "b", model_config=config, encoder=encoder)
    data = b"[]"
    (folder / "vocab.json").write_bytes(data)
    record_sum(folder, "vocab.json")
    with pytest.raises(BundleError, match=r"vocab\.json: must hold a JSON object\. Received: \[\]"):
        load(folder)


def test_save_table_rejects(tmp_path):
    encoder = TableEncoder.fit(SPEC, ROWS)
    model, config = small_model(encoder)
    with pytest.raises(ValueError, match=r"`encoder` must be a TableEncoder\. Received: dict"):
        save(model, tmp_path / "b", model_config=config, encoder={})
    other, _ = small_model(TableEncoder.fit(SPEC, {**ROWS, "city": ["a", "b", "c", "d"]}))
    with pytest.raises(
        ValueError,
        match=r"`model` does not match `model_config` and the encoder's spec.*tensor inputs\.embeddings\.0\.weight",
    ):
        save(other, tmp_path / "b", model_config=config, encoder=encoder)
    with pytest.raises(ValueError, match=r"`model_config` must be a DCNConfig"):
        save(model, tmp_path / "b", model_config={}, encoder=encoder)


# ----------------------------------------------------------------- workflows


def click_table(n=600, seed=0):
    """Clicks driven by a planted cross of `a` and `b`, with a user group, a multi-hot column and gaps."""
    rng = np.random.default_rng(seed)
    a, b = rng.integers(0, 4, n), rng.normal(size=n)
    logit = np.where(a % 2 == 0, 2.0, -2.0) * b
    frame = pd.DataFrame({
        "a": [f"v{i}" for i in a],
        "b": np.where(rng.random(n) < 0.1, np.nan, b),
        "tags": np.where(a > 1, "t1|t2", "t3"),
        "user": rng.integers(0, 20, n),
        "clicked": (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(int),
    })  # fmt: skip
    spec = FeatureSpec(
        (CategoricalColumn("a"), NumericColumn("b"), MultiHotColumn("tags")),
        label="clicked",
        task="binary",
        group="user",
    )
    return frame, spec


def test_train_table_learns_a_cross_and_predict_table_scores(tmp_path):
    frame, spec = click_table()
    config = load_config(overrides=["model.structure=cross_only", "model.embedding_dim=4", "train.epochs=8",
                                     "train.batch_size=64", "data.patience=3"])  # fmt: skip
    result = train_table(config, spec, frame, tmp_path / "b")
    validation = result.metrics["validation"]
    assert validation["rows"] == 60 and result.metrics["data"]["n_fit"] == 540
    assert validation["auc"] > 0.75 and validation["group_auc"] is not None
    assert set(result.metrics["history"][0]) == {"epoch", "loss", "val_loss", "val_auc", "val_logloss", "seconds"}
    summary = result.summary()
    assert summary["task"] == "binary" and summary["validation"] == validation
    bundle = load(result.bundle_path)
    assert bundle.metrics["validation"] == pytest.approx(validation)
    scored = predict_table(bundle, frame.iloc[:50], keep=["user"])
    assert scored.table.column_names == ["user", "prediction"] and scored.table.num_rows == 50
    assert_close(torch.tensor(scored.table.column("prediction").to_numpy()), bundle.predict(frame.iloc[:50]))
    assert scored.metrics["rows"] == 50 and 0 <= scored.metrics["auc"] <= 1
    unlabelled = predict_table(bundle, frame.drop(columns=["clicked"]))
    assert unlabelled.metrics is None and unlabelled.table.num_rows == len(frame)
    with pytest.raises(TableDataError, match=r"DataFrame: cannot keep missing column\(s\) 'id'"):
        predict_table(bundle, frame, keep=["id"])


def test_train_table_regression_with_max_rows_and_the_plain_trainer(tmp_path):
    frame, _ = click_table(200)
    spec = FeatureSpec((CategoricalColumn("a"), NumericColumn("b")), label="clicked", task="regression")
    config = load_config(
        overrides=["model.deep_units=[4]", "model.embedding_dim=2", "train.epochs=2", "data.max_train_rows=50"]
    )
    result = train_table(config, spec, frame, tmp_path / "b")
    assert result.metrics["data"]["rows"] == 50 and set(result.metrics["validation"]) >= {"rmse", "mae", "loss"}
    # The plain Trainer takes a TableBatch as it takes a tensor, shuffled or not.
    encoder, rows = fit_and_encode(spec, frame)
    model = build_table_dcn(DCNConfig(embedding_dim=2, deep_units=(4,)), spec, encoder.table_sizes)
    history = Trainer(TrainConfig(epochs=2, batch_size=32, shuffle=True)).fit(
        model, rows.features, rows.labels, (rows.features, rows.labels)
    )
    assert len(history.epochs) == 2 and "val_rmse" in history.epochs[0]


def test_train_table_rejects_movielens_settings_and_tiny_tables(tmp_path):
    frame, spec = click_table(10)
    with pytest.raises(ConfigError, match=r"data\.data_dir: applies to --dataset runs"):
        train_table(load_config(overrides=["data.data_dir=/x"]), spec, frame, tmp_path / "b")
    with pytest.raises(ValueError, match=r"DataFrame has 1 rows: too few to hold out data\.validation_fraction=0\.1"):
        train_table(load_config(), spec, frame.iloc[:1], tmp_path / "b")
