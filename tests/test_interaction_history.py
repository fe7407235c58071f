"""SVD++-style implicit feedback (issue 6): `InteractionHistory`, histories built from the fit
rows only (`train_table` on MovieLens 100K's u1), and the shipped recipe."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
from torch.testing import assert_close

from dcnrank.bundle import load
from dcnrank.config import load_config
from dcnrank.data.encoding.interactions import Interactions
from dcnrank.data.sources import load_movielens_source
from dcnrank.experiments.recipe import RECIPE_FILE, load_recipe, recipe_text
from dcnrank.models import DCNConfig, build_dcn
from dcnrank.models.dcn import count_parameters
from dcnrank.models.interaction_history import InteractionHistory
from dcnrank.workflows.train import train_table

CONFIGS = Path(__file__).resolve().parent.parent / "configs"


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


# --------------------------------------------------------------------------- in the DCN, built from the fit rows only


def test_histories_are_a_table_models_and_validate():
    sizes = [1683, 944, 3, 8, 796, 22]
    assert count_parameters(build_dcn(DCNConfig(), vocabulary_sizes=sizes)) == 221_953  # the seed's, no levers
    with pytest.raises(ValueError, match=r"`user_history` must be a bool. Received: user_history=1"):
        DCNConfig(user_history=1)
    with pytest.raises(ValueError, match=r"`build_dcn` builds no levers; .* Received: item_history=True"):
        build_dcn(DCNConfig(item_history=True), dense_features=3)


def test_real_fold_histories_come_from_its_fit_rows_only(movielens_dir, tmp_path):
    source = load_movielens_source(movielens_dir)
    train_rows, test_rows = source.split_rows("u1")
    config = load_recipe(["train.epochs=1", "data.max_train_rows=4096", "model.embedding_dim=4",
                          "model.deep_units=[8]", "model.projection_dim=4"])  # fmt: skip
    result = train_table(config, source.spec, source.table.take(train_rows), tmp_path / "b",
                         dataset={"dataset": "movielens-100k", "split": "u1"})  # fmt: skip
    rated = result.interactions  # (user, item), encoded
    assert rated is not None and len(rated.members) == result.metrics["data"]["n_fit"]  # one pair per fit row
    model = load(result.bundle_path)
    encoded = model.encode(source.table.take(test_rows)).features  # read here, after training
    positions = source.spec.role_positions()
    users, items = encoded.categorical[:, positions["user"]], encoded.categorical[:, positions["item"]]
    dense = torch.zeros(rated.num_owners, rated.num_members, dtype=torch.bool)
    dense[rated.pairs()] = True
    assert not dense[users, items].any()  # u1.test's pairs are not in u1.base


# --------------------------------------------------------------------------- the shipped recipe


def test_package_recipe_is_the_configs_file():
    assert recipe_text() == (CONFIGS / RECIPE_FILE).read_text(encoding="utf-8")
    assert load_recipe() == load_config(CONFIGS / RECIPE_FILE)
    assert load_recipe(["data.split=u3"]).data.split == "u3"
    assert load_recipe().data.split is None  # a dataset run takes the release's default split
