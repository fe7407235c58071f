"""Bundles: exact round trips, encoding raw values, precise load errors, atomic saves."""

import doctest
import hashlib
import importlib
import json

import numpy as np
import pytest
import safetensors.torch
import torch
from torch.testing import assert_close

from dcnrank import atomic
from dcnrank.bundle import FORMAT_VERSION, Bundle, BundleConfig, BundleError, load, save
from dcnrank.data import Vocabulary
from dcnrank.models import DCNConfig, build_dcn

CONFIG = DCNConfig(embedding_dim=3, deep_units=(4,))
VOCABULARIES = {
    "movie_id": Vocabulary.fit([10, 20, 30]),  # size 4
    "user_zip_code": Vocabulary.fit(["a", "b"]),  # size 3
}
ROWS = {"movie_id": [10, 20, 30, 99], "user_zip_code": ["a", "b", "zz", "a"]}


def make_model(config=CONFIG, seed=0):
    torch.manual_seed(seed)
    return build_dcn(config, vocabulary_sizes=[v.size for v in VOCABULARIES.values()])


def save_bundle(path, model=None, config=CONFIG, **kwargs):
    kwargs.setdefault("vocabularies", VOCABULARIES)
    kwargs.setdefault("metrics", {"test": {"rmse": 0.9}})
    return save(model if model is not None else make_model(config), path, model_config=config, **kwargs)


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
    indices = torch.tensor([[0, 0], [1, 2], [3, 1], [2, 0]])
    model.eval()
    with torch.no_grad():
        expected = model(indices)
    assert torch.equal(bundle.predict(indices), expected)
    assert torch.equal(bundle.predict(ROWS), model(bundle.encode(ROWS)).detach())
    for name, tensor in model.state_dict().items():
        assert torch.equal(bundle.model.state_dict()[name], tensor)
    assert bundle.config == BundleConfig(
        model=config,
        feature_names=("movie_id", "user_zip_code"),
        vocabulary_sizes=(4, 3),
        train=train,
        dcnrank_version=bundle.config.dcnrank_version,
        format_version=FORMAT_VERSION,
    )
    assert bundle.vocabularies == VOCABULARIES
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


def test_config_json_holds_what_was_promised(tmp_path):
    folder = save_bundle(tmp_path / "b", train_config={"train": {"epochs": 2}})
    config = json.loads((folder / "config.json").read_text())
    assert config["format"] == "dcnrank.bundle" and config["format_version"] == FORMAT_VERSION == 2
    assert config["dcnrank_version"] == importlib.import_module("dcnrank").__version__
    assert config["model"] == CONFIG.to_dict()
    assert config["features"] == [
        {"name": "movie_id", "vocabulary_size": 4},
        {"name": "user_zip_code", "vocabulary_size": 3},
    ]
    assert config["train"] == {"train": {"epochs": 2}}
    assert json.loads((folder / "vocab.json").read_text())["user_zip_code"] == {"kind": "str", "values": ["a", "b"]}
    assert sorted(p.name for p in folder.iterdir()) == [
        "config.json", "manifest.json", "metrics.json", "vocab.json", "weights.safetensors"
    ]  # fmt: skip
    manifest = json.loads((folder / "manifest.json").read_text())
    assert manifest["format"] == "dcnrank.bundle" and manifest["format_version"] == FORMAT_VERSION
    assert manifest["sha256"] == {
        name: hashlib.sha256((folder / name).read_bytes()).hexdigest()
        for name in ("weights.safetensors", "config.json", "vocab.json", "metrics.json")
    }


def test_train_config_object_and_numpy_metrics(tmp_path):
    from dcnrank.config import TrainRunConfig

    folder = save_bundle(
        tmp_path / "b", train_config=TrainRunConfig(), metrics={"rmse": np.float32(0.5), "rows": np.int64(3)}
    )
    bundle = load(folder)
    assert bundle.config.train == json.loads(json.dumps(TrainRunConfig().to_dict()))
    assert bundle.metrics == {"rmse": 0.5, "rows": 3}


# ----------------------------------------------------------------- encoding and scoring


def test_encode_by_hand(tmp_path):
    bundle = load(save_bundle(tmp_path / "b"))
    # movie 10, 20, 30 -> 1, 2, 3; 99 unseen -> 0. zip "a", "b" -> 1, 2; "zz" -> 0.
    assert bundle.encode(ROWS).tolist() == [[1, 1], [2, 2], [3, 0], [0, 1]]
    assert bundle.encode({"movie_id": [20]}, missing_as_oov=True).tolist() == [[2, 0]]
    assert bundle.encode({"movie_id": 20, "user_zip_code": "b"}).tolist() == [[2, 2]]


def test_encode_errors(tmp_path):
    bundle = load(save_bundle(tmp_path / "b"))
    with pytest.raises(ValueError, match=r"unknown feature\(s\) 'genre'; this model's features are movie_id, user_zip"):
        bundle.encode({**ROWS, "genre": [1, 2, 3, 4]})
    with pytest.raises(ValueError, match=r"missing feature\(s\) 'user_zip_code'"):
        bundle.encode({"movie_id": [10]})
    with pytest.raises(ValueError, match=r"same length\. Received lengths: \{'movie_id': 2, 'user_zip_code': 1\}"):
        bundle.encode({"movie_id": [10, 20], "user_zip_code": ["a"]})
    with pytest.raises(ValueError, match=r"feature 'movie_id': this vocabulary holds int values"):
        bundle.encode({"movie_id": ["10"], "user_zip_code": ["a"]})
    with pytest.raises(ValueError, match=r"feature 'movie_id' must be 1-D\. Received: shape=\(1, 1\)"):
        bundle.encode({"movie_id": [[10]], "user_zip_code": ["a"]})
    with pytest.raises(ValueError, match=r"`columns` must hold at least one feature"):
        bundle.encode({}, missing_as_oov=True)


def test_predict_checks_index_tensors(tmp_path):
    bundle = load(save_bundle(tmp_path / "b"))
    with pytest.raises(ValueError, match=r"column 1 \('user_zip_code'\) must hold indices in 0\.\.2\. Received: 3"):
        bundle.predict(torch.tensor([[1, 1], [0, 3]]))
    with pytest.raises(ValueError, match=r"column 0 \('movie_id'\) must hold indices in 0\.\.3\. Received: -1"):
        bundle.predict(torch.tensor([[-1, 1]]))
    with pytest.raises(ValueError, match=r"must be an int64 tensor.*Received: Tensor torch\.float32"):
        bundle.predict(torch.zeros(1, 2))
    with pytest.raises(ValueError, match=r"must have shape \(N, 2\)\. Received: shape=\(1, 3\)"):
        bundle.predict(torch.zeros(1, 3, dtype=torch.int64))
    with pytest.raises(ValueError, match=r"`batch_size` must be a positive int\. Received: batch_size=0"):
        bundle.predict(ROWS, batch_size=0)
    assert bundle.predict(torch.zeros(0, 2, dtype=torch.int64)).shape == (0,)


def test_predict_in_batches_matches_one_pass(tmp_path):
    bundle = load(save_bundle(tmp_path / "b"))
    assert_close(bundle.predict(ROWS, batch_size=1), bundle.predict(ROWS))


def test_bundle_rejects_vocabularies_that_disagree_with_config():
    config = BundleConfig(CONFIG, ("movie_id", "user_zip_code"), (4, 3))
    with pytest.raises(ValueError, match=r"must name the config's features in order"):
        Bundle(make_model(), config, dict(reversed(VOCABULARIES.items())))
    with pytest.raises(ValueError, match=r"sizes must match the config's vocabulary_sizes\. Received: \[4, 3\]"):
        Bundle(make_model(), BundleConfig(CONFIG, config.feature_names, (5, 3)), VOCABULARIES)


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
    (folder / "vocab.json").write_bytes(b'{"movie_id": \xff')
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


def test_load_format_versions(tmp_path):
    folder = save_bundle(tmp_path / "b")
    edit_manifest(folder, lambda m: m.update(format_version=3))
    with pytest.raises(BundleError, match=r"manifest\.json: bundle format version 3 is newer than .* \(2\).*upgrade"):
        load(folder)
    edit_manifest(folder, lambda m: m.update(format_version="2"))
    with pytest.raises(BundleError, match=r"unknown bundle format version.*Received: format_version='2'"):
        load(folder)
    edit_manifest(folder, lambda m: m.update(format_version=2, format="keras"))
    with pytest.raises(BundleError, match=r"manifest\.json: not a dcnrank bundle manifest.*Received: format='keras'"):
        load(folder)
    edit_manifest(folder, lambda m: m.update(format="dcnrank.bundle"))
    edit_config(folder, lambda c: c.update(format_version=1))
    with pytest.raises(BundleError, match=r"config\.json: records format 'dcnrank\.bundle' version 1, but manifest"):
        load(folder)
    rewrite(folder, "config.json", b"[1]")
    with pytest.raises(BundleError, match=r"config\.json: must hold a JSON object"):
        load(folder)
    (folder / "manifest.json").write_text("[1]")
    with pytest.raises(BundleError, match=r"manifest\.json: must hold a JSON object"):
        load(folder)


def test_load_reports_missing_unexpected_and_misshapen_tensors(tmp_path):
    folder = save_bundle(tmp_path / "b")
    tensors = dict(make_model().state_dict())
    del tensors["head.bias"]
    del tensors["deep.layers.0.bias"]
    tensors["extra.weight"] = torch.zeros(2)
    tensors["head.weight"] = torch.zeros(1, 5)
    tensors["inputs.weight"] = tensors["inputs.weight"].double()
    rewrite(folder, "weights.safetensors", safetensors.torch.save(tensors))
    with pytest.raises(BundleError) as info:
        load(folder)
    message = str(info.value)
    assert "weights.safetensors: does not match the architecture in config.json" in message
    assert "missing tensors: deep.layers.0.bias, head.bias" in message
    assert "unexpected tensors: extra.weight" in message
    assert "tensor head.weight: expected shape (1, 4), found (1, 5)" in message
    assert "tensor inputs.weight: expected dtype torch.float32, found torch.float64" in message


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
    edit_config(folder, lambda c: c.update(model=CONFIG.to_dict(), features=[{"name": "movie_id"}]))
    with pytest.raises(BundleError, match=r"`features` must be a non-empty list of \{name, vocabulary_size ≥ 1\}"):
        load(folder)
    edit_manifest(folder, lambda m: m.pop("sha256"))
    with pytest.raises(BundleError, match=r"manifest\.json: `sha256` must map file names to SHA-256 sums\. Rec.*None"):
        load(folder)


def test_load_checks_vocabularies_and_metrics(tmp_path):
    folder = save_bundle(tmp_path / "b")
    vocab = json.loads((folder / "vocab.json").read_text())
    rewrite(folder, "vocab.json", json.dumps(dict(reversed(vocab.items()))).encode())
    with pytest.raises(BundleError, match=r"vocab\.json: must map the features \['movie_id', 'user_zip_code'\] in"):
        load(folder)
    rewrite(folder, "vocab.json", json.dumps({**vocab, "movie_id": {"kind": "int", "values": [10]}}).encode())
    with pytest.raises(BundleError, match=r"feature 'movie_id' has 2 indices but config\.json says vocabulary_size=4"):
        load(folder)
    rewrite(folder, "vocab.json", json.dumps({**vocab, "movie_id": {"kind": "float", "values": []}}).encode())
    with pytest.raises(BundleError, match=r"vocab\.json: feature 'movie_id': `kind` must be 'int' or 'str'"):
        load(folder)
    rewrite(folder, "vocab.json", json.dumps(vocab).encode())
    rewrite(folder, "metrics.json", b"[0.9]")
    with pytest.raises(BundleError, match=r"metrics\.json: must hold a JSON object\. Received: \[0\.9\]"):
        load(folder)


# ----------------------------------------------------------------- save errors and atomicity


def test_save_validates_arguments(tmp_path):
    target = tmp_path / "b"
    with pytest.raises(ValueError, match=r"`model` must be a torch\.nn\.Module\. Received: dict"):
        save({}, target, model_config=CONFIG, vocabularies=VOCABULARIES)
    with pytest.raises(ValueError, match=r"`model_config` must be a DCNConfig\. Received: dict"):
        save(make_model(), target, model_config={}, vocabularies=VOCABULARIES)
    with pytest.raises(ValueError, match=r"`vocabularies` must map feature names to Vocabulary objects"):
        save(make_model(), target, model_config=CONFIG, vocabularies={"movie_id": [1, 2]})
    mismatch = r"the vocabulary sizes \[4\]: .*inputs\.weight: expected shape \(4, 3\), found \(7, 3\)"
    with pytest.raises(ValueError, match=mismatch):
        save(make_model(), target, model_config=CONFIG, vocabularies={"movie_id": VOCABULARIES["movie_id"]})
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
    (tmp_path / "empty").mkdir()
    assert load(save_bundle(tmp_path / "empty")).metrics == {"test": {"rmse": 0.9}}


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


@pytest.mark.parametrize(
    "module",
    [
        "dcnrank.bundle.bundle", "dcnrank.bundle.save", "dcnrank.bundle.load", "dcnrank.bundle.weights",
        "dcnrank.bundle.format", "dcnrank.bundle.manifest", "dcnrank.bundle.target",
    ],
)  # fmt: skip
def test_docstring_examples_run(module):
    result = doctest.testmod(importlib.import_module(module))
    assert result.failed == 0
