"""What a ranking step costs beside a pointwise step on the same rows (issue 15's goal: ≤ 1.5×).

The recipe's table model (configs/movielens_100k.toml) on u1's training rows, `--steps`
batches each way of `train.batch_size` rows (256 in the recipe): `TensorBatches` with MSE
(the regression task's step) and `ListBatches` (lists of `train.list_size` rows split from
each user, `train.batch_size // list_size` lists a batch) with each ranking loss. Rounds
alternate the two, and the ratio is of medians of seconds per 1,000 rows trained, measured
in the same process.

    DCNRANK_DATA=/path/holding/ml-100k python benchmarks/ranking_step.py [--losses lambda_rank softmax]
"""

from __future__ import annotations

import argparse
import dataclasses
import statistics
import time
from pathlib import Path

import torch

from dcnrank.config import load_config
from dcnrank.data.encoding.table_encoder import fit_and_encode
from dcnrank.data.sources import load_movielens_source
from dcnrank.models.table_inputs import build_table_dcn
from dcnrank.training.list_batches import ListBatches
from dcnrank.training.tasks import task_loss
from dcnrank.training.trainer import BatchStream, TensorBatches, make_optimizer
from dcnrank.world import World

ROOT = Path(__file__).resolve().parent.parent


def seconds_per_thousand_rows(model: torch.nn.Module, data: BatchStream, loss_fn, config, steps: int) -> float:
    """Train `steps` batches of `data`; seconds per 1,000 rows (after 3 warm-up steps)."""
    optimizer = make_optimizer(model.parameters(), config)
    model.train()
    rows, began = 0, 0.0
    for step, (xb, yb, _) in enumerate(data.batches(0, 0)):
        if step == 3:
            rows, began = 0, time.perf_counter()
        if step == steps + 3:
            break
        loss = loss_fn(model(xb), yb)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        rows += int((yb >= 0).sum()) if yb.dim() == 2 else len(yb)
    return (time.perf_counter() - began) / rows * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--losses", nargs="+", default=["lambda_rank", "pairwise_logistic", "softmax", "list_mle"])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--steps", type=int, default=40)
    args = parser.parse_args()
    config = load_config(ROOT / "configs" / "movielens_100k.toml", ["data.split=u1"])
    source = load_movielens_source("movielens-100k")
    train_rows, _ = source.split_rows("u1", 0)
    spec = dataclasses.replace(source.spec, task="ranking")
    encoder, encoded = fit_and_encode(spec, source.table.take(train_rows))
    x, y = encoded.features, encoded.labels
    c = config.train
    pointwise = TensorBatches(x, y, c.batch_size, torch.Generator().manual_seed(0), World())
    lists = ListBatches(x, y, encoded.groups, c.list_size, c.lists_per_group, c.lists_per_batch, seed=0, world=World())

    def model() -> torch.nn.Module:
        torch.manual_seed(0)
        return build_table_dcn(config.model, spec, encoder.table_sizes)

    print(f"{len(y):,} rows; batches of {c.batch_size} rows, or {c.lists_per_batch} lists of ≤ {c.list_size}")
    mse = task_loss("regression")
    for loss in args.losses:
        ranking = task_loss("ranking", loss)
        ratios = []
        for _ in range(args.rounds):
            base = seconds_per_thousand_rows(model(), pointwise, mse, c, args.steps)
            ranked = seconds_per_thousand_rows(model(), lists, ranking, c, args.steps)
            ratios.append(ranked / base)
        print(f"  {loss:<20} ranking step / pointwise step, per row: {statistics.median(ratios):.2f}× "
              f"(rounds {', '.join(f'{r:.2f}' for r in ratios)})")  # fmt: skip


if __name__ == "__main__":
    main()
