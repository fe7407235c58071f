"""ONNX export of a table bundle (categorical, numeric and multi-hot inputs): onnxruntime
on the encoded tensors matches the eager model; what cannot be exported is refused."""

import json

import numpy as np
import pytest
import torch
from test_catalog import FIT, SPEC, make_bundle

from dcnrank.bundle import Catalog, load, save
from dcnrank.cli.main import main
from dcnrank.data.encoding.table_encoder import TableEncoder
from dcnrank.export import export_bundle, export_onnx
from dcnrank.export.onnx_export import onnx_inputs
from dcnrank.models import DCNConfig
from dcnrank.models.table_inputs import build_table_dcn

onnx = pytest.importorskip("onnx")
onnxruntime = pytest.importorskip("onnxruntime")
pytest.importorskip("onnxscript")

ROWS = {
    "user_id": [1, 2, 99, None],
    "item_id": ["a", "c", "zz", "b"],
    "age": [30.0, None, 12.5, 80.0],
    "genres": ["x|y", "", "z|y|x|q", None],
    "year": [1990.0, 2001.0, None, 3000.0],
    "device": ["web", "phone", None, "tablet"],
}


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    folder = make_bundle(tmp_path_factory.mktemp("export") / "b")
    bundle = load(folder)
    return bundle, export_bundle(bundle, "onnx")


def feed(bundle, rows):
    features = bundle.encode(rows).features
    tensors = {"categorical": features.categorical, "numeric": features.numeric, "missing": features.missing}
    tensors.update({f"multi_hot_{j}": t for j, t in enumerate(features.multi_hot)})
    return {name: tensors[name].numpy() for name in onnx_inputs(bundle)}


def test_onnxruntime_matches_the_eager_model_on_encoded_rows(exported):
    bundle, path = exported
    assert path == bundle.path.parent / "b.onnx"
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    assert [i.name for i in session.get_inputs()] == ["categorical", "numeric", "missing", "multi_hot_0"]
    for rows in (ROWS, {name: values[:1] for name, values in ROWS.items()}, FIT):
        (found,) = session.run(["score"], feed(bundle, rows))
        torch.testing.assert_close(torch.from_numpy(found), bundle.predict(rows), rtol=1e-5, atol=1e-6)
        assert found.dtype == np.float32 and bool(((found >= 0) & (found <= 1)).all())  # probabilities


def test_metadata_names_every_input_column(exported):
    bundle, path = exported
    props = {p.key: p.value for p in onnx.load(str(path)).metadata_props}
    assert json.loads(props["inputs"]) == ["categorical", "numeric", "missing", "multi_hot_0"]
    assert json.loads(props["columns"]) == {"categorical": ["user_id", "item_id", "device"],
                                            "numeric": ["age", "year"], "multi_hot": ["genres"]}  # fmt: skip
    assert json.loads(props["table_sizes"]) == bundle.encoder.table_sizes and props["task"] == "binary"


def test_regression_and_numeric_only_bundles(tmp_path):
    from dcnrank.data.spec.feature_spec import FeatureSpec, NumericColumn

    spec = FeatureSpec((NumericColumn("x"), NumericColumn("z")), label="y", task="regression")
    folder = make_bundle(tmp_path / "r", spec=spec, fit={"x": [1.0, 2.0, None], "z": [0.0, 5.0, 1.0], "y": [1, 2, 3]},
                         catalog=False)  # fmt: skip
    bundle = load(folder)
    path = export_onnx(bundle, tmp_path / "r.onnx")
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    rows = {"x": [0.5, None, 9.0], "z": [1.0, 2.0, None]}
    (found,) = session.run(["score"], feed(bundle, rows))
    torch.testing.assert_close(torch.from_numpy(found), bundle.predict(rows), rtol=1e-5, atol=1e-6)


def test_histories_export_as_pooled_vectors_per_owner(tmp_path):
    encoder = TableEncoder.fit(SPEC, FIT)
    config = DCNConfig(structure="cross_only", embedding_dim=2, user_history=True, item_history=True)
    torch.manual_seed(0)
    model = build_table_dcn(config, SPEC, encoder.table_sizes)
    folder = save(model, tmp_path / "h", model_config=config, encoder=encoder,
                        catalog=Catalog.build(SPEC, encoder, FIT))  # fmt: skip
    bundle = load(folder)
    path = export_onnx(bundle, tmp_path / "h.onnx")
    props = {p.key: p.value for p in onnx.load(str(path)).metadata_props}
    assert props["histories"].startswith("pooled per owner")
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    # pairs outside the fit rows (user 1 never had c, user 2 never had b; 99 and zz unknown): exact
    rows = {
        **{name: [None] * 4 for name in SPEC.input_names},
        "user_id": [1, 2, 99, 3],
        "item_id": ["c", "b", "a", "zz"],
    }
    (found,) = session.run(["score"], feed(bundle, rows))
    torch.testing.assert_close(torch.from_numpy(found), bundle.predict(rows), rtol=1e-5, atol=1e-6)
    # a fit pair: the eager model leaves the scored item out of the user's history, the file does not
    fit_pair = {**{name: [None] for name in SPEC.input_names}, "user_id": [1], "item_id": ["a"]}
    (found,) = session.run(["score"], feed(bundle, fit_pair))
    assert abs(float(found[0]) - float(bundle.predict(fit_pair)[0])) > 1e-6


def test_export_cli_on_a_table_bundle(exported, tmp_path, capsys):
    bundle, _ = exported
    out = tmp_path / "cli.onnx"
    assert main(["export", "--model", str(bundle.path), "--format", "onnx", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert f"exported {out}: inputs categorical, numeric, missing, multi_hot_0, output score" in printed
    (found,) = onnxruntime.InferenceSession(str(out), providers=["CPUExecutionProvider"]).run(
        ["score"], feed(bundle, ROWS)
    )
    torch.testing.assert_close(torch.from_numpy(found), bundle.predict(ROWS), rtol=1e-5, atol=1e-6)


def test_spec_is_the_shared_one():
    assert SPEC.of_type("multi_hot")[0].name == "genres"
