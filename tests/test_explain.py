"""Interaction matrices and heatmaps."""

import matplotlib.image
import numpy as np
import pytest
import torch

from dcnrank.explain import interaction_matrix, plot_heatmap
from dcnrank.layers import FeatureCross, MixtureCross, VectorCross


def test_block_norms_by_hand():
    layer = FeatureCross(4)
    with torch.no_grad():
        # torch stores (out, in); W[out, in] = 10 * in + out, Keras' view is its transpose
        layer.dense.weight.copy_(torch.tensor([[10.0 * i + o for i in range(4)] for o in range(4)]))
    m = interaction_matrix(layer, num_features=2)
    keras_view = np.array([[10.0 * i + o for o in range(4)] for i in range(4)])
    expected = np.array(
        [[np.linalg.norm(keras_view[2 * a : 2 * a + 2, 2 * b : 2 * b + 2]) for b in range(2)] for a in range(2)]
    )
    np.testing.assert_allclose(m, expected)


def test_embedding_dim_one_is_abs_kernel():
    layer = FeatureCross(3)
    np.testing.assert_allclose(interaction_matrix(layer, 3), layer.kernel().detach().T.abs().double().numpy())


def test_low_rank_uses_u_times_v():
    layer = FeatureCross(6, projection_dim=2)
    m = interaction_matrix(layer, 3)
    full = (layer.dense.weight @ layer.down_proj.weight).detach().T.double().numpy()
    assert m.shape == (3, 3)
    assert (m >= 0).all()
    np.testing.assert_allclose(m[1, 2], np.linalg.norm(full[2:4, 4:6]))


def test_validation():
    with pytest.raises(ValueError, match=r"dividing in_features=4\. Received: num_features=3"):
        interaction_matrix(FeatureCross(4), 3)
    with pytest.raises(ValueError, match=r"must be square"):
        plot_heatmap(np.zeros((2, 3)), ["a", "b"], "x.png")
    with pytest.raises(ValueError, match=r"name each of the 2 rows"):
        plot_heatmap(np.zeros((2, 2)), ["a"], "x.png")


def test_heatmap_is_a_png(tmp_path):
    path = plot_heatmap(np.arange(9.0).reshape(3, 3), ["a", "b", "c"], tmp_path / "sub" / "h.png", title="t")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    image = matplotlib.image.imread(path)
    assert image.ndim == 3 and image.shape[0] > 100


def test_unequal_blocks_by_hand():
    layer = FeatureCross(3)
    with torch.no_grad():
        layer.dense.weight.fill_(1.0)
    # blocks of 1 and 2 entries: norms of 1×1, 1×2, 2×1 and 2×2 blocks of ones
    expected = np.array([[1.0, np.sqrt(2.0)], [np.sqrt(2.0), 2.0]])
    np.testing.assert_allclose(interaction_matrix(layer, block_sizes=[1, 2]), expected)


def test_equal_block_sizes_match_num_features():
    layer = FeatureCross(6, projection_dim=2)
    np.testing.assert_allclose(interaction_matrix(layer, block_sizes=(2, 2, 2)), interaction_matrix(layer, 3))


def test_vector_cross_unequal_blocks_by_hand():
    layer = VectorCross(3)
    with torch.no_grad():
        layer.projection.weight.copy_(torch.tensor([[3.0, 4.0, 2.0]]))
    # entry (i, j) = sqrt(E_j) * ||w_i||: ||w_0|| = ||(3, 4)|| = 5, ||w_1|| = 2; E = (2, 1)
    expected = np.array([[5.0 * np.sqrt(2.0), 5.0], [2.0 * np.sqrt(2.0), 2.0]])
    np.testing.assert_allclose(interaction_matrix(layer, block_sizes=[2, 1]), expected)


def test_mixture_cross_unequal_blocks_average_the_experts():
    layer = MixtureCross(3, num_experts=2, projection_dim=1)
    per_expert = [
        np.array([[np.linalg.norm(k.T[:1, :1]), np.linalg.norm(k.T[:1, 1:])],
                  [np.linalg.norm(k.T[1:, :1]), np.linalg.norm(k.T[1:, 1:])]])
        for k in layer.kernels().detach().double().numpy()
    ]  # fmt: skip
    np.testing.assert_allclose(interaction_matrix(layer, block_sizes=[1, 2]), (per_expert[0] + per_expert[1]) / 2)


@pytest.mark.parametrize(
    ("num_features", "block_sizes", "message"),
    [
        (None, None, r"exactly one of `num_features` and `block_sizes`\. Received: num_features=None, block_sizes=No"),
        (2, [2, 2], r"exactly one of .* Received: num_features=2, block_sizes=\[2, 2\]"),
        (None, [1, 2], r"summing to in_features=4\. Received: block_sizes=\[1, 2\]"),
        (None, [], r"non-empty sequence .* Received: block_sizes=\[\]"),
        (None, [0, 4], r"positive ints .* Received: block_sizes=\[0, 4\]"),
        (None, [True, 3], r"positive ints .* Received: block_sizes=\[True, 3\]"),
        (None, [2.0, 2], r"positive ints .* Received: block_sizes=\[2\.0, 2\]"),
        (None, "22", r"Received: block_sizes='22'"),
    ],
)
def test_block_sizes_validation(num_features, block_sizes, message):
    with pytest.raises(ValueError, match=message):
        interaction_matrix(FeatureCross(4), num_features, block_sizes=block_sizes)
