"""`TableInputs` and `build_table_dcn`: every block computed by hand, gradients reach every table."""

import pytest
import torch
from torch.testing import assert_close

from dcnrank.data.encoding.table_batch import TableBatch
from dcnrank.data.spec.feature_spec import CategoricalColumn, FeatureSpec, MultiHotColumn, NumericColumn
from dcnrank.models import DCNConfig
from dcnrank.models.table_inputs import TableInputs, build_table_dcn
from dcnrank.training import TrainConfig, Trainer

SPEC = FeatureSpec(
    columns=(
        NumericColumn("x"),
        CategoricalColumn("a"),
        MultiHotColumn("tags", pooling="mean"),
        CategoricalColumn("b", embedding_dim=3),
        NumericColumn("z"),
        CategoricalColumn("c"),
        MultiHotColumn("more", pooling="sum", embedding_dim=1),
    ),
    label="y",
    task="binary",
)
SIZES = {"a": 3, "tags": 4, "b": 2, "c": 5, "more": 3}


def batch():
    return TableBatch(
        categorical=torch.tensor([[1, 1, 4], [0, 0, 2]]),  # a, b, c
        numeric=torch.tensor([[0.5, -1.0], [0.0, 2.0]]),  # x, z
        missing=torch.tensor([[False, False], [True, False]]),
        multi_hot=(torch.tensor([[1, 3, -1], [-1, -1, -1]]), torch.tensor([[2, 2], [0, -1]])),
    )


def test_blocks_layout_and_width():
    inputs = TableInputs(SPEC, SIZES, embedding_dim=2)
    # Categorical groups by width in order of first use (a, c are 2 wide; b is 3), then numeric, then multi-hot.
    assert inputs.blocks == (("a", 2), ("c", 2), ("b", 3), ("x", 2), ("z", 2), ("tags", 2), ("more", 1))
    assert inputs.out_features == 14 and inputs(batch()).shape == (2, 14)


def test_every_block_by_hand():
    inputs = TableInputs(SPEC, SIZES, embedding_dim=2)
    x0 = inputs(batch())
    wide, narrow = inputs.embeddings
    # a (row 1 of a's table) and c (row 4 of c's), from the fused 2-wide table a|c.
    assert_close(x0[0, 0:2], wide.table(0)[1])
    assert_close(x0[0, 2:4], wide.table(1)[4])
    assert_close(x0[1, 0:2], wide.table(0)[0])  # OOV row
    assert_close(x0[0, 4:7], narrow.table(0)[1])
    with torch.no_grad():
        inputs.numeric_weight.copy_(torch.tensor([[1.0, 2.0], [3.0, 4.0]]))
        inputs.missing_weight.copy_(torch.tensor([[10.0, 20.0], [30.0, 40.0]]))
        inputs.numeric_bias.copy_(torch.tensor([[0.1, 0.2], [0.3, 0.4]]))
        inputs.missing_default.copy_(torch.tensor([7.0, 8.0]))
    x0 = inputs(batch())
    # x = 0.5 present: 0.5·[1, 2] + [0.1, 0.2]; z = -1: -1·[3, 4] + [0.3, 0.4]
    assert_close(x0[0, 7:11], torch.tensor([0.6, 1.2, -2.7, -3.6]))
    # x missing in row 1: default 7 replaces it and the flag adds u: 7·[1, 2] + [10, 20] + [0.1, 0.2]
    assert_close(x0[1, 7:9], torch.tensor([17.1, 34.2]))
    tags, more = inputs.bags
    assert_close(x0[0, 11:13], (tags.weight[1] + tags.weight[3]) / 2)  # mean over the 2 items, padding excluded
    assert_close(x0[1, 11:13], torch.zeros(2))  # no items: zeros
    assert_close(x0[0, 13:14], 2 * more.weight[2])  # sum: the same item twice counts twice
    assert_close(x0[1, 13:14], more.weight[0])  # an OOV item is an item


def test_padding_rows_start_and_stay_zero():
    inputs = TableInputs(SPEC, SIZES, embedding_dim=2)
    assert all(bag.weight[bag.padding_idx].abs().sum() == 0 for bag in inputs.bags)
    inputs(batch()).sum().backward()
    assert all(bag.weight.grad[bag.padding_idx].abs().sum() == 0 for bag in inputs.bags)
    assert all(p.grad is not None for p in inputs.parameters())


def test_numeric_only_and_categorical_only_specs():
    numeric = FeatureSpec((NumericColumn("x"),), label="y", task="regression")
    assert TableInputs(numeric, {}, 4).out_features == 4
    categorical = FeatureSpec((CategoricalColumn("a"), CategoricalColumn("b")), label="y", task="regression")
    inputs = TableInputs(categorical, {"a": 3, "b": 2}, 4)
    assert len(inputs.embeddings) == 1 and inputs._group_positions == [None]  # one table, no gather
    batch = TableBatch(torch.tensor([[2, 1]]), torch.zeros(1, 0), torch.zeros(1, 0, dtype=torch.bool))
    assert_close(inputs(batch), inputs.embeddings[0](torch.tensor([[2, 1]])))


@pytest.mark.parametrize(
    ("sizes", "dim", "message"),
    [
        (
            {**SIZES, "a": 0},
            2,
            r"`table_sizes` must give a positive int for exactly the columns \['a', 'tags', 'b', 'c', 'more'\]",
        ),
        ({k: v for k, v in SIZES.items() if k != "c"}, 2, r"`table_sizes` must give a positive int"),
        ({**SIZES, "x": 3}, 2, r"`table_sizes` must give a positive int for exactly the columns"),
        (SIZES, 0, r"`embedding_dim` must be a positive int\. Received: embedding_dim=0"),
    ],
)
def test_table_inputs_rules(sizes, dim, message):
    with pytest.raises(ValueError, match=message):
        TableInputs(SPEC, sizes, dim)


@pytest.mark.parametrize(
    "config",
    [
        DCNConfig(structure="cross_only", embedding_dim=2, num_cross_layers=2),
        DCNConfig(structure="stacked", embedding_dim=2, projection_dim=3, deep_units=(4,)),
        DCNConfig(structure="parallel", embedding_dim=2, deep_units=(4,)),
        DCNConfig(structure="deep_only", embedding_dim=2, deep_units=(4, 4)),
        DCNConfig(structure="cross_only", embedding_dim=2, cross_type="mixture", projection_dim=2, num_experts=2),
    ],
)
def test_build_table_dcn_trains_with_the_plain_trainer(config):
    torch.manual_seed(0)
    model = build_table_dcn(config, SPEC, SIZES)
    assert model.in_features == 14 and model.structure == config.structure
    rows = batch()
    x = rows[torch.tensor([0, 1] * 16)]
    y = torch.tensor([1.0, 0.0] * 16)
    history = Trainer(TrainConfig(epochs=5, batch_size=8, shuffle=True)).fit(model, x, y)
    assert history.loss[-1] < history.loss[0]
    assert model(rows).shape == (2,)
