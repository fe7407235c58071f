"""`top_pairs`, `input_blocks` and `model_interactions`: a DCN's cross layer named after its inputs."""

import numpy as np
import pytest
import torch

from dcnrank.data.spec.feature_spec import CategoricalColumn, FeatureSpec, NumericColumn
from dcnrank.explain import input_blocks, interaction_matrix, model_interactions, top_pairs
from dcnrank.models import DCNConfig
from dcnrank.models.table_inputs import build_table_dcn

SPEC = FeatureSpec(
    (NumericColumn("x"), CategoricalColumn("wide", embedding_dim=3), CategoricalColumn("c")), label="y", task="binary"
)


def test_top_pairs_sum_both_directions_and_skip_the_diagonal():
    matrix = np.array([[9.0, 1.0, 0.0], [2.0, 9.0, 4.0], [0.0, 0.5, 9.0]])
    assert top_pairs(matrix, ["a", "b", "c"], k=5) == [("b", "c", 4.5), ("a", "b", 3.0), ("a", "c", 0.0)]
    assert top_pairs(matrix, ["a", "b", "c"], k=1) == [("b", "c", 4.5)]


@pytest.mark.parametrize(
    ("matrix", "labels", "k", "message"),
    [
        (np.zeros((2, 3)), ["a", "b"], 1, r"square with at least 2 rows\. Received: matrix.shape=\(2, 3\)"),
        (np.zeros((1, 1)), ["a"], 1, r"at least 2 rows\. Received: matrix.shape=\(1, 1\)"),
        (np.zeros((2, 2)), ["a"], 1, r"`labels` must name each of the 2 rows\. Received: 1 labels"),
        (np.zeros((2, 2)), ["a", "b"], 0, r"`k` must be a positive int\. Received: k=0"),
        (np.zeros((2, 2)), ["a", "b"], True, r"`k` must be a positive int\. Received: k=True"),
    ],
)
def test_top_pairs_validation(matrix, labels, k, message):
    with pytest.raises(ValueError, match=message):
        top_pairs(matrix, labels, k)


def test_table_model_blocks_follow_table_inputs():
    model = build_table_dcn(DCNConfig(structure="cross_only", embedding_dim=2), SPEC, {"wide": 4, "c": 5})
    assert input_blocks(model) == model.inputs.blocks == (("wide", 3), ("c", 2), ("x", 2))
    found = model_interactions(model)
    assert found.labels == ("wide", "c", "x") and found.block_sizes == (3, 2, 2) and found.layer_type == "FeatureCross"
    np.testing.assert_allclose(found.matrix, interaction_matrix(model.cross.layers[0], block_sizes=[3, 2, 2]))


THREE = FeatureSpec(
    (CategoricalColumn("user"), CategoricalColumn("movie"), CategoricalColumn("zip")), label="y", task="binary"
)
TWO = FeatureSpec((CategoricalColumn("user"), CategoricalColumn("movie")), label="y", task="binary")
SIZES = {"user": 3, "movie": 4, "zip": 5}


@pytest.mark.parametrize("cross_type", ["matrix", "vector", "mixture"])
def test_every_cross_type_and_layer(cross_type):
    config = DCNConfig(structure="stacked", embedding_dim=2, num_cross_layers=2, cross_type=cross_type, deep_units=(4,))
    model = build_table_dcn(config, THREE, SIZES)
    found = model_interactions(model, layer=1)
    assert found.layer == 1 and found.labels == ("user", "movie", "zip") and found.matrix.shape == (3, 3)
    np.testing.assert_allclose(found.matrix, interaction_matrix(model.cross.layers[1], 3))


def test_plot_writes_a_png(tmp_path):
    model = build_table_dcn(DCNConfig(structure="cross_only", embedding_dim=2), TWO, {"user": 3, "movie": 4})
    path = model_interactions(model).plot(tmp_path / "h.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_validation():
    deep = build_table_dcn(
        DCNConfig(structure="deep_only", embedding_dim=2, deep_units=(4,)), TWO, {"user": 3, "movie": 4}
    )
    with pytest.raises(ValueError, match=r"no cross network to explain \(structure='deep_only'\)"):
        model_interactions(deep)
    model = build_table_dcn(
        DCNConfig(structure="cross_only", embedding_dim=2, num_cross_layers=2), TWO, {"user": 3, "movie": 4}
    )
    for layer in (2, -1, 1.0, True):
        with pytest.raises(ValueError, match=rf"`layer` must be an int from 0 to 1, .* Received: layer={layer!r}"):
            model_interactions(model, layer=layer)
    with pytest.raises(ValueError, match=r"must read its inputs with TableInputs .* Received: inputs=NoneType"):
        input_blocks(torch.nn.Linear(2, 2))
