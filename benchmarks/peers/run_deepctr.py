"""The peers' DCN-V2 in DeepCTR-Torch 0.3.0: its `DCN` with `cross_parameterization="matrix"`,
`cross_num=3`, `dnn_hidden_units=(400, 400)`, no linear part, every L2 term 0, no batch norm,
no dropout, trained by its own `model.fit(batch_size=4096, epochs=1, shuffle=False)`.

DeepCTR's model ends in a sigmoid (its `PredictionLayer`), so its loss sees probabilities:
we compile it with torch's `binary_cross_entropy` averaged over the batch (DeepCTR's own
`"binary_crossentropy"` sums over the batch, 4096× the protocol's mean) and
`torch.optim.Adam(lr=1e-3)` at its defaults. Its `fit` feeds ids as float32 through a
`DataLoader` over a `TensorDataset` (rows collated one by one); DeepCTR's initialisers
(embeddings and MLP `N(0, 1e-4)`, cross kernels Xavier normal). Steps are timed by a
forward pre-hook on the model; inference calls the model's forward on each batch.

    .peers/deepctr/bin/python benchmarks/peers/run_deepctr.py --data DIR --seed 0
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Sequence
from typing import Any

import deepctr_torch
import numpy as np
import torch
import torch.nn.functional as F
from common import (
    BATCH_SIZE,
    CROSS_LAYERS,
    DEEP_UNITS,
    EMBEDDING_DIM,
    EVAL_BATCH_SIZE,
    LEARNING_RATE,
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
from deepctr_torch.inputs import SparseFeat
from deepctr_torch.models import DCN


def mean_binary_cross_entropy(
    probabilities: torch.Tensor, labels: torch.Tensor, reduction: str = "sum"
) -> torch.Tensor:
    """The protocol's batch mean, whatever reduction DeepCTR's `fit` asks for (it asks for "sum")."""
    return F.binary_cross_entropy(probabilities, labels, reduction="mean")


def build_model(vocabulary_sizes: Sequence[int], seed: int) -> tuple[DCN, list[str]]:
    """DeepCTR's DCN-M as the protocol sets it, and its input names in order."""
    names = [f"f{c}" for c in range(len(vocabulary_sizes))]
    columns = [
        SparseFeat(name, vocabulary_size=size, embedding_dim=EMBEDDING_DIM)
        for name, size in zip(names, vocabulary_sizes, strict=True)
    ]
    model = DCN(
        linear_feature_columns=[],
        dnn_feature_columns=columns,
        cross_num=CROSS_LAYERS,
        cross_parameterization="matrix",
        dnn_hidden_units=DEEP_UNITS,
        l2_reg_linear=0.0,
        l2_reg_embedding=0.0,
        l2_reg_cross=0.0,
        l2_reg_dnn=0.0,
        dnn_dropout=0.0,
        dnn_use_bn=False,
        task="binary",
        device="cpu",
        seed=seed,
    )
    return model, names


def benchmark(args: argparse.Namespace) -> dict[str, Any]:
    """Train one epoch and evaluate on the test rows; the runner's JSON record."""
    data = load_data(args.data)
    torch.manual_seed(args.seed)
    model, names = build_model(data.vocabulary_sizes, args.seed)
    parameters = check_parameters(sum(p.numel() for p in model.parameters()), data.vocabulary_sizes)
    model.compile(torch.optim.Adam(model.parameters(), lr=LEARNING_RATE), loss=mean_binary_cross_entropy)
    inputs = {name: data.train_ids[:, c] for c, name in enumerate(names)}

    timer = StepTimer()
    hook = model.register_forward_pre_hook(timer.start_step)
    began = time.perf_counter()
    model.fit(inputs, data.train_labels, batch_size=BATCH_SIZE, epochs=1, verbose=0, shuffle=False)
    timer.finish()
    epoch_s = time.perf_counter() - began
    hook.remove()

    model.eval()

    @torch.no_grad()
    def predict(batch: np.ndarray) -> np.ndarray:
        return model(torch.from_numpy(batch).float()).numpy()  # probabilities, (B, 1)

    scores, rows_per_s = time_inference(predict, data.test_ids, EVAL_BATCH_SIZE)
    return make_record(
        library="deepctr",
        variant="default",
        version=f"deepctr-torch {deepctr_torch.__version__}, torch {torch.__version__}",
        seed=args.seed,
        precision="fp32",
        parameters=parameters,
        threads=torch.get_num_threads(),
        train_rows=len(data.train_labels),
        test_rows=len(data.test_labels),
        epoch_s=epoch_s,
        notes="its own fit (DataLoader, ids as float32); BCE on its sigmoid output, batch mean; "
        "torch.optim.Adam (eps 1e-8)",
        **timer.summary(step_rows(len(data.train_labels))),
        **evaluation(data, scores, rows_per_s, probabilities=True),
    )


def main(argv: Sequence[str] | None = None) -> int:
    args = runner_parser(__doc__.split("\n\n")[0]).parse_args(argv)
    torch.set_num_threads(thread_count())
    return run_main(benchmark, args)


if __name__ == "__main__":
    raise SystemExit(main())
