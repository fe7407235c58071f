"""VectorCross (DCN v1): hand-checked values, its rank-one kernel, initialisers, validation."""

import pytest
import torch
from torch.testing import assert_close

from dcnrank.layers import FeatureCross, VectorCross

X0 = torch.tensor([[0.1, 0.2, 0.3]])
X = torch.tensor([[0.4, 0.5, 0.6]])


def ones_(layer: VectorCross) -> VectorCross:
    with torch.no_grad():
        layer.projection.weight.fill_(1.0)
    return layer


def test_all_ones_weight():
    # xᵀ w = 0.4 + 0.5 + 0.6 = 1.5; x0 · 1.5 + 0 + x = [0.55, 0.8, 1.05]
    assert_close(ones_(VectorCross(3))(X0, X), torch.tensor([[0.55, 0.8, 1.05]]))


def test_weight_is_a_scalar_projection_per_row():
    # w = [1, 0, -1]: xᵀ w = 0.4 - 0.6 = -0.2; x0 · -0.2 + x = [0.38, 0.46, 0.54]
    layer = VectorCross(3)
    with torch.no_grad():
        layer.projection.weight.copy_(torch.tensor([[1.0, 0.0, -1.0]]))
    assert_close(layer(X0, X), torch.tensor([[0.38, 0.46, 0.54]]))


def test_bias_is_added_outside_the_product():
    # DCN v1 adds b after x0 · (xᵀ w): [0.55, 0.8, 1.05] + [1, 2, 3]
    layer = ones_(VectorCross(3))
    with torch.no_grad():
        layer.bias.copy_(torch.tensor([1.0, 2.0, 3.0]))
    assert_close(layer(X0, X), torch.tensor([[1.55, 2.8, 4.05]]))


def test_x_omitted_uses_x0():
    # x0ᵀ 1 = 0.6; x0 · 0.6 + x0 = 1.6 x0
    assert_close(ones_(VectorCross(3))(X0), torch.tensor([[0.16, 0.32, 0.48]]))


def test_no_bias():
    layer = VectorCross(3, use_bias=False)
    assert layer.bias is None
    assert sum(p.numel() for p in layer.parameters()) == 3
    assert_close(ones_(layer)(X0, X), torch.tensor([[0.55, 0.8, 1.05]]))


def test_equals_feature_cross_with_rank_one_kernel():
    torch.manual_seed(0)
    vector = VectorCross(5, use_bias=False)
    matrix = FeatureCross(5, use_bias=False)
    with torch.no_grad():
        matrix.dense.weight.copy_(vector.kernel())
    x0, x = torch.randn(4, 5), torch.randn(4, 5)
    assert_close(vector(x0, x), matrix(x0, x))
    assert vector.kernel().shape == (5, 5)
    assert_close(vector.kernel()[3], vector.projection.weight[0])


def test_higher_rank_inputs():
    layer = VectorCross(4)
    x0 = torch.randn(2, 5, 4)
    out = layer(x0)
    assert out.shape == (2, 5, 4)
    assert_close(out[1, 3], layer(x0[1, 3:4])[0])


def test_parameters_and_initialisers():
    torch.manual_seed(0)
    layer = VectorCross(192)
    assert layer.projection.weight.shape == (1, 192)
    assert sum(p.numel() for p in layer.parameters()) == 2 * 192
    limit = (6 / (192 + 1)) ** 0.5  # glorot-uniform, fan_in d, fan_out 1
    assert layer.projection.weight.abs().max() <= limit
    assert layer.projection.weight.abs().max() > 0.9 * limit
    assert torch.count_nonzero(layer.bias) == 0


def test_builds_on_meta_device():
    with torch.device("meta"):
        layer = VectorCross(4)
    assert layer.projection.weight.is_meta


@pytest.mark.parametrize(
    ("in_features", "match"),
    [
        (0, r"`in_features` must be a positive int\. Received: in_features=0"),
        (2.5, r"in_features=2\.5"),
        (True, r"in_features=True"),
    ],
)
def test_bad_arguments(in_features, match):
    with pytest.raises(ValueError, match=match):
        VectorCross(in_features)


def test_mismatched_shapes():
    layer = VectorCross(3)
    with pytest.raises(ValueError, match=r"in_features=3\. Received: x0\.shape=\(1, 4\)"):
        layer(torch.zeros(1, 4))
    with pytest.raises(ValueError, match=r"x\.shape=\(2, 3\)"):
        layer(torch.zeros(1, 3), torch.zeros(2, 3))
