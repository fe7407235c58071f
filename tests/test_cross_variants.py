"""Every DCN variant (matrix, vector, mixture crosses): config, networks, structures,
vectorized training, bundles and interaction matrices."""

import json
import math
from dataclasses import replace

import numpy as np
import pytest
import torch
from torch.testing import assert_close

from dcnrank.bundle import load, save
from dcnrank.config import ConfigError, TrainRunConfig, load_config
from dcnrank.data.encoding.table_encoder import TableEncoder
from dcnrank.data.spec.feature_spec import CategoricalColumn, FeatureSpec
from dcnrank.explain import interaction_matrix
from dcnrank.layers import FeatureCross, MixtureCross, VectorCross
from dcnrank.models import CrossNetwork, DCNConfig, build_dcn
from dcnrank.models.dcn import count_parameters
from dcnrank.models.table_inputs import build_table_dcn
from dcnrank.training import TrainConfig, Trainer
from dcnrank.training.stacked import StackedTrainer

SIZES = [30, 20, 3, 8]
LAYER_TYPES = {"matrix": FeatureCross, "vector": VectorCross, "mixture": MixtureCross}
VARIANTS = [
    DCNConfig(embedding_dim=4, deep_units=(8,)),
    DCNConfig(embedding_dim=4, deep_units=(8,), cross_type="vector", num_cross_layers=2),
    DCNConfig(embedding_dim=4, deep_units=(8,), cross_type="mixture", num_experts=3, projection_dim=5),
    DCNConfig(embedding_dim=4, deep_units=(8,), cross_type="mixture", num_experts=1),
]

# ----------------------------------------------------------------- config


def test_defaults_are_the_seeds_matrix_cross():
    config = DCNConfig()
    assert (config.cross_type, config.num_experts) == ("matrix", 4)
    model = build_dcn(config, dense_features=3)
    assert all(type(layer) is FeatureCross for layer in model.cross.layers)


@pytest.mark.parametrize("config", VARIANTS)
def test_to_dict_round_trips(config):
    assert DCNConfig(**config.to_dict()) == config
    assert DCNConfig(**json.loads(json.dumps(config.to_dict()))) == config


def test_a_dict_without_the_new_fields_gives_the_matrix_cross():
    old = {k: v for k, v in DCNConfig().to_dict().items() if k not in ("cross_type", "num_experts")}
    assert DCNConfig(**old) == DCNConfig()


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"cross_type": "diagonal"}, r"`cross_type` must be one of matrix, vector, mixture\. "
                                     r"Received: cross_type='diagonal'"),
        ({"cross_type": "vector", "projection_dim": 4}, r"`projection_dim` must be None for cross_type='vector'"
                                                        r".* Received: projection_dim=4"),
        ({"cross_type": "vector", "diag_scale": 1.0}, r"`diag_scale` must be 0 for cross_type='vector'"),
        ({"cross_type": "mixture", "diag_scale": 0.5}, r"`diag_scale` must be 0 for cross_type='mixture'"
                                                       r".* Received: diag_scale=0\.5"),
        ({"num_experts": 0}, r"`num_experts` must be a positive int\. Received: num_experts=0"),
        ({"num_experts": True}, r"num_experts=True"),
    ],
)  # fmt: skip
def test_config_validation(kwargs, match):
    with pytest.raises(ValueError, match=match):
        DCNConfig(**kwargs)


def test_load_config_reads_the_new_fields():
    config = load_config(overrides=["model.cross_type=mixture", "model.num_experts=2", "model.projection_dim=8"])
    assert (config.model.cross_type, config.model.num_experts, config.model.projection_dim) == ("mixture", 2, 8)
    assert TrainRunConfig.from_dict(config.to_dict()) == config
    with pytest.raises(ConfigError, match=r"model: `cross_type` must be one of .* Received: cross_type='cube'"):
        load_config(overrides=["model.cross_type=cube"])
    with pytest.raises(ConfigError, match=r"model\.num_experts: must be an int\. Received: 'two'"):
        load_config(overrides=["model.num_experts=two"])


def test_to_toml_round_trips_a_variant(tmp_path):
    config = TrainRunConfig(model=DCNConfig(cross_type="vector", num_cross_layers=3))
    path = tmp_path / "run.toml"
    path.write_text(config.to_toml())
    assert load_config(path) == config


# ----------------------------------------------------------------- networks


@pytest.mark.parametrize("cross_type", ["matrix", "vector", "mixture"])
@pytest.mark.parametrize("num_layers", [1, 3])
def test_cross_network_chains_layers_of_its_type(cross_type, num_layers):
    torch.manual_seed(0)
    net = CrossNetwork(6, num_layers=num_layers, cross_type=cross_type, num_experts=2)
    assert len(net.layers) == num_layers
    assert all(type(layer) is LAYER_TYPES[cross_type] for layer in net.layers)
    x0 = torch.randn(4, 6)
    x = x0
    for layer in net.layers:
        x = layer(x0, x)
    assert_close(net(x0), x)


def test_cross_network_passes_its_options():
    mixture = CrossNetwork(6, cross_type="mixture", projection_dim=2, num_experts=3).layers[0]
    assert (mixture.num_experts, mixture.rank) == (3, 2)
    assert CrossNetwork(6, cross_type="vector", use_bias=False).layers[0].bias is None
    matrix = CrossNetwork(6, projection_dim=2, diag_scale=0.5).layers[0]
    assert (matrix.projection_dim, matrix.diag_scale) == (2, 0.5)


def test_cross_network_validation():
    with pytest.raises(ValueError, match=r"Received: cross_type='cube'"):
        CrossNetwork(3, cross_type="cube")
    with pytest.raises(ValueError, match=r"`projection_dim` must be None for cross_type='vector'"):
        CrossNetwork(3, cross_type="vector", projection_dim=2)
    with pytest.raises(ValueError, match=r"`num_experts` must be a positive int"):
        CrossNetwork(3, cross_type="mixture", num_experts=0)


@pytest.mark.parametrize("cross_type", ["vector", "mixture"])
@pytest.mark.parametrize("structure", ["stacked", "parallel", "cross_only", "deep_only"])
def test_structures_compose_for_every_cross_type(cross_type, structure):
    torch.manual_seed(0)
    config = DCNConfig(structure=structure, embedding_dim=4, deep_units=(8,), cross_type=cross_type, num_experts=2)
    model = build_dcn(config, [5, 3])
    x = torch.tensor([[1, 2], [0, 1], [4, 0]])
    x0 = model.inputs(x)
    if structure == "stacked":
        h = model.deep(model.cross(x0))
    elif structure == "parallel":
        h = torch.cat([model.cross(x0), model.deep(x0)], dim=-1)
    elif structure == "cross_only":
        h = model.cross(x0)
    else:
        h = model.deep(x0)
        assert model.cross is None
    if model.cross is not None:
        assert type(model.first_cross_layer()) is LAYER_TYPES[cross_type]
    assert_close(model(x), model.head(h).squeeze(-1))


def test_parameter_counts_by_hand():
    # toy, d = 3: vector cross 2·3 + head 3 + 1 = 10
    vector = build_dcn(DCNConfig(structure="cross_only", deep_units=(), cross_type="vector"), dense_features=3)
    assert count_parameters(vector) == 10
    # mixture, K = 2, r = 1: K (Vᵀ 3 + C 1 + U 3 + b 3 + gate 3) = 26, head 4
    config = DCNConfig(structure="cross_only", deep_units=(), cross_type="mixture", num_experts=2, projection_dim=1)
    assert count_parameters(build_dcn(config, dense_features=3)) == 30


# ----------------------------------------------------------------- vectorized training


def _data(n=600):
    g = torch.Generator().manual_seed(0)
    x = torch.stack([torch.randint(0, s, (n,), generator=g) for s in SIZES], dim=1)
    y = torch.randint(1, 6, (n,), generator=g).float()
    return x, y


@pytest.mark.parametrize(
    ("model_config", "shuffle"),
    [
        (DCNConfig(embedding_dim=4, deep_units=(16,), cross_type="vector", num_cross_layers=2), False),
        (DCNConfig(structure="parallel", embedding_dim=4, deep_units=(8,), cross_type="vector"), True),
        (DCNConfig(embedding_dim=4, deep_units=(16,), cross_type="mixture", num_experts=3, projection_dim=3,
                   num_cross_layers=2), True),
        (DCNConfig(structure="cross_only", embedding_dim=4, cross_type="mixture", num_experts=2), False),
    ],
)  # fmt: skip
def test_stacked_equals_sequential(model_config, shuffle):
    x, y = _data()
    config = TrainConfig(epochs=2, batch_size=128, shuffle=shuffle)
    seeds = [11, 12]

    def build(seed):
        torch.manual_seed(seed)
        return build_dcn(model_config, vocabulary_sizes=SIZES)

    sequential = []
    for s in seeds:
        model = build(s)
        sequential.append((model, Trainer(replace(config, seed=s)).fit(model, x, y)))
    stacked = [build(s) for s in seeds]
    histories = StackedTrainer(config, seeds).fit(stacked, x, y)
    for (alone, history), together, stacked_history in zip(sequential, stacked, histories, strict=True):
        for (name, a), b in zip(alone.named_parameters(), together.parameters(), strict=True):
            assert_close(b, a, rtol=1e-4, atol=1e-5, msg=name)
        assert stacked_history.loss == pytest.approx(history.loss, rel=1e-4)
    predictions = StackedTrainer(config, seeds).predict(stacked, x)
    with torch.no_grad():
        assert_close(predictions[1], stacked[1].eval()(x), rtol=1e-5, atol=1e-5)


# ----------------------------------------------------------------- bundles


@pytest.mark.parametrize("config", VARIANTS[1:])
def test_bundle_round_trip(tmp_path, config):
    spec = FeatureSpec((CategoricalColumn("item"), CategoricalColumn("zip")), label="y", task="regression")
    encoder = TableEncoder.fit(spec, {"item": [10, 20, 30], "zip": ["a", "b", "a"], "y": [1.0, 2.0, 3.0]})
    torch.manual_seed(0)
    model = build_table_dcn(config, spec, encoder.table_sizes).eval()
    bundle = load(save(model, tmp_path / "b", model_config=config, encoder=encoder))
    assert bundle.model_config == config
    rows = {"item": [10, 99, 30], "zip": ["b", "a", "zz"]}
    with torch.no_grad():
        assert torch.equal(bundle.predict(rows), model(encoder.encode(rows).features))


# ----------------------------------------------------------------- explanations


def test_vector_interactions_by_hand():
    # w = [1, 2 | 3, 4]: feature 0's block ‖[1, 2]‖ = √5, feature 1's ‖[3, 4]‖ = 5; times √E = √2
    layer = VectorCross(4)
    with torch.no_grad():
        layer.projection.weight.copy_(torch.tensor([[1.0, 2.0, 3.0, 4.0]]))
    expected = np.array([[math.sqrt(10), math.sqrt(10)], [5 * math.sqrt(2), 5 * math.sqrt(2)]])
    np.testing.assert_allclose(interaction_matrix(layer, 2), expected)
    # E = 1: row i is |w_i|
    with torch.no_grad():
        layer.projection.weight.copy_(torch.tensor([[1.0, -2.0, 0.0, 4.0]]))
    np.testing.assert_allclose(interaction_matrix(layer, 4), np.repeat([[1.0], [2.0], [0.0], [4.0]], 4, axis=1))


def _two_expert_layer():
    # expert 0: U = [1, 0]ᵀ, C = -2, Vᵀ = [0, 3] -> W[0, 1] = -6: input 1 into output 0
    # expert 1: U = [0, 1]ᵀ, C = 1, Vᵀ = [1, 0] -> W[1, 0] = 1: input 0 into output 1
    layer = MixtureCross(2, num_experts=2, projection_dim=1, activation=None)
    with torch.no_grad():
        layer.up_weight.copy_(torch.tensor([[[1.0], [0.0]], [[0.0], [1.0]]]))
        layer.middle_weight.copy_(torch.tensor([[[-2.0]], [[1.0]]]))
        layer.down_weight.copy_(torch.tensor([[[0.0, 3.0]], [[1.0, 0.0]]]))
        layer.gate_weight.copy_(torch.tensor([[0.0, 0.0], [math.log(3.0), 0.0]]))
    return layer


def test_mixture_interactions_by_hand():
    layer = _two_expert_layer()
    # (input i, output j): expert 0 gives |−6| at (1, 0), expert 1 gives 1 at (0, 1); mean over experts
    np.testing.assert_allclose(interaction_matrix(layer, 2), [[0.0, 0.5], [3.0, 0.0]])
    # gate logits at x = [1, 0]: [0, ln 3] -> weights [¼, ¾]
    np.testing.assert_allclose(interaction_matrix(layer, 2, gate_inputs=torch.tensor([[1.0, 0.0]])),
                               [[0.0, 0.75], [1.5, 0.0]])  # fmt: skip
    # gate logits at x = 0: equal weights, as without gate_inputs
    np.testing.assert_allclose(interaction_matrix(layer, 2, gate_inputs=torch.zeros(3, 2)), [[0.0, 0.5], [3.0, 0.0]])


def test_mixture_interactions_are_the_mean_of_each_experts_matrix():
    torch.manual_seed(3)
    layer = MixtureCross(6, num_experts=3, projection_dim=2)
    per_expert = []
    for k in range(3):
        single = FeatureCross(6)
        with torch.no_grad():
            single.dense.weight.copy_(layer.kernels()[k])
        per_expert.append(interaction_matrix(single, 3))
    m = interaction_matrix(layer, 3)
    assert m.shape == (3, 3) and m.dtype == np.float64 and (m >= 0).all()
    np.testing.assert_allclose(m, np.mean(per_expert, axis=0))


@pytest.mark.parametrize("config", VARIANTS)
def test_interactions_of_a_dcns_first_layer(config):
    torch.manual_seed(0)
    model = build_dcn(config, vocabulary_sizes=SIZES)
    m = interaction_matrix(model.first_cross_layer(), len(SIZES))
    assert m.shape == (4, 4) and (m >= 0).all() and m.max() > 0
    if config.cross_type == "mixture":
        x0 = model.inputs(_data(50)[0])
        weighted = interaction_matrix(model.first_cross_layer(), len(SIZES), gate_inputs=x0)
        assert weighted.shape == (4, 4) and (weighted >= 0).all()


def test_interaction_validation():
    with pytest.raises(ValueError, match=r"`gate_inputs` only weighs the experts of a MixtureCross; a VectorCross"):
        interaction_matrix(VectorCross(4), 2, gate_inputs=torch.zeros(1, 4))
    with pytest.raises(ValueError, match=r"`gate_inputs` must have shape \(N ≥ 1, 4\)\. .*=\(4,\)"):
        interaction_matrix(MixtureCross(4, num_experts=2), 2, gate_inputs=torch.zeros(4))
    with pytest.raises(ValueError, match=r"gate_inputs\.shape=\(0, 4\)"):
        interaction_matrix(MixtureCross(4, num_experts=2), 2, gate_inputs=torch.zeros(0, 4))
    with pytest.raises(ValueError, match=r"`layer` must be a FeatureCross, VectorCross or MixtureCross\. .*Linear"):
        interaction_matrix(torch.nn.Linear(4, 4), 2)
    with pytest.raises(ValueError, match=r"dividing in_features=6\. Received: num_features=4"):
        interaction_matrix(MixtureCross(6, num_experts=2), 4)
