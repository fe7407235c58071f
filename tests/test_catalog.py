"""The catalogue of a table bundle: built by value from the fit rows, saved and loaded
exactly, damaged files refused naming the file."""

import hashlib
import importlib
import json

import pytest
import safetensors.torch
import torch
from torch import nn

from dcnrank.bundle import (
    CATALOG_FILE,
    CATALOG_TENSORS_FILE,
    FORMAT_VERSION,
    BundleError,
    Catalog,
    load,
    save,
)
from dcnrank.data.encoding.interactions import Interactions
from dcnrank.data.encoding.table_encoder import TableEncoder
from dcnrank.data.spec.feature_spec import CategoricalColumn, FeatureSpec, MultiHotColumn, NumericColumn
from dcnrank.models import DCNConfig
from dcnrank.models.table_inputs import build_table_dcn

# Users 1, 2, 3 and items "a", "b", "c"; "age" describes the user, "genres" and "year" the
# item, "device" is context. User 1 had a and b, user 2 a, user 3 c.
SPEC = FeatureSpec(
    (
        CategoricalColumn("user_id"),
        CategoricalColumn("item_id"),
        NumericColumn("age"),
        MultiHotColumn("genres"),
        NumericColumn("year"),
        CategoricalColumn("device"),
    ),
    label="clicked",
    task="binary",
    user="user_id",
    item="item_id",
    user_columns=("age",),
    item_columns=("genres", "year"),
)
FIT = {
    "user_id": [1, 1, 2, 3, 1],
    "item_id": ["a", "b", "a", "c", "a"],
    "age": [30.0, 31.0, None, 40.0, 30.0],
    "genres": ["x|y", "y", "z", "", "x|y"],
    "year": [1990.0, 2001.0, 1990.0, None, 1990.0],
    "device": ["phone", "web", "phone", "web", "web"],
    "clicked": [1, 0, 1, 0, 1],
}
CONFIG = DCNConfig(structure="cross_only", embedding_dim=2)


def make_bundle(path, spec=SPEC, fit=FIT, seed=0, catalog=True):
    """A tiny table bundle trained on nothing (seeded weights), with its catalogue."""
    encoder = TableEncoder.fit(spec, fit)
    torch.manual_seed(seed)
    model = build_table_dcn(CONFIG, spec, encoder.table_sizes)
    built = Catalog.build(spec, encoder, fit) if catalog else None
    return save(model, path, model_config=CONFIG, encoder=encoder, catalog=built)


def rewrite(folder, name, data):
    """Replace one file and record its checksum in the manifest, as a careful hand edit would."""
    (folder / name).write_bytes(data)
    manifest = json.loads((folder / "manifest.json").read_text())
    manifest["sha256"][name] = hashlib.sha256(data).hexdigest()
    (folder / "manifest.json").write_text(json.dumps(manifest))


def edit_json(folder, name, change):
    document = json.loads((folder / name).read_text())
    change(document)
    rewrite(folder, name, json.dumps(document).encode())


def edit_tensors(folder, change):
    tensors = safetensors.torch.load((folder / CATALOG_TENSORS_FILE).read_bytes())
    change(tensors)
    rewrite(folder, CATALOG_TENSORS_FILE, safetensors.torch.save(tensors))


# --------------------------------------------------------------------------- build


def test_build_by_value():
    catalog = Catalog.build(SPEC, TableEncoder.fit(SPEC, FIT), FIT)
    assert catalog.users == {"user_id": [1, 2, 3], "age": [30.0, None, 40.0]}  # each user's first row
    assert catalog.items == {
        "item_id": ["a", "b", "c"],
        "genres": [["x", "y"], ["y"], []],
        "year": [1990.0, 2001.0, None],
    }
    # user rows 1..3, item rows 1..3 (a, b, c): user 1 had a and b (a twice: once), 2 a, 3 c
    assert catalog.interactions.indptr.tolist() == [0, 0, 2, 3, 4]
    assert catalog.interactions.members.tolist() == [1, 2, 1, 3]
    assert (catalog.num_users, catalog.num_items) == (3, 3)
    assert catalog.user_position(2) == 1 and catalog.user_position(99) is None and catalog.user_position([1]) is None
    assert catalog.item_position("c") == 2 and catalog.item_position("zz") is None


def test_build_takes_given_interactions_and_skips_missing_ids():
    fit = {**FIT, "item_id": ["a", None, "a", "c", "a"]}
    encoder = TableEncoder.fit(SPEC, fit)
    sizes = encoder.table_sizes
    pairs = Interactions.from_pairs(torch.tensor([1]), torch.tensor([1]), sizes["user_id"], sizes["item_id"])
    catalog = Catalog.build(SPEC, encoder, fit, pairs)
    assert catalog.items["item_id"] == ["a", "c"]
    assert catalog.interactions is pairs


def test_build_errors():
    no_roles = FeatureSpec((CategoricalColumn("user_id"),), label="clicked", task="binary")
    encoder = TableEncoder.fit(no_roles, FIT)
    with pytest.raises(ValueError, match=r"needs a spec naming a `user` and an `item`.*Received: user=None"):
        Catalog.build(no_roles, encoder, FIT)
    encoder = TableEncoder.fit(SPEC, FIT)
    wrong = Interactions.from_pairs(torch.tensor([1]), torch.tensor([1]), 2, 2)
    with pytest.raises(ValueError, match=r"`interactions` must pair 4 user rows with 4 item rows.*Received: 2 and 2"):
        Catalog.build(SPEC, encoder, FIT, wrong)
    pairs = Interactions.from_pairs(torch.tensor([1]), torch.tensor([1]), 2, 2)
    with pytest.raises(ValueError, match=r"`users` must map the column 'u' first"):
        Catalog("u", "i", {"x": [1]}, {"i": [1]}, pairs)
    with pytest.raises(ValueError, match=r"every column of `items` must hold one value per entry"):
        Catalog("u", "i", {"u": [1]}, {"i": [1, 2], "g": [1]}, pairs)
    with pytest.raises(ValueError, match=r"`items\['i'\]` must hold distinct, present ids"):
        Catalog("u", "i", {"u": [1]}, {"i": [1, 1]}, pairs)
    with pytest.raises(ValueError, match=r"`interactions` must be an Interactions. Received: list"):
        Catalog("u", "i", {"u": [1]}, {"i": [1]}, [])


# ----------------------------------------------------------------- save and load


def test_round_trip_by_value(tmp_path):
    folder = make_bundle(tmp_path / "b")
    names = sorted(p.name for p in folder.iterdir())
    assert CATALOG_FILE in names and CATALOG_TENSORS_FILE in names
    config = json.loads((folder / "config.json").read_text())
    manifest = json.loads((folder / "manifest.json").read_text())
    assert config["format_version"] == manifest["format_version"] == FORMAT_VERSION == 3
    assert config["catalog"] == {"users": 3, "items": 3, "pairs": 4}
    assert {CATALOG_FILE, CATALOG_TENSORS_FILE} <= set(manifest["sha256"])
    bundle = load(folder)
    expected = Catalog.build(SPEC, TableEncoder.fit(SPEC, FIT), FIT)
    assert bundle.catalog.to_dict() == expected.to_dict()
    for name, tensor in expected.tensors().items():
        torch.testing.assert_close(bundle.catalog.tensors()[name], tensor, rtol=0, atol=0)


def test_a_bundle_without_roles_or_catalogue_has_no_catalogue_files(tmp_path):
    spec = FeatureSpec((CategoricalColumn("user_id"), NumericColumn("age")), label="clicked", task="binary")
    folder = make_bundle(tmp_path / "b", spec=spec, catalog=False)
    assert not (folder / CATALOG_FILE).exists() and not (folder / CATALOG_TENSORS_FILE).exists()
    assert json.loads((folder / "config.json").read_text())["catalog"] is None
    assert load(folder).catalog is None
    without = make_bundle(tmp_path / "c", catalog=False)  # roles, but no catalogue given
    assert load(without).catalog is None


def test_save_table_checks_the_catalogue(tmp_path):
    encoder = TableEncoder.fit(SPEC, FIT)
    model = build_table_dcn(CONFIG, SPEC, encoder.table_sizes)
    with pytest.raises(ValueError, match=r"`catalog` must be a dcnrank.bundle.catalog.Catalog. Received: dict"):
        save(model, tmp_path / "b", model_config=CONFIG, encoder=encoder, catalog={})
    catalog = Catalog.build(SPEC, encoder, FIT)
    other = Catalog(catalog.user, catalog.item, {"user_id": [1, 2]}, catalog.items, catalog.interactions)
    with pytest.raises(
        ValueError, match=r"does not fit the encoder's spec.*`users` must map the columns \['user_id', 'age'\]"
    ):
        save(model, tmp_path / "b", model_config=CONFIG, encoder=encoder, catalog=other)
    spec = FeatureSpec(SPEC.columns, label="clicked", task="binary")
    plain = TableEncoder.fit(spec, FIT)
    with pytest.raises(ValueError, match=r"`catalog` needs a spec naming a user and an item"):
        save(build_table_dcn(CONFIG, spec, plain.table_sizes), tmp_path / "b", model_config=CONFIG,
                   encoder=plain, catalog=catalog)  # fmt: skip
    model.inputs.user_history = nn.Identity()  # as a model with histories (no tensors of its own here)
    with pytest.raises(ValueError, match=r"`catalog` is required for a model with user or item histories"):
        save(model, tmp_path / "b", model_config=CONFIG, encoder=encoder)
    assert not (tmp_path / "b").exists()


def test_loading_fills_histories_from_the_catalogue(tmp_path, monkeypatch):
    folder = make_bundle(tmp_path / "b")
    filled = []
    loading = importlib.import_module("dcnrank.bundle.load")  # `dcnrank.bundle.load` is also the function
    model_type = type(load(folder).model)
    monkeypatch.setattr(loading, "has_histories", lambda model: True)
    monkeypatch.setattr(model_type, "set_histories", lambda self, pairs: filled.append(pairs), raising=False)
    bundle = load(folder)
    assert len(filled) == 1 and filled[0].members.tolist() == bundle.catalog.interactions.members.tolist()
    without = make_bundle(tmp_path / "c", catalog=False)
    with pytest.raises(
        BundleError, match=r"config.json: the model has user or item histories, but the bundle holds no"
    ):
        load(without)


# ----------------------------------------------------------------- damaged files


def test_a_changed_catalogue_file_is_refused_by_its_checksum(tmp_path):
    folder = make_bundle(tmp_path / "b")
    data = bytearray((folder / CATALOG_FILE).read_bytes())
    data[5] ^= 1
    (folder / CATALOG_FILE).write_bytes(bytes(data))
    with pytest.raises(BundleError, match=rf"{CATALOG_FILE}: corrupt or modified file: SHA-256"):
        load(folder)


def test_missing_catalogue_files(tmp_path):
    folder = make_bundle(tmp_path / "b")
    (folder / CATALOG_TENSORS_FILE).unlink()
    with pytest.raises(BundleError, match=rf"not a complete bundle: missing {CATALOG_TENSORS_FILE}"):
        load(folder)
    folder = make_bundle(tmp_path / "c")
    manifest = json.loads((folder / "manifest.json").read_text())
    for name in (CATALOG_FILE, CATALOG_TENSORS_FILE):
        del manifest["sha256"][name]
    (folder / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(
        BundleError, match=rf"config.json: records a catalogue .* but manifest.json lists no {CATALOG_FILE}"
    ):
        load(folder)
    folder = make_bundle(tmp_path / "d")
    edit_json(folder, "config.json", lambda c: c.update(catalog=None))
    with pytest.raises(
        BundleError, match=rf"records no catalogue \(catalog=null\), but manifest.json lists {CATALOG_FILE}"
    ):
        load(folder)
    folder = make_bundle(tmp_path / "e")
    edit_json(folder, "config.json", lambda c: c["catalog"].update(pairs=5))
    with pytest.raises(
        BundleError, match=r"catalog.json: holds \{'users': 3, 'items': 3, 'pairs': 4\}, but config.json"
    ):
        load(folder)
    folder = make_bundle(tmp_path / "f")
    edit_json(folder, "config.json", lambda c: c.pop("catalog"))
    with pytest.raises(BundleError, match=r"config.json: missing key\(s\) catalog"):
        load(folder)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda c: c.update(extra=1), r"must be an object with the keys user, item, users, items"),
        (lambda c: c.update(user="age"), r"names user='age', item='item_id', but the spec's roles are user='user_id'"),
        (lambda c: c["users"].pop("age"), r"`users` must map the columns \['user_id', 'age'\] in order"),
        (lambda c: c["items"].update(year=1990), r"`items.year` must be a list of values. Received: 1990"),
        (lambda c: c["users"]["user_id"].__setitem__(1, 1), r"`users.user_id` must hold distinct ids"),
        (lambda c: c["users"]["user_id"].__setitem__(1, None), r"`users.user_id` must hold ids .*Received: None"),
        (lambda c: c["users"]["user_id"].__setitem__(1, True), r"`users.user_id` must hold ids .*Received: True"),
        (lambda c: c["users"]["user_id"].__setitem__(1, "2"), r"`users.user_id` must hold values of one kind"),
        (lambda c: c["users"]["user_id"].__setitem__(1, 2**63), r"`users.user_id` must hold ids"),
        (lambda c: c["items"]["year"].__setitem__(0, "1990"), r"`items.year` must hold finite numbers or null"),
        (lambda c: c["items"]["year"].__setitem__(0, float("inf")), r"`items.year` must hold finite numbers or null"),
        (lambda c: c["items"]["genres"].__setitem__(0, "x|y"), r"`items.genres` must hold lists of ints or strings"),
        (lambda c: c["items"]["genres"].__setitem__(0, ["x", 1]), r"`items.genres` must hold values of one kind"),
        (lambda c: c["items"]["year"].append(1.0), r"every column of `items` must hold one value per entry"),
    ],
)
def test_a_malformed_catalogue_json_is_refused_naming_it(tmp_path, change, message):
    folder = make_bundle(tmp_path / "b")
    edit_json(folder, CATALOG_FILE, change)
    with pytest.raises(BundleError, match=rf"{CATALOG_FILE}: {message}"):
        load(folder)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda t: t.update(extra=torch.zeros(1)), r"the tensors must be exactly indptr and members"),
        (lambda t: t.update(indptr=t["indptr"][:-1]), r"`indptr` must have shape \(5,\), one more than"),
        (lambda t: t.update(indptr=t["indptr"].int()), r"`indptr` must be a non-empty 1-D int64 tensor"),
        (lambda t: t.update(members=t["members"].long()), r"`members` must be a 1-D int32 tensor"),
        (lambda t: t.update(members=torch.tensor([1, 2, 1, 4], dtype=torch.int32)), r"`members` must lie in 1..3"),
        (
            lambda t: t.update(members=torch.tensor([2, 1, 1, 3], dtype=torch.int32)),
            r"`members` must list each user's items in ascending order, each once",
        ),
        (lambda t: t.update(indptr=torch.tensor([0, 0, 2, 3, 5])), r"`indptr` must rise from 0 to len\(members\)=4"),
    ],
)
def test_malformed_catalogue_tensors_are_refused_naming_the_file(tmp_path, change, message):
    folder = make_bundle(tmp_path / "b")
    edit_tensors(folder, change)
    with pytest.raises(BundleError, match=rf"{CATALOG_TENSORS_FILE}: {message}"):
        load(folder)


def test_truncated_catalogue_tensors(tmp_path):
    folder = make_bundle(tmp_path / "b")
    rewrite(folder, CATALOG_TENSORS_FILE, (folder / CATALOG_TENSORS_FILE).read_bytes()[:20])
    with pytest.raises(BundleError, match=rf"{CATALOG_TENSORS_FILE}: truncated or corrupt safetensors file"):
        load(folder)


def test_a_model_with_histories_scores_after_loading_as_before_saving(tmp_path):
    encoder = TableEncoder.fit(SPEC, FIT)
    config = DCNConfig(structure="cross_only", embedding_dim=2, user_history=True, item_history=True)
    torch.manual_seed(0)
    model = build_table_dcn(config, SPEC, encoder.table_sizes)
    catalog = Catalog.build(SPEC, encoder, FIT)
    model.set_histories(catalog.interactions)
    folder = save(model, tmp_path / "b", model_config=config, encoder=encoder, catalog=catalog)
    rows = {name: FIT[name] for name in SPEC.input_names}
    before = torch.sigmoid(model.eval()(encoder.encode(rows).features))
    torch.testing.assert_close(load(folder).predict(rows), before, rtol=0, atol=0)
    with pytest.raises(ValueError, match=r"`catalog` is required for a model with user or item histories"):
        save(model, tmp_path / "c", model_config=config, encoder=encoder)
