"""Bundles: exact round trips, precise load errors, the refusal of every older format, atomic saves."""

import hashlib
import importlib
import json

import numpy as np
import pytest
import safetensors.torch
import torch
from torch.testing import assert_close

from dcnrank import atomic
from dcnrank.bundle import FORMAT_NAME, FORMAT_VERSION, BundleError, check_bundle_target, load, save
from dcnrank.data.encoding.table_encoder import TableEncoder
from dcnrank.data.spec.feature_spec import CategoricalColumn, FeatureSpec, NumericColumn
from dcnrank.models import DCNConfig
from dcnrank.models.table_inputs import build_table_dcn

CONFIG = DCNConfig(embedding_dim=3, deep_units=(4,))
SPEC = FeatureSpec(
    (CategoricalColumn("item_id"), CategoricalColumn("zip"), NumericColumn("age")), label="rating", task="regression"
)
FIT = {"item_id": [10, 20, 30], "zip": ["a", "b", "a"], "age": [20.0, 30.0, None], "rating": [1.0, 2.0, 3.0]}
ENCODER = TableEncoder.fit(SPEC, FIT)  # table sizes: item_id 4, zip 3
ROWS = {"item_id": [10, 20, 30, 99], "zip": ["a", "b", "zz", "a"], "age": [25.0, None, 40.0, 20.0]}
DATA_FILES = ("weights.safetensors", "config.json", "vocab.json", "metrics.json")


def make_model(config=CONFIG, seed=0):
    torch.manual_seed(seed)
    return build_table_dcn(config, SPEC, ENCODER.table_sizes)


def save_bundle(path, model=None, config=CONFIG, **kwargs):
    kwargs.setdefault("metrics", {"validation": {"rmse": 0.9}})
    return save(
        model if model is not None else make_model(config), path, model_config=config, encoder=ENCODER, **kwargs
    )


def edit_manifest(folder, change):
    manifest = json.loads((folder / "manifest.json").read_text())
    change(manifest)
    (folder / "manifest.json").write_text(json.dumps(manifest))


def rewrite(folder, name, data):
    """Replace one file and record its new checksum, as a hand edit that keeps sums would."""
    (folder / name).write_bytes(data)
    edit_manifest(folder, lambda m: m["sha256"].update({name: hashlib.sha256(data).hexdigest()}))


def edit_config(folder, change):
    """Change config.json and record its new checksum in the manifest."""
    config = json.loads((folder / "config.json").read_text())
    change(config)
    rewrite(folder, "config.json", json.dumps(config).encode())


def hidden_siblings(folder):
    return sorted(p.name for p in folder.parent.iterdir() if p.name.startswith("."))


def old_bundle(folder, format_name, version, *, manifest=True):
    """A minimal folder of an older dcnrank's format: its five files, a manifest naming the
    format and version (none for version 1, whose config.json says it), and sums that match."""
    folder.mkdir()
    files = {
        "weights.safetensors": safetensors.torch.save({"w": torch.zeros(1)}),
        "config.json": json.dumps({"format": format_name, "format_version": version, "dcnrank_version": "0.1.0"}),
        "vocab.json": "{}",
        "metrics.json": "{}",
    }
    for name, data in files.items():
        (folder / name).write_bytes(data if isinstance(data, bytes) else data.encode())
    if manifest:
        sums = {name: hashlib.sha256((folder / name).read_bytes()).hexdigest() for name in files}
        document = {"format": format_name, "format_version": version, "dcnrank_version": "0.1.0", "sha256": sums}
        (folder / "manifest.json").write_text(json.dumps(document))
    return folder


# ----------------------------------------------------------------- round trips


@pytest.mark.parametrize(
    "config",
    [
        CONFIG,
        DCNConfig(embedding_dim=3, projection_dim=2, num_cross_layers=2, deep_units=(5, 4)),
        DCNConfig(structure="parallel", embedding_dim=2, deep_units=(3,)),
        DCNConfig(structure="cross_only", embedding_dim=2),
        DCNConfig(structure="deep_only", embedding_dim=2, deep_units=(3, 3)),
    ],
)
def test_round_trip_gives_identical_predictions(tmp_path, config):
    model = make_model(config)
    train = {"data": {"split": "random", "seed": 3}}
    folder = save_bundle(tmp_path / "b", model, config, train_config=train, metrics={"test": {"rmse": 0.875}})
    bundle = load(folder)
    model.eval()
    with torch.no_grad():
        expected = model(ENCODER.encode(ROWS).features)
    assert torch.equal(bundle.predict(ROWS), expected)
    for name, tensor in model.state_dict().items():
        assert torch.equal(bundle.model.state_dict()[name], tensor)
    assert bundle.model_config == config and bundle.train == train and bundle.path == folder
    assert bundle.encoder.to_dict() == ENCODER.to_dict()
    assert bundle.metrics == {"test": {"rmse": 0.875}}
    assert not bundle.model.training
    assert not any(p.requires_grad for p in bundle.model.parameters())


def test_load_leaves_the_global_rng_alone(tmp_path):
    folder = save_bundle(tmp_path / "b")
    torch.manual_seed(7)
    expected = torch.rand(3)
    torch.manual_seed(7)
    load(folder)
    assert torch.equal(torch.rand(3), expected)


def test_config_and_manifest_name_the_one_format(tmp_path):
    folder = save_bundle(tmp_path / "b", train_config={"train": {"epochs": 2}})
    config = json.loads((folder / "config.json").read_text())
    assert (config["format"], config["format_version"]) == (FORMAT_NAME, FORMAT_VERSION) == ("dcnrank.bundle", 3)
    assert config["dcnrank_version"] == importlib.import_module("dcnrank").__version__
    assert config["model"] == CONFIG.to_dict() and config["train"] == {"train": {"epochs": 2}}
    assert config["table_sizes"] == {"item_id": 4, "zip": 3} and config["catalog"] is None
    assert json.loads((folder / "vocab.json").read_text())["zip"] == {"kind": "str", "values": ["a", "b"]}
    manifest = json.loads((folder / "manifest.json").read_text())
    assert (manifest["format"], manifest["format_version"]) == ("dcnrank.bundle", 3)
    assert manifest["sha256"] == {name: hashlib.sha256((folder / name).read_bytes()).hexdigest() for name in DATA_FILES}


def test_train_config_object_and_numpy_metrics(tmp_path):
    class Settings:
        def to_dict(self):
            return {"train": {"epochs": 3}}

    folder = save_bundle(
        tmp_path / "b", train_config=Settings(), metrics={"rmse": np.float32(0.5), "rows": np.int64(3)}
    )
    bundle = load(folder)
    assert bundle.train == {"train": {"epochs": 3}}
    assert bundle.metrics == {"rmse": 0.5, "rows": 3}


def test_predict_in_batches_matches_one_pass(tmp_path):
    bundle = load(save_bundle(tmp_path / "b"))
    assert_close(bundle.predict(ROWS, batch_size=1), bundle.predict(ROWS))
    with pytest.raises(ValueError, match=r"`batch_size` must be a positive int\. Received: batch_size=0"):
        bundle.predict(ROWS, batch_size=0)


# ----------------------------------------------------------------- load errors


def test_load_missing_folder_and_files(tmp_path):
    with pytest.raises(BundleError, match=r"nope: bundle folder not found"):
        load(tmp_path / "nope")
    folder = save_bundle(tmp_path / "b")
    (folder / "vocab.json").unlink()
    (folder / "weights.safetensors").unlink()
    with pytest.raises(BundleError, match=r"not a complete bundle: missing weights\.safetensors, vocab\.json"):
        load(folder)


def test_load_truncated_files_name_the_file(tmp_path):
    folder = save_bundle(tmp_path / "b")
    weights = (folder / "weights.safetensors").read_bytes()
    (folder / "weights.safetensors").write_bytes(weights[: len(weights) // 2])
    with pytest.raises(BundleError, match=r"weights\.safetensors: truncated or corrupt safetensors file"):
        load(folder)
    folder = save_bundle(tmp_path / "c")
    text = (folder / "config.json").read_text()
    (folder / "config.json").write_text(text[: len(text) // 2])
    with pytest.raises(BundleError, match=r"config\.json:\d+:\d+: truncated or corrupt JSON"):
        load(folder)
    folder = save_bundle(tmp_path / "d")
    (folder / "vocab.json").write_bytes(b'{"item_id": \xff')
    with pytest.raises(BundleError, match=r"vocab\.json: corrupt file, not UTF-8"):
        load(folder)


def test_load_detects_a_flipped_byte(tmp_path):
    folder = save_bundle(tmp_path / "b")
    data = bytearray((folder / "weights.safetensors").read_bytes())
    data[-1] ^= 0xFF  # inside the tensor data: still parses
    (folder / "weights.safetensors").write_bytes(bytes(data))
    with pytest.raises(BundleError, match=r"weights\.safetensors: corrupt or modified file: SHA-256 [0-9a-f]{64}"):
        load(folder)


def test_load_never_unpickles(tmp_path):
    folder = save_bundle(tmp_path / "b")
    # A pickle in place of the weights: rejected as not safetensors, never executed.
    torch.save(make_model().state_dict(), folder / "weights.safetensors")
    with pytest.raises(BundleError, match=r"weights\.safetensors: truncated or corrupt safetensors file"):
        load(folder)


def test_load_checks_the_manifest(tmp_path):
    folder = save_bundle(tmp_path / "b")
    edit_manifest(folder, lambda m: m.update(format_version="3"))
    with pytest.raises(BundleError, match=r"unknown bundle format version: `format_version` must be 3\. Rec.*'3'"):
        load(folder)
    edit_manifest(folder, lambda m: m.update(format_version=3, format="keras"))
    with pytest.raises(BundleError, match=r"manifest\.json: not a dcnrank bundle manifest.*Received: format='keras'"):
        load(folder)
    edit_manifest(folder, lambda m: m.update(format="dcnrank.bundle"))
    edit_config(folder, lambda c: c.update(format_version=1))
    with pytest.raises(BundleError, match=r"config\.json: records format 'dcnrank\.bundle' version 1, but manifest"):
        load(folder)
    rewrite(folder, "config.json", b"[1]")
    with pytest.raises(BundleError, match=r"config\.json: must hold a JSON object"):
        load(folder)
    edit_manifest(folder, lambda m: m.pop("sha256"))
    with pytest.raises(BundleError, match=r"manifest\.json: `sha256` must map file names to SHA-256 sums\. Rec.*None"):
        load(folder)
    (folder / "manifest.json").write_text("[1]")
    with pytest.raises(BundleError, match=r"manifest\.json: must hold a JSON object"):
        load(folder)


MOVIELENS_RETRAIN = (
    r"retrain it with `dcnrank train --dataset NAME --split SPLIT --out DIR` "
    r"\(`dcnrank train --help` lists the datasets\)$"
)
TABLE_RETRAIN = r"retrain it with `dcnrank train --data FILE --spec SPEC --out DIR`$"


@pytest.mark.parametrize(
    ("format_name", "version", "manifest", "message"),
    [
        ("dcnrank.bundle", 2, True, r"a dataset model of an older dcnrank \(format 'dcnrank\.bundle' version 2, "
         r"written by dcnrank 0\.1\.0\); this dcnrank reads version 3: " + MOVIELENS_RETRAIN),
        ("dcnrank.bundle", 1, False, r"a dataset model of an older dcnrank \(format 'dcnrank\.bundle' version 1, "
         r"written by dcnrank 0\.1\.0\); this dcnrank reads version 3: " + MOVIELENS_RETRAIN),
        ("dcnrank.table_bundle", 3, True, r"a table bundle of an older dcnrank \(format 'dcnrank\.table_bundle' "
         r"version 3, written by dcnrank 0\.1\.0\); this dcnrank reads format 'dcnrank\.bundle' version 3: "
         + TABLE_RETRAIN),
        ("dcnrank.table_bundle", 2, True, r"a table bundle of an older dcnrank \(format 'dcnrank\.table_bundle' "
         r"version 2, .*" + TABLE_RETRAIN),
        ("dcnrank.table_bundle", 1, False, r"a table bundle of an older dcnrank .* version 1, .*" + TABLE_RETRAIN),
        ("dcnrank.bundle", 4, True, r"bundle format version 4 is newer than this dcnrank \(written by dcnrank "
         r"0\.1\.0\): this dcnrank reads version 3; upgrade dcnrank$"),
    ],
)  # fmt: skip
def test_every_older_or_newer_bundle_is_refused_in_one_line(tmp_path, format_name, version, manifest, message):
    folder = old_bundle(tmp_path / "old", format_name, version, manifest=manifest)
    with pytest.raises(BundleError, match=r"^" + str(folder).replace(".", r"\.") + ": " + message) as info:
        load(folder)
    assert "\n" not in str(info.value)
    assert check_bundle_target(folder) == folder  # dcnrank's own: a retrain may replace it
    assert load(save_bundle(folder)).path == folder


def test_load_reports_missing_unexpected_and_misshapen_tensors(tmp_path):
    folder = save_bundle(tmp_path / "b")
    tensors = dict(make_model().state_dict())
    del tensors["head.bias"]
    del tensors["deep.layers.0.bias"]
    tensors["extra.weight"] = torch.zeros(2)
    tensors["head.weight"] = torch.zeros(1, 5)
    tensors["inputs.embeddings.0.weight"] = tensors["inputs.embeddings.0.weight"].double()
    rewrite(folder, "weights.safetensors", safetensors.torch.save(tensors))
    with pytest.raises(BundleError) as info:
        load(folder)
    message = str(info.value)
    assert "weights.safetensors: does not match the architecture in config.json" in message
    assert "missing tensors: deep.layers.0.bias, head.bias" in message
    assert "unexpected tensors: extra.weight" in message
    assert "tensor head.weight: expected shape (1, 4), found (1, 5)" in message
    assert "tensor inputs.embeddings.0.weight: expected dtype torch.float32, found torch.float64" in message


def test_load_checks_config_fields(tmp_path):
    folder = save_bundle(tmp_path / "b")
    edit_config(folder, lambda c: c.pop("train"))
    with pytest.raises(BundleError, match=r"config\.json: missing key\(s\) train"):
        load(folder)
    edit_config(folder, lambda c: c.update(train=[]))
    with pytest.raises(BundleError, match=r"`train` must be a JSON object"):
        load(folder)
    edit_config(folder, lambda c: c.update(train={}, model={**CONFIG.to_dict(), "structure": "tower"}))
    with pytest.raises(BundleError, match=r"config\.json: invalid `model`: `structure` must be one of"):
        load(folder)
    edit_config(folder, lambda c: c.update(model={"width": 3}))
    with pytest.raises(BundleError, match=r"invalid `model`: .*width"):
        load(folder)
    edit_config(folder, lambda c: c.update(model=CONFIG.to_dict(), table_sizes={"item_id": 5, "zip": 3}))
    with pytest.raises(BundleError, match=r"vocab\.json: the vocabularies give table sizes .* records table_sizes="):
        load(folder)


def test_load_checks_metrics(tmp_path):
    folder = save_bundle(tmp_path / "b")
    rewrite(folder, "metrics.json", b"[0.9]")
    with pytest.raises(BundleError, match=r"metrics\.json: must hold a JSON object\. Received: \[0\.9\]"):
        load(folder)


# ----------------------------------------------------------------- save errors and atomicity


def test_save_validates_arguments(tmp_path):
    target = tmp_path / "b"
    with pytest.raises(ValueError, match=r"`model` must be a torch\.nn\.Module\. Received: dict"):
        save({}, target, model_config=CONFIG, encoder=ENCODER)
    with pytest.raises(ValueError, match=r"`model_config` must be a DCNConfig\. Received: dict"):
        save(make_model(), target, model_config={}, encoder=ENCODER)
    with pytest.raises(ValueError, match=r"`encoder` must be a TableEncoder\. Received: dict"):
        save(make_model(), target, model_config=CONFIG, encoder={})
    other = build_table_dcn(CONFIG, SPEC, {"item_id": 7, "zip": 3})
    with pytest.raises(ValueError, match=r"table sizes \{'item_id': 4, 'zip': 3\}: .*expected shape \(7, 3\), found"):
        save(other, target, model_config=CONFIG, encoder=ENCODER)
    with pytest.raises(ValueError, match=r"`metrics` must be JSON-serialisable without NaN"):
        save_bundle(target, metrics={"rmse": float("nan")})
    with pytest.raises(ValueError, match=r"`metrics` must be JSON-serialisable without NaN"):
        save_bundle(target, metrics={"rmse": np.float32("nan")})
    with pytest.raises(ValueError, match=r"`metrics` must be JSON-serialisable.*object"):
        save_bundle(target, metrics={"model": object()})
    with pytest.raises(ValueError, match=r"`train_config` must be a mapping or have a to_dict\(\) method.*int"):
        save_bundle(target, train_config=3)
    assert not target.exists() and hidden_siblings(target) == []


def test_save_refuses_to_replace_what_is_not_a_bundle(tmp_path):
    (tmp_path / "file").write_text("x")
    with pytest.raises(BundleError, match=r"file: exists and is not a folder; refusing"):
        save_bundle(tmp_path / "file")
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "todo.txt").write_text("keep me")
    message = r"notes: exists and is not a dcnrank bundle \(it holds todo\.txt, .*\); refusing"
    with pytest.raises(BundleError, match=message):
        save_bundle(tmp_path / "notes")
    assert (tmp_path / "notes" / "todo.txt").read_text() == "keep me"
    foreign = old_bundle(tmp_path / "foreign", "keras", 3)
    with pytest.raises(BundleError, match=r"foreign: exists and is not a dcnrank bundle \(its manifest\.json does not"):
        save_bundle(foreign)
    (tmp_path / "empty").mkdir()
    assert load(save_bundle(tmp_path / "empty")).metrics == {"validation": {"rmse": 0.9}}


def test_save_replaces_an_old_bundle(tmp_path):
    target = tmp_path / "nested" / "b"
    save_bundle(target, make_model(seed=0))
    new = make_model(seed=1)
    save_bundle(target, new, metrics={"v": 2})
    bundle = load(target)
    assert bundle.metrics == {"v": 2}
    assert torch.equal(bundle.model.state_dict()["head.weight"], new.state_dict()["head.weight"])
    assert hidden_siblings(target) == []


def test_crash_while_writing_keeps_the_old_bundle(tmp_path, monkeypatch):
    target = tmp_path / "b"
    save_bundle(target, make_model(seed=0), metrics={"v": 1})
    old = load(target).predict(ROWS)
    calls = []
    write_file = atomic.write_file

    def failing_write(path, data):
        calls.append(path.name)
        if len(calls) == 2:
            write_file(path, data[: len(data) // 2])  # half a file, then the "crash"
            raise OSError("disk full")
        write_file(path, data)

    monkeypatch.setattr(atomic, "write_file", failing_write)
    with pytest.raises(OSError, match=r"disk full"):
        save_bundle(target, make_model(seed=1), metrics={"v": 2})
    assert calls == ["weights.safetensors", "vocab.json"]
    bundle = load(target)
    assert bundle.metrics == {"v": 1}
    assert torch.equal(bundle.predict(ROWS), old)
    assert hidden_siblings(target) == []


def test_crash_while_swapping_puts_the_old_bundle_back(tmp_path, monkeypatch):
    target = tmp_path / "b"
    save_bundle(target, metrics={"v": 1})
    replace = atomic.os.replace
    calls = []

    def failing_replace(source, destination):
        calls.append((source, destination))
        if len(calls) == 2:  # the old bundle is aside; moving the new one in fails
            raise OSError("power cut")
        replace(source, destination)

    monkeypatch.setattr(atomic.os, "replace", failing_replace)
    with pytest.raises(OSError, match=r"power cut"):
        save_bundle(target, metrics={"v": 2})
    monkeypatch.undo()
    assert load(target).metrics == {"v": 1}
    assert hidden_siblings(target) == []
