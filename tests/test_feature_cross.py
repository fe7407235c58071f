"""FeatureCross: keras-rs' hand-checked values, low-rank shapes, validation."""

import pytest
import torch
from torch.testing import assert_close

from dcnrank.layers import FeatureCross

X0 = torch.tensor([[0.1, 0.2, 0.3]])
X = torch.tensor([[0.4, 0.5, 0.6]])


def ones_(layer: FeatureCross) -> FeatureCross:
    with torch.no_grad():
        for name, p in layer.named_parameters():
            p.fill_(0.0 if name.endswith("bias") else 1.0)
    return layer


def test_full_rank_all_ones_kernel():
    # W x = 1.5 per output; x0 * 1.5 + x = [0.55, 0.8, 1.05]
    layer = ones_(FeatureCross(3))
    assert_close(layer(X0, X), torch.tensor([[0.55, 0.8, 1.05]]))


def test_low_rank_projection_dim_1():
    # V x = 1.5, U (V x) = 1.5 per output: same as full rank here
    layer = ones_(FeatureCross(3, projection_dim=1))
    assert_close(layer(X0, X), torch.tensor([[0.55, 0.8, 1.05]]))


def test_x_omitted_uses_x0():
    # W x0 = 0.6; x0 * 0.6 + x0 = 1.6 x0
    layer = ones_(FeatureCross(3))
    assert_close(layer(X0), torch.tensor([[0.16, 0.32, 0.48]]))


def test_diag_scale():
    # (W x + 1·x) = [1.9, 2.0, 2.1]; x0 * that + x = [0.59, 0.9, 1.23]
    layer = ones_(FeatureCross(3, diag_scale=1.0))
    assert_close(layer(X0, X), torch.tensor([[0.59, 0.9, 1.23]]))


def test_pre_activation_returning_zeros_gives_x():
    layer = ones_(FeatureCross(3, pre_activation=torch.zeros_like))
    assert_close(layer(X0, X), X)


def test_bias_is_added_before_the_product():
    layer = ones_(FeatureCross(3))
    with torch.no_grad():
        layer.dense.bias.fill_(1.0)
    # x0 * (1.5 + 1) + x
    assert_close(layer(X0, X), X0 * 2.5 + X)


def test_higher_rank_inputs():
    layer = FeatureCross(4, projection_dim=2)
    x0 = torch.randn(2, 5, 4)
    out = layer(x0)
    assert out.shape == (2, 5, 4)
    assert_close(out[1, 3], layer(x0[1, 3:4])[0])


def test_low_rank_shapes_and_parameter_count():
    layer = FeatureCross(192, projection_dim=20)
    assert layer.down_proj.weight.shape == (20, 192)
    assert layer.dense.weight.shape == (192, 20)
    assert sum(p.numel() for p in layer.parameters()) == 192 * 20 + 20 * 192 + 192
    assert layer.kernel().shape == (192, 192)
    assert sum(p.numel() for p in FeatureCross(3).parameters()) == 12
    assert sum(p.numel() for p in FeatureCross(3, use_bias=False).parameters()) == 9


def test_keras_initialisers():
    torch.manual_seed(0)
    layer = FeatureCross(192)
    limit = (6 / (192 + 192)) ** 0.5
    assert layer.dense.weight.abs().max() <= limit
    assert layer.dense.weight.abs().max() > 0.9 * limit
    assert torch.count_nonzero(layer.dense.bias) == 0


def test_kernel_is_u_times_v():
    layer = FeatureCross(4, projection_dim=2)
    x = torch.randn(3, 4)
    assert_close(layer.dense(layer.down_proj(x)) - layer.dense.bias, x @ layer.kernel().T)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"in_features": 0}, r"`in_features` must be a positive int\. Received: in_features=0"),
        ({"in_features": 2.5}, r"in_features=2\.5"),
        ({"in_features": 3, "projection_dim": 0}, r"`projection_dim` .* Received: projection_dim=0"),
        ({"in_features": 3, "projection_dim": 3}, r"projection_dim=3"),
        ({"in_features": 3, "projection_dim": 1.5}, r"projection_dim=1\.5"),
        ({"in_features": 3, "diag_scale": -1.0}, r"`diag_scale` .* Received: diag_scale=-1\.0"),
        ({"in_features": 3, "pre_activation": "relu"}, r"pre_activation='relu'"),
    ],
)
def test_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        FeatureCross(**kwargs)


def test_mismatched_shapes():
    layer = FeatureCross(3)
    with pytest.raises(ValueError, match=r"x0\.shape=\(1, 4\)"):
        layer(torch.zeros(1, 4))
    with pytest.raises(ValueError, match=r"x\.shape=\(2, 3\)"):
        layer(torch.zeros(1, 3), torch.zeros(2, 3))
