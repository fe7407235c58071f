"""`dcnrank.export` and `dcnrank export`: the ONNX file computes what the eager model computes
(onnxruntime within 1e-5 on several batch sizes), with the documented signature."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
import torch
from bundle_support import SPEC, TABLE, build_bundle

from dcnrank import __version__
from dcnrank.bundle import Bundle, load
from dcnrank.data.encoding.table_batch import PADDING, TableBatch
from dcnrank.export import (
    EXPORT_FORMATS,
    ONNX_OUTPUT,
    ExportError,
    default_path,
    export_bundle,
    export_onnx,
)
from dcnrank.export.onnx_export import onnx_inputs
from dcnrank.models import DCNConfig

onnx = pytest.importorskip("onnx")
onnxruntime = pytest.importorskip("onnxruntime")
pytest.importorskip("onnxscript")

CONFIGS = {
    "stacked": DCNConfig(embedding_dim=3, deep_units=(8, 4)),
    "parallel_low_rank": DCNConfig(
        embedding_dim=4, structure="parallel", projection_dim=3, num_cross_layers=2, deep_units=(6,)
    ),
}
INPUTS = ["categorical", "numeric", "missing", "multi_hot_0"]
# Raw rows: known and unknown ids and values, missing cells, an empty and a long item list.
ROWS = {
    "user_id": [1, 2, 99, None],
    "item_id": [1, 3, 77, 5],
    "age": [21.0, None, 80.5, 30.0],
    "zip": ["00000", "00049", "nowhere", None],
    "occupation": ["student", "writer", "pilot", None],
    "genres": ["comedy|drama", "", "action|drama|comedy|new", None],
    "year": [1991.0, None, 2030.0, 1995.0],
    "device": ["web", "phone", None, "watch"],
}


@pytest.fixture(scope="module", params=list(CONFIGS))
def exported(request, tmp_path_factory):
    folder = build_bundle(tmp_path_factory.mktemp(request.param) / "bundle", config=CONFIGS[request.param])
    bundle = load(folder)
    return bundle, export_bundle(bundle, "onnx")


def random_inputs(bundle: Bundle, batch: int, seed: int) -> dict[str, torch.Tensor]:
    """Valid encoded tensors of `batch` rows (OOV rows, missing numbers and padding included)."""
    generator = torch.Generator().manual_seed(seed)
    sizes = bundle.encoder.table_sizes
    bounds = torch.tensor([sizes[c.name] for c in SPEC.of_type("categorical")])
    missing = torch.rand(batch, 2, generator=generator) < 0.3
    items = (torch.rand(batch, 4, generator=generator) * sizes["genres"]).int()  # the encoder's int32
    lengths = (torch.rand(batch, 1, generator=generator) * 5).long()
    return {
        "categorical": (torch.rand(batch, len(bounds), generator=generator) * bounds).int(),
        "numeric": torch.randn(batch, 2, generator=generator).masked_fill(missing, 0.0),
        "missing": missing,
        "multi_hot_0": items.masked_fill(torch.arange(4) >= lengths, PADDING),
    }


def eager(bundle: Bundle, inputs: dict[str, torch.Tensor]) -> torch.Tensor:
    """The eager model's probabilities (the task is binary) of encoded tensors."""
    batch = TableBatch(inputs["categorical"], inputs["numeric"], inputs["missing"], (inputs["multi_hot_0"],))
    with torch.inference_mode():
        return torch.sigmoid(bundle.model(batch))


def feed(bundle: Bundle, rows) -> dict[str, np.ndarray]:
    """Raw rows encoded by the bundle, as the file's inputs."""
    features = bundle.encode(rows).features
    tensors = {"categorical": features.categorical, "numeric": features.numeric, "missing": features.missing,
               "multi_hot_0": features.multi_hot[0]}  # fmt: skip
    return {name: tensors[name].numpy() for name in onnx_inputs(bundle)}


def session(path):
    return onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])


@pytest.mark.parametrize("batch", [1, 3, 64, 1000])
def test_onnxruntime_matches_eager(exported, batch):
    bundle, path = exported
    inputs = random_inputs(bundle, batch, seed=batch)
    (scores,) = session(path).run([ONNX_OUTPUT], {name: t.numpy() for name, t in inputs.items()})
    assert scores.dtype == np.float32 and scores.shape == (batch,)
    torch.testing.assert_close(torch.from_numpy(scores), eager(bundle, inputs), rtol=0, atol=1e-5)


def test_raw_values_through_bundle_encode_match_too(exported):
    bundle, path = exported
    (scores,) = session(path).run(None, feed(bundle, ROWS))
    torch.testing.assert_close(torch.from_numpy(scores), bundle.predict(ROWS), rtol=0, atol=1e-5)
    (scores,) = session(path).run(None, feed(bundle, TABLE))
    torch.testing.assert_close(torch.from_numpy(scores), bundle.predict(TABLE), rtol=0, atol=1e-5)


def test_signature_and_metadata(exported):
    bundle, path = exported
    model = onnx.load(str(path))
    (output,) = model.graph.output

    def dims(value):
        return [d.dim_param or d.dim_value for d in value.type.tensor_type.shape.dim]

    inputs = {i.name: (i.type.tensor_type.elem_type, dims(i)) for i in model.graph.input}
    assert list(inputs) == INPUTS == onnx_inputs(bundle)
    assert inputs["categorical"] == (onnx.TensorProto.INT32, ["batch", 5])  # user_id, item_id, zip, occupation, device
    assert inputs["numeric"] == (onnx.TensorProto.FLOAT, ["batch", 2])  # age, year
    assert inputs["missing"] == (onnx.TensorProto.BOOL, ["batch", 2])
    assert inputs["multi_hot_0"][0] == onnx.TensorProto.INT32 and inputs["multi_hot_0"][1][0] == "batch"
    assert output.name == ONNX_OUTPUT and output.type.tensor_type.elem_type == onnx.TensorProto.FLOAT
    assert dims(output) == ["batch"]
    metadata = {prop.key: prop.value for prop in model.metadata_props}
    assert json.loads(metadata["inputs"]) == INPUTS
    assert json.loads(metadata["columns"]) == {
        "categorical": ["user_id", "item_id", "zip", "occupation", "device"], "numeric": ["age", "year"],
        "multi_hot": ["genres"],
    }  # fmt: skip
    assert json.loads(metadata["table_sizes"]) == bundle.encoder.table_sizes
    assert metadata["dcnrank_version"] == __version__ and metadata["task"] == "binary"
    assert metadata["structure"] == bundle.model_config.structure and metadata["histories"] == "none"
    assert path == default_path(bundle.path, "onnx") == bundle.path.parent / "bundle.onnx"


def test_export_format_errors(exported):
    bundle, _ = exported
    assert EXPORT_FORMATS == {"onnx": ".onnx"}
    with pytest.raises(ValueError, match=r"`format` must be one of onnx\. Received: format='tflite'"):
        export_bundle(bundle, "tflite")
    with pytest.raises(ValueError, match=r"`format` must be one of onnx\. Received: format='ONNX'"):
        default_path("runs/dcn", "ONNX")


def test_export_path_errors(exported, tmp_path):
    bundle, _ = exported
    with pytest.raises(ValueError, match=r"`path` must be a file, not a folder\. Received: path="):
        export_onnx(bundle, tmp_path)
    with pytest.raises(ValueError, match=r"`path`'s folder does not exist\. Received: path="):
        export_onnx(bundle, tmp_path / "no" / "model.onnx")
    unsaved = Bundle(bundle.model, bundle.model_config, bundle.encoder)
    with pytest.raises(ValueError, match=r"`path` is required for a bundle that was not loaded from a folder"):
        export_bundle(unsaved, "onnx")


def test_export_replaces_only_its_own_onnx_file(exported, tmp_path):
    bundle, onnx_path = exported
    users = tmp_path / "ratings.csv"
    users.write_text("user,item\n1,2\n")
    with pytest.raises(ValueError, match=r"ratings\.csv: exists and is not an ONNX model exported by dcnrank"):
        export_onnx(bundle, users)
    assert users.read_text() == "user,item\n1,2\n"
    again = tmp_path / "again.onnx"
    again.write_bytes(onnx_path.read_bytes())
    assert export_onnx(bundle, again) == again  # a dcnrank export is replaced
    onnx.checker.check_model(onnx.load(str(again)))


def test_a_mismatch_with_eager_is_an_error_and_writes_nothing(exported, tmp_path, monkeypatch):
    bundle, _ = exported
    monkeypatch.setattr("dcnrank.export.onnx_export.ONNX_TOLERANCE", -1.0)  # nothing can pass
    target = tmp_path / "model.onnx"
    with pytest.raises(ExportError, match=r"onnxruntime's scores differ from the eager model's by up to .*"
                       r"the file was not written"):  # fmt: skip
        export_onnx(bundle, target)
    assert list(tmp_path.iterdir()) == []


def test_missing_onnxscript_is_a_clear_import_error(exported, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "onnxscript", None)
    with pytest.raises(ImportError, match=r"ONNX export needs onnxscript: pip install 'dcnrank\[onnx\]'"):
        export_onnx(exported[0], tmp_path / "m.onnx")


def run_cli(*args):
    return subprocess.run(
        [sys.executable, "-m", "dcnrank", *map(str, args)], capture_output=True, text=True, timeout=600
    )


def test_cli_export_writes_the_file_and_reports_the_signature(trained_bundle, tmp_path):
    out = tmp_path / "model.onnx"
    proc = run_cli("export", "--model", trained_bundle, "--format", "onnx", "--out", out)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == (
        f"exported {out}: inputs categorical, numeric, missing, multi_hot_0, output score float32 (batch,); "
        "onnxruntime matches the eager model within 1e-05\n"
    )
    bundle = load(trained_bundle)
    # pairs outside the training rows (the histories go in pooled per owner): exact
    rows = {**ROWS, "user_id": [1, 2, 99, 3], "item_id": [1, 5, 2, 77]}
    (scores,) = session(out).run(None, feed(bundle, rows))
    torch.testing.assert_close(torch.from_numpy(scores), bundle.predict(rows), rtol=0, atol=1e-5)


def test_cli_unknown_format_exits_2(tmp_path, capsys):
    from dcnrank.cli.main import main

    assert main(["export", "--model", str(tmp_path / "none"), "--format", "tflite"]) == 2
    assert capsys.readouterr().err == "dcnrank export: error: --format must be one of onnx. Received: 'tflite'\n"
