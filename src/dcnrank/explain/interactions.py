"""Feature × feature importance of a cross layer: block norms of its kernel."""

from __future__ import annotations

import numpy as np
import torch

from dcnrank.layers.feature_cross import FeatureCross


def interaction_matrix(layer: FeatureCross, num_features: int) -> np.ndarray:
    """The importance of each feature pair in one cross layer.

    The layer's kernel `W` (`U·V` for a low-rank layer, which the seed could
    not show) is read as Keras stores it, `(inputs, outputs)`, and cut into
    `F × F` blocks of `E × E` entries (`E = d / F`, the embedding size).
    Entry `(i, j)` is the Frobenius norm of the block that carries feature
    `i` of `x` into the output of feature `j`, which `x0_j` multiplies:
    the weight of the cross `x_i × x0_j`. With `E = 1` (dense features, as
    in the toy) it is `|W|`.

    Args:
        layer: a trained `FeatureCross`.
        num_features: int, number of features `F` that make up `d`.

    Returns:
        A non-negative `(F, F)` float64 array.

    Raises:
        ValueError: when `num_features` does not divide the layer's width.

    Example:
        >>> layer = FeatureCross(4)
        >>> interaction_matrix(layer, num_features=2).shape
        (2, 2)
    """
    d = layer.in_features
    if isinstance(num_features, bool) or not isinstance(num_features, int) or num_features < 1 or d % num_features:
        raise ValueError(
            f"`num_features` must be a positive int dividing in_features={d}. "
            f"Received: num_features={num_features!r}"
        )
    e = d // num_features
    with torch.no_grad():
        kernel = layer.kernel().T.double()  # (d_in, d_out), Keras' layout
    blocks = kernel.reshape(num_features, e, num_features, e)  # (F, E, F, E)
    return blocks.square().sum(dim=(1, 3)).sqrt().numpy()  # (F, F)
