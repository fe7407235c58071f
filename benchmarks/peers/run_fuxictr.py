"""The peers' DCN-V2 in FuxiCTR 2.3.10, built from its public layers: `FeatureEmbedding` (one
`nn.Embedding` per field), `CrossNetV2` (`x_{l+1} = x_l + x0 ⊙ (W_l x_l + b_l)`) beside an
`MLP_Block` [400, 400] ReLU, then a `Linear(1)` logit (FuxiCTR's wheel has no DCNv2 class).

FuxiCTR's initialisation (its `BaseModel.reset_parameters`: Xavier-normal linear layers, zero
biases, embeddings `N(0, 1e-4)`), its `get_optimizer("adam", lr=1e-3)` (torch's Adam at its
defaults), and its own `NpzDataLoader` over the training rows written to an `.npz` (one array
per column, read in stored order, `shuffle=False`). `num_workers=0`, so the batches are
collated in the training process as in every other runner (FuxiCTR's default, 1 worker
process, would add a process the others do not have). A plain torch loop with
`BCEWithLogitsLoss`; FuxiCTR's `fit` would also clip gradients and evaluate as it goes, which
the protocol has not. Inference calls the model's forward on each batch.

    .peers/fuxictr/bin/python benchmarks/peers/run_fuxictr.py --data DIR --seed 0
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections import OrderedDict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import fuxictr
import numpy as np
import torch
from common import (
    BATCH_SIZE,
    CROSS_LAYERS,
    DEEP_UNITS,
    EMBEDDING_DIM,
    EVAL_BATCH_SIZE,
    LEARNING_RATE,
    Data,
    StepTimer,
    check_parameters,
    evaluation,
    load_data,
    make_record,
    run_main,
    runner_parser,
    step_rows,
    thread_count,
    time_inference,
)
from fuxictr.features import FeatureMap
from fuxictr.pytorch.dataloaders.npz_dataloader import NpzDataLoader
from fuxictr.pytorch.layers import CrossNetV2, FeatureEmbedding, MLP_Block
from fuxictr.pytorch.models.rank_model import BaseModel
from fuxictr.pytorch.torch_utils import get_optimizer
from torch import nn

LABEL = "label"


def feature_map(vocabulary_sizes: Sequence[int], folder: str) -> FeatureMap:
    """A FuxiCTR `FeatureMap` of categorical fields `f0 … f38` and the label."""
    features = FeatureMap(dataset_id="peers", data_dir=folder)
    features.features = OrderedDict(
        (f"f{c}", {"type": "categorical", "source": "", "vocab_size": size}) for c, size in enumerate(vocabulary_sizes)
    )
    features.labels = [LABEL]
    features.default_emb_dim = EMBEDDING_DIM
    features.num_fields = features.get_num_fields()
    features.set_column_index()
    return features


def write_npz(path: Path, ids: np.ndarray, labels: np.ndarray) -> None:
    """Rows as FuxiCTR's `NpzDataset` reads them: one array per feature name and the label."""
    arrays = {f"f{c}": ids[:, c] for c in range(ids.shape[1])}
    np.savez(path, **arrays, **{LABEL: labels})


class FuxiDCNv2(nn.Module):
    """FeatureEmbedding → [CrossNetV2 ∥ MLP_Block] → Linear(1): a feature dict to `(B,)` logits."""

    def __init__(self, features: FeatureMap) -> None:
        super().__init__()
        self.names = list(features.features)
        self.embedding = FeatureEmbedding(features, EMBEDDING_DIM)
        width = features.sum_emb_out_dim()
        self.cross = CrossNetV2(width, CROSS_LAYERS)
        self.deep = MLP_Block(
            width, hidden_units=list(DEEP_UNITS), hidden_activations="ReLU", dropout_rates=0.0, batch_norm=False
        )
        self.head = nn.Linear(width + DEEP_UNITS[-1], 1)
        BaseModel.reset_parameters(self)  # FuxiCTR's models initialise so (a plain nn.Module suffices)

    def forward(self, inputs: dict[str, torch.Tensor]) -> torch.Tensor:
        x0 = self.embedding({name: inputs[name] for name in self.names}, flatten_emb=True)  # (B, F·E)
        both = torch.cat([self.cross(x0), self.deep(x0)], dim=-1)  # (B, d + 400)
        return self.head(both).squeeze(-1)  # (B,)


def train_epoch(model: FuxiDCNv2, loader: NpzDataLoader, timer: StepTimer) -> None:
    """One pass over the loader's batches in order, Adam on the mean BCE of the logits."""
    optimizer = get_optimizer("adam", model.parameters(), LEARNING_RATE)
    loss_fn = nn.BCEWithLogitsLoss()
    model.train()
    batches = iter(loader)
    while True:
        timer.start_step()  # before the batch is collated: the loader's work is part of the step
        batch = next(batches, None)
        if batch is None:
            timer.marks.pop()  # that mark began no step
            return
        loss = loss_fn(model(batch), batch[LABEL].float())
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()


def benchmark(args: argparse.Namespace) -> dict[str, Any]:
    """Train one epoch and evaluate on the test rows; the runner's JSON record."""
    data: Data = load_data(args.data)
    torch.manual_seed(args.seed)
    with tempfile.TemporaryDirectory(prefix="peers-fuxictr-") as folder:
        features = feature_map(data.vocabulary_sizes, folder)
        model = FuxiDCNv2(features)
        parameters = check_parameters(sum(p.numel() for p in model.parameters()), data.vocabulary_sizes)
        write_npz(Path(folder) / "train.npz", data.train_ids, data.train_labels)
        loader = NpzDataLoader(features, str(Path(folder) / "train.npz"), batch_size=BATCH_SIZE, num_workers=0)
        timer = StepTimer()
        began = time.perf_counter()
        train_epoch(model, loader, timer)
        timer.finish()
        epoch_s = time.perf_counter() - began

    model.eval()

    @torch.no_grad()
    def predict(batch: np.ndarray) -> np.ndarray:
        return model({f"f{c}": torch.from_numpy(batch[:, c]) for c in range(batch.shape[1])}).numpy()

    scores, rows_per_s = time_inference(predict, data.test_ids, EVAL_BATCH_SIZE)
    return make_record(
        library="fuxictr",
        variant="default",
        version=f"fuxictr {fuxictr.__version__}, torch {torch.__version__}",
        seed=args.seed,
        precision="fp32",
        parameters=parameters,
        threads=torch.get_num_threads(),
        train_rows=len(data.train_labels),
        test_rows=len(data.test_labels),
        epoch_s=epoch_s,
        notes="its layers in a plain torch loop over its NpzDataLoader (num_workers=0); "
        "torch Adam via its get_optimizer (eps 1e-8); no gradient clipping",
        **timer.summary(step_rows(len(data.train_labels))),
        **evaluation(data, scores, rows_per_s, probabilities=False),
    )


def main(argv: Sequence[str] | None = None) -> int:
    args = runner_parser(__doc__.split("\n\n")[0]).parse_args(argv)
    torch.set_num_threads(thread_count())
    return run_main(benchmark, args)


if __name__ == "__main__":
    raise SystemExit(main())
