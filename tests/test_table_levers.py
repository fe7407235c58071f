"""The recipe's levers on any table (table path): offset and bias terms, SVD++-style histories
kept sparse (`Interactions`), clipping to the fit rows' label range, the notices when a spec
cannot have a lever, and a training run where the levers beat the same config without them."""

from __future__ import annotations

import importlib
import logging
import math

import numpy as np
import pytest
import torch
from torch.testing import assert_close

from dcnrank.bundle.weights import expected_tensors
from dcnrank.config import ConfigError, load_config
from dcnrank.data.encoding.interactions import Interactions
from dcnrank.data.encoding.table_batch import TableBatch
from dcnrank.data.spec.feature_spec import CategoricalColumn, FeatureSpec, NumericColumn
from dcnrank.models import DCNConfig
from dcnrank.models.bias_terms import OutputLevers, label_offset
from dcnrank.models.dcn import count_parameters
from dcnrank.models.interaction_history import InteractionHistory
from dcnrank.models.table_inputs import TableInputs, build_table_dcn, table_dcn_size, table_levers
from dcnrank.workflows.train import train_table

# columns: a numeric first, then `genre`, `item`, `user`: the roles are not columns 0 and 1
SPEC = FeatureSpec(
    (NumericColumn("x"), CategoricalColumn("genre"), CategoricalColumn("item"), CategoricalColumn("user")),
    label="y",
    task="regression",
    user="user",
    item="item",
)


SIZES = {"genre": 2, "item": 4, "user": 3}
PLAIN = DCNConfig(structure="cross_only", embedding_dim=1)


def batch(categorical: list[list[int]]) -> TableBatch:
    n = len(categorical)
    return TableBatch(torch.tensor(categorical), torch.zeros(n, 1), torch.zeros(n, 1, dtype=torch.bool))


def zero_network(model: torch.nn.Module) -> None:
    """Make the head output 0 for every input, so only the output levers are left."""
    with torch.no_grad():
        model.head.weight.zero_()
        model.head.bias.zero_()


# --------------------------------------------------------------------------- offset and bias terms


def test_offset_and_biases_by_hand():
    model = build_table_dcn(DCNConfig(structure="cross_only", embedding_dim=1, use_bias_terms=True), SPEC, SIZES)
    zero_network(model)
    model.set_label_statistics(offset=3.5, low=1.0, high=5.0)
    with torch.no_grad():  # fused: genre rows 0..1, item rows 2..5, user rows 6..8
        model.output.bias_terms.bias.copy_(torch.tensor([0.0, 0.25, 0.0, 0.5, -1.0, 0.0, 0.0, 0.1, -0.2]))
    # row 1: 3.5 + b_genre[1] + b_item[1] + b_user[1] = 3.5 + 0.25 + 0.5 + 0.1
    # row 2: 3.5 + b_genre[0] + b_item[2] + b_user[2] = 3.5 + 0 - 1.0 - 0.2
    assert_close(model.eval()(batch([[1, 1, 1], [0, 2, 2]])), torch.tensor([4.35, 2.3]))
    assert "output.bias_terms.global_mean" in model.state_dict()  # the offset is saved with the weights


def test_the_binary_offset_is_the_base_rate_logit():
    assert label_offset("regression", -2.5) == -2.5
    assert label_offset("binary", 0.2) == pytest.approx(math.log(0.2 / 0.8))
    assert label_offset("binary", 0.0) == pytest.approx(math.log(1e-6 / (1 - 1e-6)))  # p clamped
    assert label_offset("binary", 1.0) == pytest.approx(math.log((1 - 1e-6) / 1e-6))
    with pytest.raises(ValueError, match=r"`label_mean` must be a finite number. Received: label_mean=nan"):
        label_offset("regression", math.nan)
    with pytest.raises(ValueError, match=r"must lie in \[0, 1\]. Received: label_mean=1.5"):
        label_offset("binary", 1.5)
    with pytest.raises(ValueError, match=r"`task` must be 'regression', 'binary' or 'ranking'. Received: task='ordi"):
        label_offset("ordinal", 0.5)


def test_output_levers_rules():
    with pytest.raises(ValueError, match=r"needs bias terms or clipping. Received: bias_sizes=None, clip=False"):
        OutputLevers(None, clip=False)
    levers = OutputLevers([2], clip=True)
    with pytest.raises(ValueError, match=r"`offset` must be a finite number. Received: offset=inf"):
        levers.set_label_statistics(math.inf, 0.0, 1.0)
    with pytest.raises(ValueError, match=r"`high` must be a finite number. Received: high='5'"):
        levers.set_label_statistics(0.0, 0.0, "5")
    with pytest.raises(ValueError, match=r"`low` must not exceed `high`. Received: low=2.0, high=1.0"):
        levers.set_label_statistics(0.0, 2.0, 1.0)


# --------------------------------------------------------------------------- clipping


def test_clipping_to_the_fit_range_in_eval_mode_only():
    config = DCNConfig(structure="cross_only", embedding_dim=1, use_bias_terms=True, clip_output=True)
    model = build_table_dcn(config, SPEC, SIZES)
    zero_network(model)
    model.set_label_statistics(offset=0.0, low=-1.0, high=2.0)  # the fit rows' labels spanned [-1, 2]
    with torch.no_grad():
        model.output.bias_terms.bias.copy_(torch.tensor([0.0, 0.0, 0.0, 5.0, -5.0, 0.5, 0.0, 0.0, 0.0]))
    rows = batch([[0, 1, 0], [0, 2, 0], [0, 3, 0]])
    assert_close(model.train()(rows), torch.tensor([5.0, -5.0, 0.5]))  # training sees the raw output
    assert_close(model.eval()(rows), torch.tensor([2.0, -1.0, 0.5]))
    assert_close(model.state_dict()["output.label_range"], torch.tensor([-1.0, 2.0]))


def test_a_fresh_clip_range_clamps_nothing():
    model = build_table_dcn(DCNConfig(structure="cross_only", embedding_dim=1, clip_output=True), SPEC, SIZES)
    zero_network(model)
    assert model.output.bias_terms is None
    assert_close(model.eval()(batch([[1, 1, 1]])), torch.tensor([0.0]))


# --------------------------------------------------------------------------- histories


def toy_interactions() -> Interactions:
    """User 1 interacted with items 1, 2, 3; user 2 with item 3 (twice: counted once)."""
    return Interactions.from_pairs(torch.tensor([1, 1, 1, 2, 2]), torch.tensor([1, 2, 3, 3, 3]), 3, 4)


def test_leave_one_out_user_and_item_histories_by_hand():
    inputs = TableInputs(SPEC, SIZES, embedding_dim=1, user_history=True, item_history=True)
    inputs.set_histories(toy_interactions())
    with torch.no_grad():
        inputs.user_history.member_embedding.copy_(torch.tensor([[0.0], [1.0], [2.0], [3.0]]))  # y_item = item
        inputs.item_history.member_embedding.copy_(torch.tensor([[0.0], [10.0], [20.0]]))  # y_user = 10·user
    assert [name for name, _ in inputs.blocks][-2:] == ["history of user", "history of item"]
    x0 = inputs(batch([[0, 2, 1], [0, 3, 2], [0, 1, 2], [0, 0, 0]]))  # (genre, item, user)
    # user 1, item 2: (y1 + y3) / √2; item 2's users {1} minus user 1: nothing -> 0
    # user 2, item 3: its only item left out -> 0; item 3's users {1, 2} minus 2: 10 / √1
    # user 2, item 1 (not its item): y3 / √1; item 1's users {1}: 10 / √1
    # OOV user and item: no history
    expected = torch.tensor([[4.0 / math.sqrt(2), 0.0], [0.0, 10.0], [3.0, 10.0], [0.0, 0.0]])
    assert_close(x0[:, -2:], expected)


def test_history_storage_is_sparse_and_outside_the_state_dict():
    model = build_table_dcn(DCNConfig(structure="cross_only", embedding_dim=1, user_history=True), SPEC, SIZES)
    model.set_histories(toy_interactions())
    history = model.inputs.user_history
    assert history.indptr.tolist() == [0, 0, 3, 4] and history.members.tolist() == [1, 2, 3, 3]
    assert history.members.dtype == torch.int32
    assert not any(name.endswith(("indptr", ".members")) for name in model.state_dict())
    assert "inputs.user_history.member_embedding" in expected_tensors(model_config(), SPEC, SIZES)
    with pytest.raises(ValueError, match=r"`interactions` must be 3 owners × 4 members. Received: 4 × 4"):
        model.set_histories(Interactions.from_pairs(torch.tensor([1]), torch.tensor([1]), 4, 4))


def model_config() -> DCNConfig:
    return DCNConfig(structure="cross_only", embedding_dim=1, user_history=True)


def test_sparse_history_equals_the_dense_formula_on_random_pairs():
    generator = torch.Generator().manual_seed(0)
    owners = torch.randint(0, 30, (400,), generator=generator)
    members = torch.randint(0, 20, (400,), generator=generator)
    history = InteractionHistory(30, 20, 3)
    history.set_history(Interactions.from_pairs(owners, members, 30, 20))
    dense = torch.zeros(30, 20)
    dense[owners, members] = 1.0
    dense[0, :] = 0.0
    dense[:, 0] = 0.0
    u, i = torch.randint(0, 30, (64,), generator=generator), torch.randint(0, 20, (64,), generator=generator)
    rows = dense[u].scatter(1, i.unsqueeze(1), 0.0)
    expected = rows @ history.member_embedding / rows.sum(1, keepdim=True).clamp(min=1).sqrt()
    assert_close(history(u, i), expected)


def test_a_history_without_roles_is_left_out_with_a_notice(caplog):
    no_roles = FeatureSpec((CategoricalColumn("item"), CategoricalColumn("user")), label="y", task="regression")
    config = DCNConfig(structure="cross_only", embedding_dim=2, user_history=True, item_history=True)
    with caplog.at_level(logging.DEBUG, logger="dcnrank.models.table_inputs"):
        model = build_table_dcn(config, no_roles, {"item": 4, "user": 3})
    assert model.inputs.user_history is None and model.inputs.item_history is None
    assert model.in_features == 4  # two columns, no history blocks
    notices = [r.getMessage() for r in caplog.records]
    assert "model.user_history=true: the spec names no `user` and `item` column; built without the user_history" in (
        notices
    )
    assert len(notices) == 2
    model.set_histories(Interactions.from_pairs(torch.tensor([1]), torch.tensor([1]), 3, 4))  # a no-op
    caplog.clear()
    with caplog.at_level(logging.DEBUG, logger="dcnrank.models.table_inputs"), torch.device("meta"):
        build_table_dcn(config, no_roles, {"item": 4, "user": 3})  # bundle checks stay quiet
    assert not caplog.records
    with pytest.raises(ValueError, match=r"need the spec's `user` and `item` roles. Received: user=None, item=None"):
        TableInputs(no_roles, {"item": 4, "user": 3}, 2, user_history=True)


def test_lever_notices_for_numeric_only_and_binary_specs():
    numeric = FeatureSpec((NumericColumn("x"),), label="y", task="binary")
    levers = table_levers(DCNConfig(use_bias_terms=True, clip_output=True), numeric)
    assert not (levers.bias_terms or levers.clip or levers.user_history)
    assert levers.notices == (
        "model.use_bias_terms=true: the spec has no categorical column; built without bias terms",
        "model.clip_output=true applies to regression; off for task='binary'",
    )
    model = build_table_dcn(DCNConfig(structure="cross_only", embedding_dim=2, use_bias_terms=True), numeric, {})
    assert model.output is None


def test_size_counts_the_levers():
    config = DCNConfig(embedding_dim=2, deep_units=(3,), use_bias_terms=True, clip_output=True, user_history=True,
                       item_history=True)  # fmt: skip
    size = table_dcn_size(config, SPEC, SIZES)
    model = build_table_dcn(config, SPEC, SIZES)
    assert size.parameters == count_parameters(model)
    assert size.buffer_bytes == sum(b.numel() * b.element_size() for b in model.buffers())
    assert model.in_features == 4 * 2 + 2 * 2  # three categorical and one numeric block, two histories
    names = set(expected_tensors(config, SPEC, SIZES))
    assert {"output.bias_terms.bias", "output.bias_terms.global_mean", "output.label_range"} <= names
    assert {"inputs.user_history.member_embedding", "inputs.item_history.member_embedding"} <= names


# --------------------------------------------------------------------------- Interactions


def test_interactions_build_group_and_transpose():
    owners = torch.tensor([2, 1, 1, 0, 2], dtype=torch.int32)  # int32 in, as the benchmark's
    pairs = Interactions.from_pairs(owners, torch.tensor([1, 3, 1, 2, 1]), 3, 4)
    assert pairs.indptr.tolist() == [0, 0, 2, 3] and pairs.members.tolist() == [1, 3, 1]
    assert pairs.nbytes == 4 * 8 + 3 * 4
    back = pairs.transpose().transpose()
    assert torch.equal(back.indptr, pairs.indptr) and torch.equal(back.members, pairs.members)
    empty = Interactions.from_pairs(torch.zeros(0, dtype=torch.long), torch.zeros(0, dtype=torch.long), 2, 2)
    assert empty.indptr.tolist() == [0, 0, 0] and empty.transpose().indptr.tolist() == [0, 0, 0]


def test_interactions_rules():
    with pytest.raises(ValueError, match=r"`owners` must be an integer tensor. Received: dtype=torch.float32"):
        Interactions.from_pairs(torch.tensor([1.0]), torch.tensor([1]), 2, 2)
    with pytest.raises(ValueError, match=r"`members` must lie in 0..1. Received: 2..2"):
        Interactions.from_pairs(torch.tensor([1]), torch.tensor([2]), 2, 2)
    with pytest.raises(ValueError, match=r"must be at most 2\*\*31 \(rows are stored as int32\)\. "
                                         r"Received: num_owners=4000000000, num_members=2"):  # fmt: skip
        Interactions.from_pairs(torch.tensor([1]), torch.tensor([1]), 4_000_000_000, 2)
    with pytest.raises(ValueError, match=r"Received: num_owners=2, num_members=2147483649"):
        Interactions.from_pairs(torch.tensor([1]), torch.tensor([1]), 2, 2**31 + 1)
    with pytest.raises(ValueError, match=r"of one length. Received: shapes \(1,\) and \(2,\)"):
        Interactions.from_pairs(torch.tensor([1]), torch.tensor([1, 1]), 2, 2)


def test_interactions_agree_with_a_set_across_blocks(monkeypatch):
    module = importlib.import_module("dcnrank.data.encoding.interactions")
    monkeypatch.setattr(module, "_BLOCK", 7)  # many blocks: the in-place compaction crosses their edges
    generator = torch.Generator().manual_seed(1)
    owners, members = torch.randint(0, 9, (300,), generator=generator), torch.randint(0, 6, (300,), generator=generator)
    pairs = Interactions.from_pairs(owners, members, 9, 6)
    expected = sorted({(o, m) for o, m in zip(owners.tolist(), members.tolist(), strict=True) if o and m})
    assert list(zip(*(t.tolist() for t in pairs.pairs()), strict=True)) == expected
    flipped = sorted((m, o) for o, m in expected)
    assert list(zip(*(t.tolist() for t in pairs.transpose().pairs()), strict=True)) == flipped


def test_interactions_in_buckets_runs_and_long_owners(monkeypatch):
    """A member table of 2**30 rows leaves 2 owners a bucket (int32 values); with blocks of 4 pairs
    owner 1's 6 pairs are one bucket sorted in place, and buckets (2, 3) and (4, 5), 4 pairs, a run of int64 keys."""
    module = importlib.import_module("dcnrank.data.encoding.interactions")
    monkeypatch.setattr(module, "_BLOCK", 4)
    big = 2**30
    owners = torch.tensor([1, 1, 1, 1, 1, 1, 5, 2, 4, 0, 4])
    members = torch.tensor([9, big - 1, 9, 3, 1, 2, 7, 5, 7, 4, 7])
    pairs = Interactions.from_pairs(owners, members, 6, big)
    assert pairs.indptr.tolist() == [0, 0, 5, 6, 6, 7, 8]
    assert pairs.members.tolist() == [1, 2, 3, 9, big - 1, 5, 7, 7]
    assert pairs.members.dtype == torch.int32 and pairs.members.is_contiguous()
    owners = torch.tensor([1, 1, 2, 1, 2, 3])  # duplicates dropped: the result shrinks to the distinct pairs
    pairs = Interactions.from_pairs(owners, torch.tensor([2, 2, 1, 2, 1, 3]), 4, 4)
    assert pairs.indptr.tolist() == [0, 0, 1, 2, 3] and pairs.members.tolist() == [2, 1, 3]
    back = pairs.transpose()
    assert back.indptr.tolist() == [0, 0, 1, 2, 3] and back.members.tolist() == [2, 1, 3]


# --------------------------------------------------------------------------- end to end


def synthetic_table(rows: int = 3000, seed: int = 0) -> dict[str, list]:
    """label = user effect + item effect + noise, 60 users × 40 items."""
    rng = np.random.default_rng(seed)
    user_effect, item_effect = rng.normal(0, 1.0, 60), rng.normal(0, 1.0, 40)
    users, items = rng.integers(0, 60, rows), rng.integers(0, 40, rows)
    labels = 3.0 + user_effect[users] + item_effect[items] + rng.normal(0, 0.3, rows)
    return {"user": users.tolist(), "item": items.tolist(), "y": labels.tolist()}


def test_the_levers_beat_the_same_config_without_them(tmp_path):
    spec = FeatureSpec((CategoricalColumn("user"), CategoricalColumn("item")), label="y", task="regression",
                       user="user", item="item")  # fmt: skip
    table = synthetic_table()
    base = ["model.embedding_dim=4", "model.deep_units=[16]", "model.projection_dim=none", "train.epochs=3",
            "train.batch_size=64", "train.learning_rate=0.002", "data.patience=10"]  # fmt: skip
    levers = ["model.use_bias_terms=true", "model.clip_output=true", "model.user_history=true",
              "model.item_history=true"]  # fmt: skip
    plain = train_table(load_config(overrides=base), spec, table, tmp_path / "plain")
    with_levers = train_table(load_config(overrides=[*base, *levers]), spec, table, tmp_path / "levers")
    assert plain.interactions is not None and with_levers.interactions is not None
    data = with_levers.metrics["data"]
    assert data["interactions"] == len(with_levers.interactions.members) <= data["n_fit"]
    assert data["label_min"] < data["fit_label_mean"] < data["label_max"]
    # seeded: about 0.33 against 0.75 (noise alone: 0.3); the offset and biases start where the plain model must go
    assert with_levers.metrics["validation"]["rmse"] < 0.7 * plain.metrics["validation"]["rmse"]


def test_histories_refuse_streaming_in_one_line(tmp_path):
    spec = FeatureSpec((CategoricalColumn("user"), CategoricalColumn("item")), label="y", task="regression",
                       user="user", item="item")  # fmt: skip
    path = tmp_path / "t.csv"
    table = synthetic_table(rows=50)
    path.write_text("user,item,y\n" + "".join(f"{u},{i},{y}\n" for u, i, y in zip(*table.values(), strict=True)))
    config = load_config(overrides=["data.stream=true", "data.validation=random", "model.user_history=true",
                                    "model.item_history=true"])  # fmt: skip
    with pytest.raises(ConfigError, match=r"model.user_history and model.item_history: do not go with data.stream"):
        train_table(config, spec, path, tmp_path / "b")
