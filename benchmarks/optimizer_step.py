"""What one `KerasAdamW` step costs: torch's fused AdamW kernel (dcnrank's rule since issue 16)
against the seven `_foreach` passes it replaced, on the parameters of three models.

- the seed's toy cross network (16 parameters) and deep network (166,401);
- the peer benchmark's DCN (a 62,400 × 16 table, 3 cross layers of 624, a [400, 400] MLP).

Both rules take the same gradients from the same start; the script prints the largest
difference of the weights after 30 steps, then the median µs per step of each, rounds
alternating.

    PYTHONPATH=src python benchmarks/optimizer_step.py [--rounds 5]
"""

from __future__ import annotations

import argparse
import math
import statistics
import time

import torch

from dcnrank.training.optimizer import KerasAdamW

MODELS = {
    "toy cross": [(3, 3), (3,), (1, 3), (1,)],
    "toy deep": [(512, 3), (512,), (256, 512), (256,), (128, 256), (128,), (1, 128), (1,)],
    "peer DCN": [(62400, 16)] + [(624, 624), (624,)] * 3 + [(400, 624), (400,), (400, 400), (400,), (1, 1024), (1,)],
}
LR, BETA_1, BETA_2, EPSILON, DECAY = 0.01, 0.9, 0.999, 1e-7, 0.004


@torch.no_grad()
def foreach_step(params: list, grads: list, moments: list, velocities: list, step: int) -> None:
    """Keras' AdamW as dcnrank ran it before: seven passes over every tensor."""
    torch._foreach_mul_(params, 1.0 - LR * DECAY)
    torch._foreach_lerp_(moments, grads, 1.0 - BETA_1)
    torch._foreach_mul_(velocities, BETA_2)
    torch._foreach_addcmul_(velocities, grads, grads, value=1.0 - BETA_2)
    denominators = torch._foreach_sqrt(velocities)
    torch._foreach_add_(denominators, EPSILON)
    alpha = LR * math.sqrt(1.0 - BETA_2**step) / (1.0 - BETA_1**step)
    torch._foreach_addcdiv_(params, moments, denominators, value=-alpha)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args(argv)
    torch.manual_seed(0)
    for name, shapes in MODELS.items():
        fused = [torch.nn.Parameter(torch.randn(s)) for s in shapes]
        reference = [p.detach().clone() for p in fused]
        moments = [torch.zeros_like(p) for p in reference]
        velocities = [torch.zeros_like(p) for p in reference]
        optimizer = KerasAdamW(fused, lr=LR, beta_1=BETA_1, beta_2=BETA_2, epsilon=EPSILON, weight_decay=DECAY)
        gradients = [[torch.randn(s) for s in shapes] for _ in range(4)]
        step = 0
        for step in range(1, 31):
            for p, g in zip(fused, gradients[step % 4], strict=True):
                p.grad = g
            optimizer.step()
            foreach_step(reference, gradients[step % 4], moments, velocities, step)
        difference = max((p.detach() - q).abs().max().item() for p, q in zip(fused, reference, strict=True))
        steps = 30 if name == "peer DCN" else 300
        times: dict[str, list[float]] = {"foreach": [], "fused": []}
        for _ in range(args.rounds):
            began = time.perf_counter()
            for i in range(steps):
                foreach_step(reference, gradients[0], moments, velocities, step + i + 1)
            times["foreach"].append(1e6 * (time.perf_counter() - began) / steps)
            began = time.perf_counter()
            for _ in range(steps):
                optimizer.step()
            times["fused"].append(1e6 * (time.perf_counter() - began) / steps)
            step += steps
        foreach_us, fused_us = (statistics.median(times[k]) for k in ("foreach", "fused"))
        print(f"{name:9s}  foreach {foreach_us:8.0f} µs  fused {fused_us:7.0f} µs  (x{foreach_us / fused_us:.1f})"
              f"  weights after 30 steps differ by {difference:.1e}")  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
