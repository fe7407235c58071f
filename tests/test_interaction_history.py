"""SVD++-style implicit feedback (issue 6): `InteractionHistory`, its wiring into the DCN,
bundles that carry it, histories built from the fit rows only, and the shipped recipe."""

from __future__ import annotations

import doctest
import importlib
import json
import math
from pathlib import Path

import pytest
import torch
from conftest import TINY_RATINGS, rating_lines
from torch.testing import assert_close

import dcnrank.experiments.recipe
import dcnrank.models.interaction_history
from dcnrank.bundle import load, save
from dcnrank.config import load_config
from dcnrank.data import Vocabulary, split_indices
from dcnrank.data.interactions import Interactions
from dcnrank.experiments.recipe import RECIPE_FILE, load_recipe, recipe_text
from dcnrank.explain.model_interactions import input_blocks
from dcnrank.models import DCNConfig, build_dcn
from dcnrank.models.dcn import count_parameters
from dcnrank.models.interaction_history import InteractionHistory
from dcnrank.workflows.train_run import fit_movielens, train_run

train_run_module = importlib.import_module("dcnrank.workflows.train_run")
CONFIGS = Path(__file__).resolve().parent.parent / "configs"
HISTORIES = DCNConfig(embedding_dim=2, deep_units=(4,), user_history=True, item_history=True)


def filled_history() -> InteractionHistory:
    """Owners 1 and 2 over members 1..3; member embeddings y_j = [j, 10·j]."""
    history = InteractionHistory(num_owners=3, num_members=4, embedding_dim=2)
    history.set_history(torch.tensor([[1, 1], [1, 2], [1, 3], [2, 3], [2, 3]]))  # (2, 3) twice: counts once
    with torch.no_grad():
        history.member_embedding.copy_(torch.tensor([[0.0, 0.0], [1.0, 10.0], [2.0, 20.0], [3.0, 30.0]]))
    return history


def stored_pairs(history: InteractionHistory) -> list[list[int]]:
    """The history's `(owner, member)` pairs, from its CSR buffers."""
    owners, members = history.interactions.pairs()
    return torch.stack([owners, members], dim=1).tolist()


# --------------------------------------------------------------------------- the module


def test_history_sums_the_other_members_over_the_square_root_of_their_count():
    history = filled_history()
    owners = torch.tensor([1, 1, 2, 2, 0])
    members = torch.tensor([0, 2, 1, 3, 2])
    expected = torch.tensor(
        [
            [6.0 / math.sqrt(3), 60.0 / math.sqrt(3)],  # owner 1 scores an unknown member: y1 + y2 + y3 over √3
            [4.0 / math.sqrt(2), 40.0 / math.sqrt(2)],  # owner 1 scores member 2 (in N): y1 + y3 over √2
            [3.0, 30.0],  # owner 2 scores member 1 (not in N): y3 over √1
            [0.0, 0.0],  # owner 2 scores member 3, its only one: nothing left
            [0.0, 0.0],  # the OOV owner has no history
        ]
    )
    assert_close(history(owners, members), expected)
    assert history.members.dtype == torch.int32  # which members, never a rating value
    assert stored_pairs(history) == [[1, 1], [1, 2], [1, 3], [2, 3]]
    assert "indptr" not in history.state_dict() and "members" not in history.state_dict()  # the bundle stores them


def test_set_history_replaces_and_ignores_out_of_vocabulary_pairs():
    history = filled_history()
    history.set_history(torch.tensor([[0, 2], [2, 0], [2, 1]]))
    assert stored_pairs(history) == [[2, 1]]
    history.set_history(torch.zeros(0, 2, dtype=torch.long))
    assert stored_pairs(history) == [] and history.indptr.tolist() == [0, 0, 0, 0]


def test_history_gradient_reaches_the_members_in_the_history_only():
    history = filled_history()
    history(torch.tensor([2]), torch.tensor([1])).sum().backward()
    grad = history.member_embedding.grad
    assert_close(grad, torch.tensor([[0.0, 0.0], [0.0, 0.0], [0.0, 0.0], [1.0, 1.0]]))


def test_history_validation():
    with pytest.raises(ValueError, match=r"`num_owners` must be a positive int. Received: num_owners=0"):
        InteractionHistory(0, 3, 2)
    with pytest.raises(ValueError, match=r"`num_members` must be a positive int. Received: num_members=True"):
        InteractionHistory(3, True, 2)
    with pytest.raises(ValueError, match=r"`embedding_dim` must be a positive int. Received: embedding_dim=2.0"):
        InteractionHistory(3, 3, 2.0)
    history = InteractionHistory(3, 4, 2)
    shape_rule = r"`pairs` must be an integer tensor of shape \(P, 2\). "
    with pytest.raises(ValueError, match=shape_rule + r"Received: shape=\(3,\)"):
        history.set_history(torch.tensor([1, 2, 3]))
    with pytest.raises(ValueError, match=r"Received: shape=\(1, 2\), dtype=torch.float32"):
        history.set_history(torch.tensor([[1.0, 2.0]]))
    with pytest.raises(ValueError, match=r"owners in 0..2 and members in 0..3. Received: owners 1..3, members 1..1"):
        history.set_history(torch.tensor([[3, 1], [1, 1]]))
    with pytest.raises(ValueError, match=r"Received: owners 1..1, members -1..-1"):
        history.set_history(torch.tensor([[1, -1]]))
    other_sizes = Interactions.from_pairs(torch.tensor([1]), torch.tensor([1]), 4, 4)
    with pytest.raises(ValueError, match=r"`interactions` must be 3 owners × 4 members. Received: 4 × 4"):
        history.set_history(other_sizes)


# --------------------------------------------------------------------------- in the DCN


def test_dcn_appends_the_user_and_item_histories_to_x0():
    model = build_dcn(HISTORIES, vocabulary_sizes=[4, 3])  # columns: item, user
    assert model.cross.in_features == 2 * 2 + 2 + 2
    rows = torch.tensor([[1, 1], [2, 1], [3, 2]])  # (item, user)
    model.set_histories(rows)
    assert stored_pairs(model.user_history) == [[1, 1], [1, 2], [2, 3]]  # (user, item)
    assert stored_pairs(model.item_history) == [[1, 1], [2, 1], [3, 2]]  # (item, user)
    assert model.eval()(rows).shape == (3,)
    blocks = input_blocks(model, ["movie_id", "user_id"])
    assert [name for name, _ in blocks] == ["movie_id", "user_id", "user's rated items", "item's raters"]
    assert sum(width for _, width in blocks) == model.in_features


def test_histories_off_keep_the_seed_models_and_validate():
    sizes = [1683, 944, 3, 8, 796, 22]
    assert count_parameters(build_dcn(DCNConfig(), vocabulary_sizes=sizes)) == 221_953
    only_user = build_dcn(DCNConfig(user_history=True), vocabulary_sizes=sizes)
    assert only_user.item_history is None and only_user.user_history.indptr.shape == (945,)
    assert only_user.state_dict()["user_history.interacted"].shape == (944, 1683)  # how MovieLens bundles store N
    with pytest.raises(ValueError, match=r"`user_history` must be a bool. Received: user_history=1"):
        DCNConfig(user_history=1)
    with pytest.raises(ValueError, match=r"need `vocabulary_sizes` .* item_history=True"):
        build_dcn(DCNConfig(item_history=True), dense_features=3)
    with pytest.raises(ValueError, match=r"need an item \(column 0\) and a user \(column 1\) feature. .*\[5\]"):
        build_dcn(DCNConfig(user_history=True), vocabulary_sizes=[5])
    with pytest.raises(ValueError, match=r"`rows` must be encoded rows of shape \(N, F ≥ 2\). Received: shape=\(3,\)"):
        build_dcn(HISTORIES, vocabulary_sizes=[4, 3]).set_histories(torch.tensor([1, 2, 3]))


def test_bundle_with_histories_saves_loads_and_predicts_identically(tmp_path):
    vocabularies = {"movie_id": Vocabulary.fit([10, 20, 30]), "user_id": Vocabulary.fit([1, 2])}
    torch.manual_seed(0)
    model = build_dcn(HISTORIES, vocabulary_sizes=[4, 3])
    model.set_histories(torch.tensor([[1, 1], [2, 1], [3, 2]]))
    folder = save(model, tmp_path / "b", model_config=HISTORIES, vocabularies=vocabularies)
    loaded = load(folder)
    assert loaded.config.model == HISTORIES
    assert stored_pairs(loaded.model.user_history) == stored_pairs(model.user_history) == [[1, 1], [1, 2], [2, 3]]
    assert stored_pairs(loaded.model.item_history) == stored_pairs(model.item_history)
    x = torch.tensor([[1, 1], [3, 1], [2, 2], [0, 0]])
    assert_close(loaded.predict(x), model.eval()(x), rtol=0, atol=0)
    by_id = loaded.predict({"movie_id": [10, 30, 20], "user_id": [1, 1, 2]})
    assert_close(by_id, model(x[:3]), rtol=0, atol=0)

    onnxruntime = pytest.importorskip("onnxruntime")
    from dcnrank.export import ONNX_INPUT, ONNX_OUTPUT, export_bundle

    session = onnxruntime.InferenceSession(str(export_bundle(loaded, "onnx")), providers=["CPUExecutionProvider"])
    (scores,) = session.run([ONNX_OUTPUT], {ONNX_INPUT: x.numpy()})
    assert_close(torch.from_numpy(scores), loaded.predict(x), rtol=0, atol=1e-5)


# --------------------------------------------------------------------------- built from the fit rows only


def test_histories_hold_exactly_the_fit_rows(tmp_path, tiny_movielens_dir, monkeypatch):
    (tiny_movielens_dir / "u1.base").write_text(rating_lines(TINY_RATINGS[:4]), encoding="ascii")
    (tiny_movielens_dir / "u1.test").write_text(rating_lines(TINY_RATINGS[4:]), encoding="ascii")
    seen = {}
    real_fit = train_run_module.fit_with_early_stopping

    def remember(trainer, model, x, y, validation, **kwargs):  # noqa: ANN001, ANN202
        seen["fit"], seen["validation"] = x.clone(), validation[0].clone()
        return real_fit(trainer, model, x, y, validation, **kwargs)

    monkeypatch.setattr(train_run_module, "fit_with_early_stopping", remember)
    config = load_recipe(
        ["train.epochs=1", "train.batch_size=2", "model.embedding_dim=2", "model.deep_units=[4]",
         "model.projection_dim=none", "data.validation_fraction=0.25",
         f"data.data_dir={json.dumps(str(tiny_movielens_dir))}"],
    )  # fmt: skip
    assert config.model.user_history and config.model.item_history and config.data.split == "u1"
    model = load(train_run(config, tmp_path / "bundle").bundle_path).model
    fit_pairs = {tuple(pair) for pair in seen["fit"][:, :2].tolist()}  # (item, user)
    assert len(fit_pairs) == 3 and len(seen["validation"]) == 1
    assert {tuple(p) for p in stored_pairs(model.item_history)} == fit_pairs
    assert {tuple(p[::-1]) for p in stored_pairs(model.user_history)} == fit_pairs
    held_out = tuple(seen["validation"][0, :2].tolist())
    assert held_out not in fit_pairs  # the validation row is not in the history


def test_real_fold_histories_come_from_its_fit_rows_only(movielens_dir, movielens_ratings):
    config = load_recipe(["train.epochs=1", "data.max_train_rows=4096", "data.split=u1"])
    fitted = fit_movielens(config, movielens_ratings, movielens_dir)
    model, vocabularies = fitted.model, fitted.prepared.vocabularies
    rated = model.item_history.interactions  # (item, user)
    assert stored_pairs(model.user_history) == sorted(p[::-1] for p in stored_pairs(model.item_history))
    assert len(rated.members) == fitted.n_fit  # one pair per fit row (no user rates a movie twice)
    test_rows = split_indices(movielens_ratings, "u1", 0, movielens_dir).test  # read here, after training
    items = torch.from_numpy(vocabularies["movie_id"].encode(movielens_ratings.movie_id[test_rows]))
    users = torch.from_numpy(vocabularies["user_id"].encode(movielens_ratings.user_id[test_rows]))
    dense = torch.zeros(rated.num_owners, rated.num_members, dtype=torch.bool)
    dense[rated.pairs()] = True
    assert not dense[items, users].any()


# --------------------------------------------------------------------------- the shipped recipe


def test_package_recipe_is_the_configs_file():
    assert recipe_text() == (CONFIGS / RECIPE_FILE).read_text(encoding="utf-8")
    assert load_recipe() == load_config(CONFIGS / RECIPE_FILE)
    assert load_recipe(["data.split=u3"]).data.split == "u3"


def test_docstring_examples_run():
    for module in (dcnrank.models.interaction_history, dcnrank.experiments.recipe):
        assert doctest.testmod(module).failed == 0
