"""Early stopping: the same epochs as Trainer.fit (one optimizer throughout), best weights kept."""

import pytest
import torch

from dcnrank.training import TrainConfig, Trainer, fit_with_early_stopping


def regression(n=256):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(n, 4, generator=g)
    return x, x @ torch.tensor([1.0, -2.0, 0.5, 0.0]) + 0.3


def linear():
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(4, 1), torch.nn.Flatten(0))


@pytest.mark.parametrize(("shuffle", "precision"), [(False, "fp32"), (True, "fp32"), (True, "bf16")])
def test_same_epochs_as_trainer_fit(shuffle, precision):
    # With patience >= epochs nothing stops early, so every epoch must equal Trainer.fit's:
    # this holds only if Adam's moments and the shuffle generator live across epochs.
    x, y = regression()
    config = TrainConfig(epochs=4, batch_size=64, learning_rate=0.05, shuffle=shuffle, seed=5, precision=precision)
    reference = linear()
    expected = Trainer(config).fit(reference, x, y, validation=(x, y))
    model = linear()
    result = fit_with_early_stopping(Trainer(config), model, x, y, (x, y), patience=4)
    assert [e["loss"] for e in result.history.epochs] == expected.loss
    assert [e["val_rmse"] for e in result.history.epochs] == [e["val_rmse"] for e in expected.epochs]
    assert set(result.history.epochs[0]) == set(expected.epochs[0])
    # Validation RMSE falls every epoch here, so the best epoch is the last one.
    assert result.best_epoch == 4 and not result.stopped_early
    for name, tensor in reference.state_dict().items():
        assert torch.equal(model.state_dict()[name], tensor)


def test_stops_after_patience_and_restores_the_best_epoch():
    # Validating against -y: the better the fit to y, the worse the validation RMSE,
    # so epoch 1 is best and epochs 2 and 3 use up a patience of 2.
    x, y = regression()
    config = TrainConfig(epochs=8, batch_size=64, learning_rate=0.05)
    after_one_epoch = linear()
    Trainer(TrainConfig(epochs=1, batch_size=64, learning_rate=0.05)).fit(after_one_epoch, x, y)
    model = linear()
    result = fit_with_early_stopping(Trainer(config), model, x, y, (x, -y), patience=2)
    rmses = [e["val_rmse"] for e in result.history.epochs]
    assert len(rmses) == 3 and rmses[0] < rmses[1] < rmses[2]
    assert result.best_epoch == 1 and result.best_val_rmse == rmses[0] and result.stopped_early
    for name, tensor in after_one_epoch.state_dict().items():
        assert torch.equal(model.state_dict()[name], tensor)


def test_validation_errors():
    x, y = regression(8)
    trainer = Trainer(TrainConfig(epochs=1))
    with pytest.raises(ValueError, match=r"`patience` must be a positive int\. Received: patience=0"):
        fit_with_early_stopping(trainer, linear(), x, y, (x, y), patience=0)
    with pytest.raises(ValueError, match=r"`x` and `y` must have the same rows\. Received: 8 and 7"):
        fit_with_early_stopping(trainer, linear(), x, y[:7], (x, y), patience=1)
    with pytest.raises(ValueError, match=r"`x` must not be empty"):
        fit_with_early_stopping(trainer, linear(), x[:0], y[:0], (x, y), patience=1)
    with pytest.raises(ValueError, match=r"`validation` must be a non-empty \(x, y\) pair.*Received: 0 and 0"):
        fit_with_early_stopping(trainer, linear(), x, y, (x[:0], y[:0]), patience=1)
