"""StackedTrainer: T models trained together equal T models trained one after another."""

from dataclasses import replace

import pytest
import torch
from torch.testing import assert_close

from dcnrank.experiments.protocol import run_trials
from dcnrank.models import DCNConfig, build_dcn
from dcnrank.training import TrainConfig, Trainer
from dcnrank.training.stacked import StackedTrainer

SIZES = [30, 20, 3, 8]


def _data(n=700):
    g = torch.Generator().manual_seed(0)
    x = torch.stack([torch.randint(0, s, (n,), generator=g) for s in SIZES], dim=1)
    y = torch.randint(1, 6, (n,), generator=g).float()
    return x, y


def _build(seed, config):
    torch.manual_seed(seed)
    return build_dcn(config, vocabulary_sizes=SIZES)


@pytest.mark.parametrize("shuffle", [False, True])
@pytest.mark.parametrize(
    "model_config",
    [
        DCNConfig(embedding_dim=4, deep_units=(16, 8)),
        DCNConfig(embedding_dim=4, projection_dim=3, num_cross_layers=2, deep_units=(16,)),
        DCNConfig(structure="parallel", embedding_dim=4, deep_units=(8,)),
        DCNConfig(structure="deep_only", embedding_dim=4, deep_units=(16, 16)),
    ],
)
def test_stacked_equals_sequential(model_config, shuffle):
    x, y = _data()
    config = TrainConfig(epochs=3, batch_size=128, shuffle=shuffle)
    seeds = [11, 12, 13]
    sequential = []
    for s in seeds:
        model = _build(s, model_config)
        history = Trainer(replace(config, seed=s)).fit(model, x, y)
        sequential.append((model, history))
    stacked = [_build(s, model_config) for s in seeds]
    histories = StackedTrainer(config, seeds).fit(stacked, x, y)
    for (alone, history), together, stacked_history in zip(sequential, stacked, histories, strict=True):
        for (name, a), b in zip(alone.named_parameters(), together.parameters(), strict=True):
            assert_close(b, a, rtol=1e-4, atol=1e-5, msg=name)
        assert stacked_history.loss == pytest.approx(history.loss, rel=1e-4)
    predictions = StackedTrainer(config, seeds).predict(stacked, x)
    with torch.no_grad():
        assert_close(predictions[1], stacked[1].eval()(x), rtol=1e-5, atol=1e-5)


def test_run_trials_vectorized_matches_sequential():
    x, y = _data()
    config = TrainConfig(epochs=2, batch_size=256)
    model_config = DCNConfig(embedding_dim=4, deep_units=(8,))
    results = [
        run_trials("m", lambda: build_dcn(model_config, vocabulary_sizes=SIZES), (x, y), (x, y), config, 3, 5,
                   vectorize=v)[0]
        for v in (True, False)
    ]  # fmt: skip
    assert results[0].rmse == pytest.approx(results[1].rmse, rel=1e-4)
    assert results[0].params == results[1].params
    assert len(set(results[0].rmse)) == 3


def test_validation():
    x, y = _data(10)
    with pytest.raises(ValueError, match=r"`seeds` must name at least one model"):
        StackedTrainer(TrainConfig(), [])
    with pytest.raises(ValueError, match=r"one model per seed \(2\)\. Received: 1 models"):
        StackedTrainer(TrainConfig(), [1, 2]).fit([_build(1, DCNConfig(embedding_dim=2, deep_units=(2,)))], x, y)
    with pytest.raises(ValueError, match=r"same rows"):
        StackedTrainer(TrainConfig(), [1]).fit([_build(1, DCNConfig(embedding_dim=2, deep_units=(2,)))], x, y[:3])


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_run_trials_matches_cpu():
    x, y = _data()
    config = TrainConfig(epochs=2, batch_size=128, shuffle=True)
    model_config = DCNConfig(embedding_dim=4, deep_units=(8,))
    results = [
        run_trials("m", lambda: build_dcn(model_config, vocabulary_sizes=SIZES), (x, y), (x, y), config, 3, 5,
                   device=device)[0]
        for device in ("cpu", "cuda")
    ]  # fmt: skip
    assert results[1].rmse == pytest.approx(results[0].rmse, rel=1e-3)
