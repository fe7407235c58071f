"""Models: parameter counts equal Keras', structures, embeddings, validation."""

import pytest
import torch
from torch.testing import assert_close

from dcnrank.layers import MLP
from dcnrank.layers.dense import Dense
from dcnrank.models import DCN, CrossNetwork, DCNConfig, FeatureEmbedding, build_dcn
from dcnrank.models.dcn import count_parameters

MOVIELENS_SIZES = [1683, 944, 3, 8, 796, 22]


@pytest.mark.parametrize(
    ("config", "expected"),
    [
        (DCNConfig(), 221_953),
        (DCNConfig(projection_dim=20), 192_769),
        (DCNConfig(structure="deep_only", deep_units=(192, 192, 192)), 221_953),
    ],
)
def test_movielens_parameter_counts(config, expected):
    assert count_parameters(build_dcn(config, vocabulary_sizes=MOVIELENS_SIZES)) == expected


def test_toy_parameter_counts():
    cross = build_dcn(DCNConfig(structure="cross_only", deep_units=()), dense_features=3)
    deep = build_dcn(DCNConfig(structure="deep_only", deep_units=(512, 256, 128)), dense_features=3)
    assert count_parameters(cross) == 16
    assert count_parameters(deep) == 166_401


def test_fused_embedding_equals_separate_tables():
    emb = FeatureEmbedding([4, 3, 5], embedding_dim=2)
    idx = torch.tensor([[3, 0, 4], [1, 2, 0]])
    expected = torch.cat([emb.table(f)[idx[:, f]] for f in range(3)], dim=1)
    assert_close(emb(idx), expected)
    assert emb.weight.abs().max() <= 0.05


def test_cross_network_chains_layers():
    net = CrossNetwork(3, num_layers=2)
    x0 = torch.randn(4, 3)
    assert_close(net(x0), net.layers[1](x0, net.layers[0](x0)))


def test_structures_compose_as_documented():
    torch.manual_seed(0)
    x = torch.tensor([[1, 2], [0, 1]])
    for structure in ("stacked", "parallel", "cross_only", "deep_only"):
        model = build_dcn(DCNConfig(structure=structure, embedding_dim=4, deep_units=(8,)), [5, 3])
        x0 = model.inputs(x)
        if structure == "stacked":
            h = model.deep(model.cross(x0))
        elif structure == "parallel":
            h = torch.cat([model.cross(x0), model.deep(x0)], dim=-1)
        elif structure == "cross_only":
            h = model.cross(x0)
        else:
            h = model.deep(x0)
        assert_close(model(x), model.head(h).squeeze(-1))
    parallel = build_dcn(DCNConfig(structure="parallel", embedding_dim=4, deep_units=(8,)), [5, 3])
    assert parallel.head.in_features == 8 + 8


def test_config_validation():
    with pytest.raises(ValueError, match=r"`structure` must be one of .* Received: structure='tower'"):
        DCNConfig(structure="tower")
    with pytest.raises(ValueError, match=r"`deep_units` must not be empty"):
        DCNConfig(structure="stacked", deep_units=())
    with pytest.raises(ValueError, match=r"exactly one of"):
        build_dcn(DCNConfig(), vocabulary_sizes=[3], dense_features=3)
    with pytest.raises(ValueError, match=r"`dense_features` must be a positive int"):
        build_dcn(DCNConfig(), dense_features=0)
    with pytest.raises(ValueError, match=r"`vocabulary_sizes` .* Received: vocabulary_sizes=\[0\]"):
        FeatureEmbedding([0], 4)
    with pytest.raises(ValueError, match=r"`embedding_dim` must be a positive int"):
        FeatureEmbedding([3], 0)
    with pytest.raises(ValueError, match=r"`indices` must have shape \(B, 2\)"):
        FeatureEmbedding([3, 3], 2)(torch.zeros(4, 3, dtype=torch.long))
    with pytest.raises(ValueError, match=r"`num_layers` must be a positive int"):
        CrossNetwork(3, num_layers=0)
    with pytest.raises(ValueError, match=r"`units` must be positive ints"):
        MLP(3, [4, 0])
    with pytest.raises(ValueError, match=r"`dropout` must be in \[0, 1\)"):
        MLP(3, [4], dropout=1.0)
    with pytest.raises(ValueError, match=r"structure='stacked' needs"):
        DCN(torch.nn.Identity(), 3, None, MLP(3, [4]), "stacked")
    deep = build_dcn(DCNConfig(structure="deep_only"), dense_features=3)
    with pytest.raises(ValueError, match="no cross network"):
        deep.first_cross_layer()


def test_same_seed_same_weights():
    def build():
        torch.manual_seed(7)
        return build_dcn(DCNConfig(embedding_dim=4, deep_units=(8,)), [5, 3])

    a, b = build(), build()
    for pa, pb in zip(a.parameters(), b.parameters(), strict=True):
        assert torch.equal(pa, pb)


@pytest.mark.parametrize(("shape", "bias"), [((64, 3), True), ((5, 7, 3), True), ((64, 3), False), ((64, 40), True)])
def test_dense_equals_torch_linear_in_value_and_gradient(shape, bias):
    torch.manual_seed(0)
    layer = Dense(shape[-1], 32, bias=bias)
    x = torch.randn(*shape, requires_grad=True)
    reference = torch.nn.functional.linear(x, layer.weight, layer.bias)
    out = layer(x)
    assert_close(out, reference)
    g = torch.randn_like(out)
    expected = torch.autograd.grad(reference, [x, *layer.parameters()], g)
    assert_close(torch.autograd.grad(out, [x, *layer.parameters()], g), expected)


def test_a_narrow_dense_input_takes_the_weight_gradient_in_the_fast_order():
    # the toy's first layer, 3 -> 512: autograd must run (3, B) @ (B, 512), not (512, B) @ (B, 3)
    layer = Dense(3, 512)
    x = torch.randn(256, 3)
    with torch.profiler.profile(record_shapes=True) as profile:
        layer(x).sum().backward()
    shapes = [event.input_shapes for event in profile.events() if event.name == "aten::mm"]
    assert [[3, 256], [256, 512]] in shapes
    assert [[512, 256], [256, 3]] not in shapes
