"""MixtureCross (DCN-Mix): hand-checked values, reduction to FeatureCross, gates, validation."""

import math

import pytest
import torch
from torch.testing import assert_close

from dcnrank.layers import FeatureCross, MixtureCross

X0 = torch.tensor([[0.1, 0.2, 0.3]])
X = torch.tensor([[0.4, 0.5, 0.6]])


def ones_(layer: MixtureCross) -> MixtureCross:
    """Every expert matrix all ones, biases and gates zero (so every gate weight is 1/K)."""
    with torch.no_grad():
        for name in ("down_weight", "middle_weight", "up_weight"):
            getattr(layer, name).fill_(1.0)
        layer.bias.zero_()
        layer.gate_weight.zero_()
    return layer


def test_one_expert_identity_is_the_low_rank_feature_cross_by_hand():
    # Vᵀx = 1.5, C · 1.5 = 1.5, U · 1.5 = 1.5 per output: x0 · 1.5 + x, as FeatureCross's test
    layer = ones_(MixtureCross(3, num_experts=1, projection_dim=1, activation=None))
    assert_close(layer(X0, X), torch.tensor([[0.55, 0.8, 1.05]]))


def test_tanh_activation_by_hand():
    # g = tanh after Vᵀ and after C: each output is tanh(tanh(1.5))
    layer = ones_(MixtureCross(3, num_experts=1, projection_dim=1))
    assert_close(layer(X0, X), X0 * math.tanh(math.tanh(1.5)) + X)


def test_one_expert_equals_random_low_rank_feature_cross():
    torch.manual_seed(0)
    cross = FeatureCross(5, projection_dim=2)
    with torch.no_grad():
        cross.dense.bias.normal_()
    mixture = MixtureCross(5, num_experts=1, projection_dim=2, activation=None)
    with torch.no_grad():
        mixture.down_weight[0].copy_(cross.down_proj.weight)
        mixture.middle_weight[0].copy_(torch.eye(2))
        mixture.up_weight[0].copy_(cross.dense.weight)
        mixture.bias[0].copy_(cross.dense.bias)
    x0, x = torch.randn(4, 5), torch.randn(4, 5)
    assert_close(mixture(x0, x), cross(x0, x))


def test_equal_gates_average_the_experts():
    # gates 0 -> softmax ½, ½; expert outputs 1.5 and 3 · 1.5: mixed 3.0; x0 · 3 + x
    layer = ones_(MixtureCross(3, num_experts=2, projection_dim=1, activation=None))
    with torch.no_grad():
        layer.up_weight[1].fill_(3.0)
    assert_close(layer(X0, X), torch.tensor([[0.7, 1.1, 1.5]]))
    with torch.no_grad():
        layer.bias.copy_(torch.tensor([[1.0] * 3, [3.0] * 3]))
    # ½ (1.5 + 1) + ½ (4.5 + 3) = 5; x0 · 5 + x
    assert_close(layer(X0, X), torch.tensor([[0.9, 1.5, 2.1]]))


def test_gate_weights_follow_a_softmax_of_x():
    # gate logits xᵀg = [0, ln 3] -> weights [¼, ¾]; mixed ¼ · 1.5 + ¾ · 4.5 = 3.75
    layer = ones_(MixtureCross(3, num_experts=2, projection_dim=1, activation=None))
    with torch.no_grad():
        layer.up_weight[1].fill_(3.0)
        layer.gate_weight[1, 0] = math.log(3.0) / 0.4
    assert_close(layer.gates(X), torch.tensor([[0.25, 0.75]]))
    assert_close(layer(X0, X), torch.tensor([[0.775, 1.25, 1.725]]))


def test_two_identical_experts_equal_one():
    torch.manual_seed(1)
    one = MixtureCross(4, num_experts=1, projection_dim=2)
    two = MixtureCross(4, num_experts=2, projection_dim=2)
    with torch.no_grad():
        one.bias.normal_()
        for (name, p_two), p_one in zip(two.named_parameters(), one.parameters(), strict=True):
            p_two.copy_(p_one.expand_as(p_two))
            assert_close(p_two[1], p_one[0], msg=name)
    x0, x = torch.randn(3, 4), torch.randn(3, 4)
    assert_close(two(x0, x), one(x0, x))


def test_kernels_are_each_experts_linear_map():
    torch.manual_seed(2)
    layer = MixtureCross(4, num_experts=3, projection_dim=2, activation=None)
    kernels = layer.kernels()
    assert kernels.shape == (3, 4, 4)
    x = torch.randn(5, 4)
    for k in range(3):
        low = x @ layer.down_weight[k].T @ layer.middle_weight[k].T @ layer.up_weight[k].T
        assert_close(x @ kernels[k].T, low)


def test_full_rank_when_projection_dim_is_none():
    layer = MixtureCross(3, num_experts=2)
    assert layer.rank == 3
    assert layer.up_weight.shape == (2, 3, 3)


def test_x_omitted_uses_x0_and_higher_rank_inputs():
    layer = MixtureCross(4, num_experts=2, projection_dim=2)
    x0 = torch.randn(2, 5, 4)
    out = layer(x0)
    assert out.shape == (2, 5, 4)
    assert_close(out[1, 3], layer(x0[1, 3:4], x0[1, 3:4])[0])


def test_parameters_and_initialisers():
    torch.manual_seed(0)
    d, k, r = 192, 4, 20
    layer = MixtureCross(d, num_experts=k, projection_dim=r)
    assert sum(p.numel() for p in layer.parameters()) == k * (r * d + r * r + d * r + d) + k * d
    for name, fan_in, fan_out in (
        ("down_weight", d, r),
        ("middle_weight", r, r),
        ("up_weight", r, d),
        ("gate_weight", d, 1),  # one d -> 1 map per expert
    ):
        limit = (6 / (fan_in + fan_out)) ** 0.5
        weight = getattr(layer, name)
        assert weight.abs().max() <= limit, name
        assert weight[k - 1].abs().max() > 0.8 * limit, name
    assert torch.count_nonzero(layer.bias) == 0
    assert "num_experts=4" in repr(layer) and "activation=tanh" in repr(layer)


def test_builds_on_meta_device():
    with torch.device("meta"):
        layer = MixtureCross(4, num_experts=2, projection_dim=2)
    assert layer.up_weight.is_meta


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"in_features": 0}, r"`in_features` must be a positive int\. Received: in_features=0"),
        ({"in_features": 3, "num_experts": 0}, r"`num_experts` must be a positive int\. Received: num_experts=0"),
        ({"in_features": 3, "num_experts": True}, r"num_experts=True"),
        ({"in_features": 3, "projection_dim": 0}, r"`projection_dim` .* Received: projection_dim=0"),
        ({"in_features": 3, "projection_dim": 3}, r"below `in_features` \(3\)\. Received: projection_dim=3"),
        ({"in_features": 3, "projection_dim": 1.5}, r"projection_dim=1\.5"),
        ({"in_features": 3, "activation": "tanh"}, r"`activation` must be None or a callable\. .*'tanh'"),
    ],
)
def test_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        MixtureCross(**kwargs)


def test_mismatched_shapes():
    layer = MixtureCross(3, num_experts=2)
    with pytest.raises(ValueError, match=r"in_features=3\. Received: x0\.shape=\(1, 4\)"):
        layer(torch.zeros(1, 4))
    with pytest.raises(ValueError, match=r"x\.shape=\(2, 3\)"):
        layer(torch.zeros(1, 3), torch.zeros(2, 3))
