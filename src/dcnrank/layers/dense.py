"""A Keras-initialised linear layer: glorot-uniform kernel, zero bias."""

from __future__ import annotations

from torch import nn


class Dense(nn.Linear):
    """`torch.nn.Linear` initialised as `keras.layers.Dense` is.

    Keras draws kernels from glorot-uniform, `U(-a, a)` with
    `a = sqrt(6 / (fan_in + fan_out))`, and starts biases at zero; PyTorch's
    default (kaiming-uniform with a fan-in bias) trains differently on the
    seed's protocol, so every dense layer in dcnrank uses this one.

    Args:
        in_features: int, size of each input sample.
        out_features: int, size of each output sample.
        bias: bool, whether to add a learned bias. Defaults to `True`.

    Example:
        >>> layer = Dense(3, 2)
        >>> layer(torch.ones(4, 3)).shape
        torch.Size([4, 2])
    """

    def reset_parameters(self) -> None:
        nn.init.xavier_uniform_(self.weight)
        if self.bias is not None:
            nn.init.zeros_(self.bias)
