"""The peers' DCN-V2 in TorchRec 1.9.2: an `EmbeddingBagCollection` (one table per field,
SUM pooling over one id per row, i.e. the embedding) fed a `KeyedJaggedTensor`, TorchRec's
`CrossNet` (full rank: `x_{l+1} = x0 ⊙ (W_l x_l + b_l) + x_l`), a plain torch MLP and head.

A plain torch loop over the training rows in stored order (TorchRec has no `fit`), with
`torch.optim.Adam(lr=1e-3)` at its defaults and `BCEWithLogitsLoss`; every step builds its
batch's `KeyedJaggedTensor`, inside the timed step. TorchRec's own initialisers throughout
(tables `U(±1/√V)`, cross kernels Xavier normal), torch's for the MLP and head.

    .peers/torchrec/bin/python benchmarks/peers/run_torchrec.py --data DIR --seed 0
"""

from __future__ import annotations

import argparse
import importlib.metadata
import time
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
import torchrec
from common import (
    BATCH_SIZE,
    CROSS_LAYERS,
    DEEP_UNITS,
    EMBEDDING_DIM,
    EVAL_BATCH_SIZE,
    LEARNING_RATE,
    StepTimer,
    batches,
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
from torch import nn
from torchrec.modules.crossnet import CrossNet
from torchrec.modules.embedding_configs import EmbeddingBagConfig, PoolingType
from torchrec.modules.embedding_modules import EmbeddingBagCollection
from torchrec.sparse.jagged_tensor import KeyedJaggedTensor


def feature_keys(num_fields: int) -> list[str]:
    return [f"f{c}" for c in range(num_fields)]


def to_features(ids: np.ndarray, keys: Sequence[str]) -> KeyedJaggedTensor:
    """A `(B, F)` id batch as a `KeyedJaggedTensor`: one id per row and key, keys major."""
    values = torch.from_numpy(np.ascontiguousarray(ids.T)).reshape(-1).long()  # (F·B,)
    return KeyedJaggedTensor.from_lengths_sync(
        keys=list(keys), values=values, lengths=torch.ones(len(values), dtype=torch.long)
    )


class TorchRecDCN(nn.Module):
    """EmbeddingBagCollection → [CrossNet ∥ MLP] → Linear(1): a `KeyedJaggedTensor` to `(B,)` logits."""

    def __init__(self, vocabulary_sizes: Sequence[int]) -> None:
        super().__init__()
        keys = feature_keys(len(vocabulary_sizes))
        tables = [
            EmbeddingBagConfig(
                name=f"table_{key}",
                embedding_dim=EMBEDDING_DIM,
                num_embeddings=size,
                feature_names=[key],
                pooling=PoolingType.SUM,
            )
            for key, size in zip(keys, vocabulary_sizes, strict=True)
        ]
        self.embeddings = EmbeddingBagCollection(tables=tables, device=torch.device("cpu"))
        width = len(vocabulary_sizes) * EMBEDDING_DIM
        self.cross = CrossNet(in_features=width, num_layers=CROSS_LAYERS)
        layers: list[nn.Module] = []
        for a, b in zip((width, *DEEP_UNITS), DEEP_UNITS, strict=False):
            layers += [nn.Linear(a, b), nn.ReLU()]
        self.deep = nn.Sequential(*layers)
        self.head = nn.Linear(width + DEEP_UNITS[-1], 1)

    def forward(self, features: KeyedJaggedTensor) -> torch.Tensor:
        x0 = self.embeddings(features).values()  # (B, F·E), keys in table order
        both = torch.cat([self.cross(x0), self.deep(x0)], dim=1)  # (B, d + 400)
        return self.head(both).squeeze(1)  # (B,)


def benchmark(args: argparse.Namespace) -> dict[str, Any]:
    """Train one epoch and evaluate on the test rows; the runner's JSON record."""
    data = load_data(args.data)
    keys = feature_keys(data.num_fields)
    torch.manual_seed(args.seed)
    model = TorchRecDCN(data.vocabulary_sizes)
    parameters = check_parameters(sum(p.numel() for p in model.parameters()), data.vocabulary_sizes)
    optimizer = torch.optim.Adam(model.parameters(), lr=LEARNING_RATE)
    loss_fn = nn.BCEWithLogitsLoss()

    timer = StepTimer()
    began = time.perf_counter()
    model.train()
    for ids, labels in zip(batches(data.train_ids, BATCH_SIZE), batches(data.train_labels, BATCH_SIZE), strict=True):
        timer.start_step()
        features = to_features(ids, keys)
        loss = loss_fn(model(features), torch.from_numpy(labels))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    timer.finish()
    epoch_s = time.perf_counter() - began

    model.eval()

    @torch.no_grad()
    def predict(batch: np.ndarray) -> np.ndarray:
        return model(to_features(batch, keys)).numpy()

    scores, rows_per_s = time_inference(predict, data.test_ids, EVAL_BATCH_SIZE)
    return make_record(
        library="torchrec",
        variant="default",
        version=f"torchrec {torchrec.__version__}, fbgemm-gpu-cpu {importlib.metadata.version('fbgemm-gpu-cpu')}, "
        f"torch {torch.__version__}",
        seed=args.seed,
        precision="fp32",
        parameters=parameters,
        threads=torch.get_num_threads(),
        train_rows=len(data.train_labels),
        test_rows=len(data.test_labels),
        epoch_s=epoch_s,
        notes="plain torch loop; torch.optim.Adam (eps 1e-8); KeyedJaggedTensor built inside each step",
        **timer.summary(step_rows(len(data.train_labels))),
        **evaluation(data, scores, rows_per_s, probabilities=False),
    )


def main(argv: Sequence[str] | None = None) -> int:
    args = runner_parser(__doc__.split("\n\n")[0]).parse_args(argv)
    torch.set_num_threads(thread_count())
    return run_main(benchmark, args)


if __name__ == "__main__":
    raise SystemExit(main())
