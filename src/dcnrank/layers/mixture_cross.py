"""`MixtureCross`: a cross layer that mixes low-rank experts by a softmax gate (DCN-Mix)."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from dcnrank.layers.feature_cross import check_projection_dim


class MixtureCross(nn.Module):
    """One cross layer of DCN-Mix, the mixture of low-rank experts (Wang et al. 2021, eq. 4).

        y     = Σ_k G_k(x) · E_k(x) + x
        E_k(x) = x0 ⊙ (U_k g(C_k g(V_kᵀ x)) + b_k)
        G_k(x) = softmax_k(g_kᵀ x)

    Each of the `K` experts projects `x` to rank `r` (`V_k`, `d × r`), transforms
    it there (`C_k`, `r × r`), projects back (`U_k`, `d × r`) and adds its bias
    `b_k`; the gate scores each expert with its own `d → 1` linear map `g_k`
    (no bias) and the softmax over experts weighs them. Because the gate weights
    sum to 1 and every expert is multiplied by the same `x0`, the layer computes
    `x0 ⊙ Σ_k G_k (U_k … + b_k) + x`, one product with `x0` for all experts.

    With one expert, identity `g` and `C = I` it is a low-rank `FeatureCross`
    (`U = dense.weight`, `Vᵀ = down_proj.weight`, `b = dense.bias`).

    Parameters (torch's `(out, in)` layout), glorot-uniform per expert as
    Keras `Dense` kernels of the same fan-in and fan-out, biases at zero:
    `down_weight` `(K, r, d)` holds `V_kᵀ`, `middle_weight` `(K, r, r)` holds
    `C_k`, `up_weight` `(K, d, r)` holds `U_k`, `bias` `(K, d)` holds `b_k`,
    `gate_weight` `(K, d)` holds `g_k`.

    Args:
        in_features: int, the size `d` of the last axis of `x0` and `x`.
        num_experts: int ≥ 1, the number of experts `K`. Defaults to 4.
        projection_dim: int or None, each expert's rank `r` (`0 < r < d`);
            None (the default) gives full-rank experts, `r = d`.
        activation: callable or None, the non-linearity `g` applied after `V_kᵀ`
            and after `C_k`. Defaults to `torch.tanh` (the paper's); None is the
            identity.

    Shape:
        `x0` and `x`: `(B, ..., d)`; output: `(B, ..., d)`.

    Raises:
        ValueError: on an argument outside its range (naming it and echoing the
            value), or (calling it) if `x0` and `x` differ in shape or do not end
            in `in_features`.

    Example:
        >>> layer = MixtureCross(in_features=6, num_experts=3, projection_dim=2)
        >>> layer(torch.randn(5, 6)).shape
        torch.Size([5, 6])
        >>> layer.kernels().shape
        torch.Size([3, 6, 6])
    """

    def __init__(
        self,
        in_features: int,
        num_experts: int = 4,
        projection_dim: int | None = None,
        activation: Callable[[torch.Tensor], torch.Tensor] | None = torch.tanh,
    ) -> None:
        super().__init__()
        if isinstance(in_features, bool) or not isinstance(in_features, int) or in_features < 1:
            raise ValueError(f"`in_features` must be a positive int. Received: in_features={in_features!r}")
        if isinstance(num_experts, bool) or not isinstance(num_experts, int) or num_experts < 1:
            raise ValueError(f"`num_experts` must be a positive int. Received: num_experts={num_experts!r}")
        check_projection_dim(projection_dim, in_features)
        if activation is not None and not callable(activation):
            raise ValueError(f"`activation` must be None or a callable. Received: activation={activation!r}")
        d, k = in_features, num_experts
        r = in_features if projection_dim is None else projection_dim
        self.in_features = in_features
        self.num_experts = num_experts
        self.projection_dim = projection_dim
        self.rank = r
        self.activation = activation
        self.down_weight = nn.Parameter(torch.empty(k, r, d))  # V_kᵀ
        self.middle_weight = nn.Parameter(torch.empty(k, r, r))  # C_k
        self.up_weight = nn.Parameter(torch.empty(k, d, r))  # U_k
        self.bias = nn.Parameter(torch.empty(k, d))  # b_k
        self.gate_weight = nn.Parameter(torch.empty(k, d))  # g_k
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Glorot-uniform for each expert's matrices and gate (fan-in and fan-out of one expert), zero biases."""
        with torch.no_grad():
            for expert in range(self.num_experts):
                nn.init.xavier_uniform_(self.down_weight[expert])
                nn.init.xavier_uniform_(self.middle_weight[expert])
                nn.init.xavier_uniform_(self.up_weight[expert])
                nn.init.xavier_uniform_(self.gate_weight[expert : expert + 1])  # a (1, d) kernel: d → 1
            nn.init.zeros_(self.bias)

    def _g(self, values: torch.Tensor) -> torch.Tensor:
        return values if self.activation is None else self.activation(values)

    def gates(self, x: torch.Tensor) -> torch.Tensor:
        """The expert weights `G(x)`: `(B, ..., d) -> (B, ..., K)`, each row summing to 1."""
        return torch.softmax(x @ self.gate_weight.T, dim=-1)  # (B, ..., K)

    def forward(self, x0: torch.Tensor, x: torch.Tensor | None = None) -> torch.Tensor:
        """Cross `x` with `x0`; `x` defaults to `x0` (the first layer of a stack)."""
        if x is None:
            x = x0
        if x0.shape[-1] != self.in_features or x.shape != x0.shape:
            raise ValueError(
                f"`x0` and `x` must have the same shape ending in in_features={self.in_features}. "
                f"Received: x0.shape={tuple(x0.shape)}, x.shape={tuple(x.shape)}"
            )
        low = self._g(torch.einsum("...d,krd->...kr", x, self.down_weight))  # (B, ..., K, r)
        low = self._g(torch.einsum("...kr,ksr->...ks", low, self.middle_weight))  # (B, ..., K, r)
        experts = torch.einsum("...kr,kdr->...kd", low, self.up_weight) + self.bias  # (B, ..., K, d)
        mixed = torch.einsum("...k,...kd->...d", self.gates(x), experts)  # (B, ..., d)
        return x0 * mixed + x  # (B, ..., d)

    def kernels(self) -> torch.Tensor:
        """Each expert's `(d, d)` matrix `U_k C_k V_kᵀ` acting on `x`: a `(K, d, d)` tensor.

        It is the expert's linear map when `g` is the identity, and its Jacobian
        at `x = 0` when `g(0) = 0` and `g'(0) = 1` (tanh).
        """
        return self.up_weight @ self.middle_weight @ self.down_weight  # (K, d, r) @ (K, r, r) @ (K, r, d)

    def extra_repr(self) -> str:
        name = None if self.activation is None else getattr(self.activation, "__name__", repr(self.activation))
        return (
            f"in_features={self.in_features}, num_experts={self.num_experts}, "
            f"projection_dim={self.projection_dim}, activation={name}"
        )
