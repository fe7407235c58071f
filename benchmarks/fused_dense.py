"""Does a hand-fused dense + ReLU layer pay on this CPU? (issue 16, "a fused step where it pays")

The seed's toy deep network (3 → 512 → 256 → 128 → 1, batch 1024: the part of the seed's
protocol where dcnrank trails Keras-RS/JAX) trained four ways, the same weights and batches:

- **plain**: `nn.Linear` then `torch.relu`, as dcnrank's `MLP` runs;
- **inplace**: `nn.Linear` then `torch.relu_` (the same autograd, one activation tensor less);
- **custom**: one autograd function per layer: `addmm` then an in-place ReLU (no second
  activation tensor), and a backward that takes the weight gradient of a narrow input as
  `(xᵀ g)ᵀ` (MKL's `gᵀ x` with 3 columns took 1.0 ms, the other order 0.22 ms);
- **onednn**: the same backward, the forward as oneDNN's linear with a ReLU post-op
  (`torch.ops.mkldnn._linear_pointwise`, what inductor emits on a CPU).

Rounds alternate the four; the figure is each one's median ms per training step
(forward, MSE, backward, `KerasAdamW`), and the largest gradient difference to plain.

    PYTHONPATH=src python benchmarks/fused_dense.py [--rounds 6] [--steps 88]
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
from torch import nn

from dcnrank.experiments.toy import mixer_data
from dcnrank.training.optimizer import KerasAdamW

MODES = ("plain", "inplace", "custom", "onednn")
NARROW = 16  # inputs narrower than this take the weight gradient as (xᵀ g)ᵀ


class DenseReLU(torch.autograd.Function):
    """`relu(x Wᵀ + b)` (or without the ReLU) with fewer memory passes than eager."""

    @staticmethod
    def forward(ctx, x, weight, bias, relu, onednn):  # noqa: ANN001, ANN205 - autograd's signature
        if onednn and relu:
            out = torch.ops.mkldnn._linear_pointwise(x, weight, bias, "relu", [None], "")
        else:
            out = torch.addmm(bias, x, weight.t())
            if relu:
                out.clamp_min_(0)
        ctx.save_for_backward(x, weight, out if relu else None)
        ctx.relu = relu
        return out

    @staticmethod
    def backward(ctx, grad):  # noqa: ANN001, ANN205
        x, weight, out = ctx.saved_tensors
        if ctx.relu:
            grad = torch.ops.aten.threshold_backward(grad, out, 0)
        grad_x = grad @ weight if ctx.needs_input_grad[0] else None
        grad_w = (x.t() @ grad).t() if x.shape[1] < NARROW else grad.t() @ x
        return grad_x, grad_w, grad.sum(0), None, None


class ToyDeep(nn.Module):
    def __init__(self, mode: str) -> None:
        super().__init__()
        self.mode = mode
        self.layers = nn.ModuleList([nn.Linear(3, 512), nn.Linear(512, 256), nn.Linear(256, 128), nn.Linear(128, 1)])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for i, layer in enumerate(self.layers):
            relu = i < len(self.layers) - 1
            if self.mode in ("plain", "inplace"):
                x = layer(x)
                if relu:
                    x = torch.relu_(x) if self.mode == "inplace" else torch.relu(x)
            else:
                x = DenseReLU.apply(x, layer.weight, layer.bias, relu, self.mode == "onednn")
        return x.squeeze(-1)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--steps", type=int, default=88, help="training steps per round (88: one toy epoch)")
    args = parser.parse_args(argv)
    x, y = mixer_data(100_000, 0)
    nets = {}
    for mode in MODES:
        torch.manual_seed(0)
        nets[mode] = ToyDeep(mode)
    gradients = {}
    for mode, net in nets.items():
        torch.nn.functional.mse_loss(net(x[:1024]), y[:1024]).backward()
        gradients[mode] = [p.grad.clone() for p in net.parameters()]
        net.zero_grad()
    optimizers = {mode: KerasAdamW(net.parameters(), lr=0.01) for mode, net in nets.items()}

    def round_ms(mode: str, steps: int) -> float:
        net, optimizer = nets[mode], optimizers[mode]
        began = time.perf_counter()
        for step in range(steps):
            rows = slice((step % 87) * 1024, (step % 87 + 1) * 1024)
            loss = torch.nn.functional.mse_loss(net(x[rows]), y[rows])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        return 1000 * (time.perf_counter() - began) / steps

    for mode in MODES:
        round_ms(mode, 10)  # warm-up
    times: dict[str, list[float]] = {mode: [] for mode in MODES}
    for _ in range(args.rounds):
        for mode in MODES:
            times[mode].append(round_ms(mode, args.steps))
    plain = statistics.median(times["plain"])
    for mode in MODES:
        difference = max((a - b).abs().max().item() for a, b in zip(gradients["plain"], gradients[mode], strict=True))
        median = statistics.median(times[mode])
        spread = f"{min(times[mode]):.1f}-{max(times[mode]):.1f}"
        print(f"{mode:7s} median {median:6.2f} ms/step (x{plain / median:.2f} plain), "
              f"rounds {spread}, gradient difference {difference:.1e}")  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
