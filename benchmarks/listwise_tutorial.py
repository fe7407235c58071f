"""keras-rs' "List-wise ranking" tutorial on MovieLens 100K, reproduced in PyTorch through
dcnrank's `ListBatches`, ranking losses and `Trainer` (issue 15), over several seeds.

The tutorial's protocol: ratings scaled to (r − 1) / 4; one seeded shuffle of the 100,000
ratings, the first 70,000 train, the next 15,000 validation, the last 15,000 test; for each
user with at least 5 ratings in a part, lists of 5 movies drawn without replacement, 50 per
user per epoch for training (`ListBatches`: a user whose ratings are all equal is left
out, as dcnrank's ranking runs do), 1 per user for validation and test; user and movie
embeddings 32 wide, concatenated, into Dense 256 → 64 → 1 (ReLU); Adagrad lr 0.1 (Keras'
initial accumulator 0.1, epsilon 1e-7), batches of 1024 lists, 5 epochs; test NDCG@5 with
gain 2^y − 1 (`dcnrank.metrics.ranking.ndcg`, keras-rs' definition). keras-rs published one
run: 0.9109 with MSE, 0.9348 with the pairwise hinge loss. `--model dcn` puts two full-rank
cross layers (`FeatureCross`) on the embeddings before the same MLP. `--model recipe` trains
the table pipeline instead (`train_table` with `task = "ranking"`, the MovieLens source's
spec and columns: genres, year, the user's age, gender, occupation; the recipe,
configs/movielens_100k.toml, with `train.list_size = 5`, `train.lists_per_group = 50` unless
`--set` says otherwise; its own 10% of the training part picks the epoch), scored on the same
test lists.

    DCNRANK_DATA=/path/holding/ml-100k python benchmarks/listwise_tutorial.py --seeds 0 1 2 3 4 5 6 7 8 9
    python benchmarks/listwise_tutorial.py --model dcn --losses mse pairwise_hinge lambda_rank
    python benchmarks/listwise_tutorial.py --model recipe --losses lambda_rank --set train.lists_per_group=0
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import torch
from torch import nn

from dcnrank.bundle import load
from dcnrank.config import load_config
from dcnrank.config.train_config import TrainConfig
from dcnrank.data.sources import MovieLensSource, load_movielens_source
from dcnrank.layers.dense import Dense
from dcnrank.layers.feature_cross import FeatureCross
from dcnrank.layers.mlp import MLP
from dcnrank.metrics.ranking import ndcg
from dcnrank.training.list_batches import ListBatches
from dcnrank.training.ranking_losses import RANKING_LOSSES
from dcnrank.training.trainer import Trainer
from dcnrank.workflows.train import train_table
from dcnrank.world import World

PUBLISHED = {"mse": 0.9109, "pairwise_hinge": 0.9348}  # keras-rs' tutorial, one run
LIST_SIZE, TRAIN_LISTS, BATCH_LISTS, EPOCHS, WIDTH = 5, 50, 1024, 5, 32


# "mse": Keras' MeanSquaredError on the lists' items (every slot of a tutorial list is an item)
LOSSES = RANKING_LOSSES


class Ranker(nn.Module):
    """User and movie embeddings, concatenated, (optionally crossed), into Dense 256 → 64 → 1."""

    def __init__(self, users: int, movies: int, cross_layers: int) -> None:
        super().__init__()
        self.user = nn.Embedding(users, WIDTH)
        self.movie = nn.Embedding(movies, WIDTH)
        for table in (self.user, self.movie):
            nn.init.uniform_(table.weight, -0.05, 0.05)  # Keras' Embedding initialiser
        self.cross = nn.ModuleList(FeatureCross(2 * WIDTH) for _ in range(cross_layers))
        self.deep = MLP(2 * WIDTH, [256, 64])
        self.head = Dense(64, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x0 = torch.cat([self.user(x[:, 0]), self.movie(x[:, 1])], dim=-1)  # (B, 64)
        h = x0
        for layer in self.cross:
            h = layer(x0, h)  # (B, 64)
        return self.head(self.deep(h)).squeeze(-1)  # (B,)


class AdagradTrainer(Trainer):
    def make_optimizer(self, model: nn.Module) -> torch.optim.Optimizer:  # type: ignore[override]
        return torch.optim.Adagrad(model.parameters(), lr=0.1, initial_accumulator_value=0.1, eps=1e-7)


def read_ratings(data_dir: Path) -> np.ndarray:
    """u.data as (user, movie, rating) rows."""
    return np.loadtxt(data_dir / "ml-100k" / "u.data", dtype=np.int64, usecols=(0, 1, 2))


def one_list_per_user(rows: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """For each user with ≥ 5 rows, 5 of them drawn without replacement: (row indices, list of each)."""
    picked = []
    for user in np.unique(rows[:, 0]):
        mine = np.flatnonzero(rows[:, 0] == user)
        if len(mine) >= LIST_SIZE:
            picked.append(rng.choice(mine, LIST_SIZE, replace=False))
    index = np.concatenate(picked)
    return index, np.repeat(np.arange(len(picked)), LIST_SIZE)


def run(ratings: np.ndarray, seed: int, loss: str, cross_layers: int) -> tuple[float, float, float]:
    """(validation NDCG@5, test NDCG@5, seconds) of one seeded run."""
    rng = np.random.default_rng(seed)
    shuffled = ratings[rng.permutation(len(ratings))]
    train, val, test = shuffled[:70_000], shuffled[70_000:85_000], shuffled[85_000:]
    counts = np.bincount(train[:, 0], minlength=ratings[:, 0].max() + 1)
    train = train[counts[train[:, 0]] >= LIST_SIZE]
    x = torch.from_numpy(train[:, :2])
    y = torch.from_numpy((train[:, 2] - 1) / 4).float()
    torch.manual_seed(seed)
    model = Ranker(int(ratings[:, 0].max()) + 1, int(ratings[:, 1].max()) + 1, cross_layers)
    data = ListBatches(x, y, train[:, 0], LIST_SIZE, TRAIN_LISTS, BATCH_LISTS, seed=seed, world=World())
    trainer = AdagradTrainer(TrainConfig(epochs=EPOCHS, learning_rate=0.1, shuffle=False), loss_fn=LOSSES[loss])
    began = time.perf_counter()
    trainer.fit(model, data, None)
    seconds = time.perf_counter() - began
    scores = []
    for part in (val, test):
        index, lists = one_list_per_user(part, rng)
        outputs = trainer.predict(model, torch.from_numpy(part[index, :2])).numpy()
        scores.append(ndcg((part[index, 2] - 1) / 4, outputs, lists, k=LIST_SIZE))
    return scores[0], scores[1], seconds


RECIPE = Path(__file__).resolve().parent.parent / "configs" / "movielens_100k.toml"


def run_recipe(source: MovieLensSource, seed: int, loss: str, settings: list[str]) -> tuple[float, float, float]:
    """(validation NDCG@5, test NDCG@5, seconds) of the table pipeline on the tutorial's split and lists."""
    rng = np.random.default_rng(seed)  # the draws of `run`, in its order: the shuffle, then the lists
    ratings = source.table.column("rating").to_numpy()
    users = source.table.column("user_id").to_numpy()
    order = rng.permutation(len(ratings))
    train, val, test = order[:70_000], order[70_000:85_000], order[85_000:]
    counts = np.bincount(users[train])
    train = train[counts[users[train]] >= LIST_SIZE]  # as `run`: users with 5 training ratings
    relevance = pa.array((ratings - 1) / 4)
    table = source.table.append_column("relevance", relevance)
    spec = dataclasses.replace(source.spec, task="ranking", label="relevance")
    overrides = [f"train.loss={loss}", "train.list_size=5", "train.lists_per_group=50", f"train.seed={seed}",
                 f"data.seed={seed}", *settings]  # fmt: skip
    config = load_config(RECIPE, overrides)
    began = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="dcnrank-tutorial-") as folder:
        result = train_table(config, spec, table.take(train), Path(folder) / "bundle")
        seconds = time.perf_counter() - began
        bundle = load(result.bundle_path)
        scores = []
        for part in (val, test):
            index, lists = one_list_per_user(np.stack([users[part], part], axis=1), rng)
            rows = part[index]
            outputs = bundle.outputs(bundle.encode(table.take(rows))).numpy()
            scores.append(ndcg((ratings[rows] - 1) / 4, outputs, lists, k=LIST_SIZE))
    return scores[0], scores[1], seconds


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", nargs="+", type=int, default=list(range(10)))
    parser.add_argument("--losses", nargs="+", choices=sorted(LOSSES), default=["mse", "pairwise_hinge"])
    parser.add_argument("--model", choices=["mlp", "dcn", "recipe"], default="mlp")
    parser.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE", help="--model recipe: overrides")
    parser.add_argument("--data-dir", type=Path, default=Path(os.environ.get("DCNRANK_DATA", "data")))
    args = parser.parse_args(argv)
    torch.set_num_threads(max(1, os.cpu_count() or 1))
    ratings = read_ratings(args.data_dir)
    cross_layers = 2 if args.model == "dcn" else 0
    source = load_movielens_source("movielens-100k", data_dir=args.data_dir) if args.model == "recipe" else None
    print(f"{args.model}, seeds {args.seeds}: test NDCG@5 mean ± std (validation), seconds per run")
    for loss in args.losses:
        if source is not None:
            runs = [run_recipe(source, seed, loss, args.set) for seed in args.seeds]
        else:
            runs = [run(ratings, seed, loss, cross_layers) for seed in args.seeds]
        test = [r[1] for r in runs]
        spread = statistics.stdev(test) if len(test) > 1 else 0.0
        published = f"   keras-rs published {PUBLISHED[loss]:.4f}" if loss in PUBLISHED and args.model == "mlp" else ""
        print(f"  {loss:<24} {statistics.mean(test):.4f} ± {spread:.4f} ({statistics.mean(r[0] for r in runs):.4f})"
              f"  {statistics.mean(r[2] for r in runs):5.1f} s{published}")  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
