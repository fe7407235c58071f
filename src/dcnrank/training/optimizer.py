"""`KerasAdamW`: AdamW with the exact update rule and defaults of `keras.optimizers.AdamW`."""

from __future__ import annotations

import math
from collections.abc import Iterable

import torch


class KerasAdamW(torch.optim.Optimizer):
    """AdamW as Keras 3 computes it, so the seed's numbers are comparable.

    Each step `t` (from 1), for every parameter `θ` with gradient `g`:

        θ ← θ − lr · weight_decay · θ                (decoupled decay, every parameter)
        m ← m + (1 − β1)(g − m)
        v ← v + (1 − β2)(g² − v)
        θ ← θ − lr · sqrt(1 − β2ᵗ) / (1 − β1ᵗ) · m / (sqrt(v) + ε)

    It differs from `torch.optim.AdamW` only in where `ε` sits (added to
    `sqrt(v)` before bias correction, as Keras does), and its defaults are
    Keras': `β1 = 0.9`, `β2 = 0.999`, `ε = 1e-7`, `weight_decay = 0.004`.
    All updates are element-wise, so parameters stacked along a leading trial
    axis are updated exactly as if each trial had its own optimizer.

    Args:
        params: parameters or parameter groups.
        lr: float, learning rate. Defaults to 0.001 (Keras'); the seed uses 0.01.
        beta_1: float in [0, 1), first-moment decay. Defaults to 0.9.
        beta_2: float in [0, 1), second-moment decay. Defaults to 0.999.
        epsilon: float > 0. Defaults to 1e-7.
        weight_decay: float ≥ 0. Defaults to 0.004.

    Example:
        >>> w = torch.nn.Parameter(torch.ones(2))
        >>> opt = KerasAdamW([w], lr=0.1)
        >>> w.grad = torch.ones(2); opt.step()
    """

    def __init__(
        self,
        params: Iterable[torch.Tensor] | Iterable[dict],
        lr: float = 0.001,
        beta_1: float = 0.9,
        beta_2: float = 0.999,
        epsilon: float = 1e-7,
        weight_decay: float = 0.004,
    ) -> None:
        for name, value, ok in (
            ("lr", lr, lr > 0),
            ("beta_1", beta_1, 0 <= beta_1 < 1),
            ("beta_2", beta_2, 0 <= beta_2 < 1),
            ("epsilon", epsilon, epsilon > 0),
            ("weight_decay", weight_decay, weight_decay >= 0),
        ):
            if not ok:
                raise ValueError(f"`{name}` is out of range. Received: {name}={value!r}")
        defaults = dict(lr=lr, beta_1=beta_1, beta_2=beta_2, epsilon=epsilon, weight_decay=weight_decay)
        super().__init__(params, defaults)

    @torch.no_grad()
    def step(self, closure=None):  # noqa: ANN001, ANN201 - torch's signature
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            params = [p for p in group["params"] if p.grad is not None]
            if not params:
                continue
            grads = [p.grad for p in params]
            moments, velocities = [], []
            for p in params:
                state = self.state[p]
                if not state:
                    state["step"] = 0
                    state["m"] = torch.zeros_like(p)
                    state["v"] = torch.zeros_like(p)
                state["step"] += 1
                moments.append(state["m"])
                velocities.append(state["v"])
            step = self.state[params[0]]["step"]
            lr, b1, b2 = group["lr"], group["beta_1"], group["beta_2"]
            if group["weight_decay"]:
                torch._foreach_mul_(params, 1.0 - lr * group["weight_decay"])
            torch._foreach_lerp_(moments, grads, 1.0 - b1)
            torch._foreach_mul_(velocities, b2)
            torch._foreach_addcmul_(velocities, grads, grads, value=1.0 - b2)
            alpha = lr * math.sqrt(1.0 - b2**step) / (1.0 - b1**step)
            denominators = torch._foreach_sqrt(velocities)
            torch._foreach_add_(denominators, group["epsilon"])
            torch._foreach_addcdiv_(params, moments, denominators, value=-alpha)
        return loss
