"""`dcnrank.export` and `dcnrank export`: the ONNX file computes what the eager model computes
(onnxruntime within 1e-5 on several batch sizes), with the documented signature."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import onnx
import onnxruntime
import pytest
import torch
from test_serve import save_tiny_bundle

from dcnrank import __version__
from dcnrank.bundle import Bundle, load
from dcnrank.export import (
    EXPORT_FORMATS,
    ONNX_INPUT,
    ONNX_OUTPUT,
    ExportError,
    default_path,
    export_bundle,
    export_onnx,
)
from dcnrank.models import DCNConfig

CONFIGS = {
    "stacked": DCNConfig(embedding_dim=3, deep_units=(8, 4)),
    "parallel_low_rank": DCNConfig(
        embedding_dim=4, structure="parallel", projection_dim=3, num_cross_layers=2, deep_units=(6,)
    ),
}


@pytest.fixture(scope="module", params=list(CONFIGS))
def exported(request, tmp_path_factory):
    folder, _ = save_tiny_bundle(tmp_path_factory.mktemp(request.param), CONFIGS[request.param])
    bundle = load(folder)
    return bundle, export_bundle(bundle, "onnx")


def random_indices(bundle: Bundle, batch: int, seed: int) -> torch.Tensor:
    """`(batch, F)` valid indices, OOV rows included."""
    generator = torch.Generator().manual_seed(seed)
    sizes = torch.tensor(bundle.config.vocabulary_sizes)
    return (torch.rand(batch, len(sizes), generator=generator) * sizes).long()


@pytest.mark.parametrize("batch", [1, 3, 64, 1000])
def test_onnxruntime_matches_eager(exported, batch):
    bundle, path = exported
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    indices = random_indices(bundle, batch, seed=batch)
    (scores,) = session.run([ONNX_OUTPUT], {ONNX_INPUT: indices.numpy()})
    assert scores.dtype == np.float32 and scores.shape == (batch,)
    torch.testing.assert_close(torch.from_numpy(scores), bundle.predict(indices), rtol=0, atol=1e-5)


def test_raw_values_through_bundle_encode_match_too(exported):
    bundle, path = exported
    columns = {
        "movie_id": [1, 3, 99], "user_id": [1, 2, 3], "user_gender": [1, 0, 1], "bucketized_user_age": [18, 50, 1],
        "user_zip_code": ["85711", "94043", "T8H1N"], "user_occupation_text": ["technician", "other", "student"],
    }  # fmt: skip
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    (scores,) = session.run(None, {ONNX_INPUT: bundle.encode(columns).numpy()})
    torch.testing.assert_close(torch.from_numpy(scores), bundle.predict(columns), rtol=0, atol=1e-5)


def test_signature_and_metadata(exported):
    bundle, path = exported
    model = onnx.load(str(path))
    (inputs,) = model.graph.input
    (outputs,) = model.graph.output
    assert inputs.name == ONNX_INPUT and inputs.type.tensor_type.elem_type == onnx.TensorProto.INT64
    assert [d.dim_param or d.dim_value for d in inputs.type.tensor_type.shape.dim] == ["batch", 6]
    assert outputs.name == ONNX_OUTPUT and outputs.type.tensor_type.elem_type == onnx.TensorProto.FLOAT
    assert [d.dim_param or d.dim_value for d in outputs.type.tensor_type.shape.dim] == ["batch"]
    metadata = {prop.key: prop.value for prop in model.metadata_props}
    assert json.loads(metadata["feature_names"]) == list(bundle.feature_names)
    assert json.loads(metadata["vocabulary_sizes"]) == list(bundle.config.vocabulary_sizes)
    assert metadata["dcnrank_version"] == __version__
    assert metadata["structure"] == bundle.config.model.structure
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
    unsaved = Bundle(bundle.model, bundle.config, bundle.vocabularies)
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


def test_cli_export_writes_the_file_and_reports_the_signature(tmp_path):
    folder, _ = save_tiny_bundle(tmp_path)
    out = tmp_path / "model.onnx"
    proc = run_cli("export", "--model", folder, "--format", "onnx", "--out", out)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith(f"exported {out}: input features int64 (batch, 6) = [movie_id, user_id, ")
    assert "output score float32 (batch,)" in proc.stdout
    bundle = load(folder)
    indices = random_indices(bundle, 5, seed=0)
    session = onnxruntime.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    (scores,) = session.run(None, {ONNX_INPUT: indices.numpy()})
    torch.testing.assert_close(torch.from_numpy(scores), bundle.predict(indices), rtol=0, atol=1e-5)


def test_cli_unknown_format_exits_2(tmp_path, capsys):
    from dcnrank.cli.main import main

    assert main(["export", "--model", str(tmp_path / "none"), "--format", "tflite"]) == 2
    assert capsys.readouterr().err == "dcnrank export: error: --format must be one of onnx. Received: 'tflite'\n"


@pytest.mark.parametrize("module", ["formats", "onnx_export"])
def test_docstring_examples_run(module):
    import doctest
    import importlib

    result = doctest.testmod(importlib.import_module(f"dcnrank.export.{module}"))
    assert result.failed == 0 and result.attempted > 0
