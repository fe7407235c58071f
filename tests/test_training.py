"""Trainer and KerasAdamW: the update rule by hand, determinism, loss goes down."""

import math

import pytest
import torch
from torch.testing import assert_close

from dcnrank.metrics import mae, rmse
from dcnrank.training import KerasAdamW, TrainConfig, Trainer


def _keras_rule(w, m, v, g, t, lr=0.1, weight_decay=0.5):
    """Keras 3's AdamW step `t` by hand: (w, m, v) after it."""
    w = w - lr * weight_decay * w
    m = m + 0.1 * (g - m)
    v = v + 0.001 * (g * g - v)
    return w - lr * math.sqrt(1 - 0.999**t) / (1 - 0.9**t) * m / (v.sqrt() + 1e-7), m, v


def test_keras_adamw_two_steps_by_hand():
    w = torch.nn.Parameter(torch.tensor([1.0, -2.0]))
    opt = KerasAdamW([w], lr=0.1, weight_decay=0.5)
    g = torch.tensor([0.5, 1.0])
    expected, m, v = w.detach().clone(), torch.zeros(2), torch.zeros(2)
    for t in (1, 2):
        w.grad = g.clone()
        opt.step()
        expected, m, v = _keras_rule(expected, m, v, g, t)
        assert_close(w.detach(), expected)


def test_keras_adamw_counts_each_parameters_own_steps_in_any_dtype():
    """A parameter without a gradient on a step is not stepped, and its bias correction counts
    only its own steps; parameters of several dtypes share a group (the fused kernel takes one
    dtype per call)."""
    a = torch.nn.Parameter(torch.tensor([1.0, -2.0]))
    b = torch.nn.Parameter(torch.tensor([0.5, 3.0], dtype=torch.float64))
    opt = KerasAdamW([a, b], lr=0.1, weight_decay=0.5)
    expected = {"a": (a.detach().clone(), torch.zeros(2), torch.zeros(2), 0)}
    expected["b"] = (b.detach().clone(), torch.zeros(2, dtype=torch.float64), torch.zeros(2, dtype=torch.float64), 0)
    g = torch.tensor([0.5, 1.0])
    for step in range(4):
        a.grad = g.clone()
        b.grad = (2 * g).double() if step % 2 else None  # b steps on steps 1 and 3 only
        opt.step()
        for name, p, grad in (("a", a, a.grad), ("b", b, b.grad)):
            w, m, v, t = expected[name]
            if grad is not None:
                w, m, v = _keras_rule(w, m, v, grad, t + 1)
                expected[name] = (w, m, v, t + 1)
            assert_close(p.detach(), w)
    assert opt.state[a]["step"] == 4 and opt.state[b]["step"] == 2


def test_keras_adamw_marks_its_parameters_changed():
    """The step changes weights in place through a fused kernel: their version counters move
    (`Trainer.predict` reuses outputs only while they stand still)."""
    w = torch.nn.Parameter(torch.ones(2))
    opt = KerasAdamW([w])
    before = w._version
    w.grad = torch.ones(2)
    opt.step()
    assert w._version > before


def test_keras_adamw_first_step_moves_by_lr():
    # With no decay, Adam's first step is lr * sign(g) (up to epsilon).
    w = torch.nn.Parameter(torch.zeros(3))
    opt = KerasAdamW([w], lr=0.01, weight_decay=0.0)
    w.grad = torch.tensor([2.0, -3.0, 0.5])
    opt.step()
    assert_close(w.detach(), torch.tensor([-0.01, 0.01, -0.01]), atol=1e-8, rtol=1e-5)


def test_keras_adamw_validation():
    with pytest.raises(ValueError, match=r"`lr` is out of range\. Received: lr=0"):
        KerasAdamW([torch.nn.Parameter(torch.zeros(1))], lr=0)
    with pytest.raises(ValueError, match=r"beta_1=1\.0"):
        KerasAdamW([torch.nn.Parameter(torch.zeros(1))], beta_1=1.0)


def test_metrics_by_hand():
    p, y = torch.tensor([1.0, 2.0, 4.0]), torch.tensor([1.0, 4.0, 3.0])
    assert rmse(p, y) == pytest.approx(math.sqrt(5 / 3))
    assert mae(p, y) == pytest.approx(1.0)
    with pytest.raises(ValueError, match=r"same shape"):
        rmse(p, y[:2])
    with pytest.raises(ValueError, match=r"must not be empty"):
        mae(p[:0], y[:0])


def _regression(n=512):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(n, 4, generator=g)
    y = x @ torch.tensor([1.0, -2.0, 0.5, 0.0]) + 0.3
    return x, y


def _linear():
    return torch.nn.Sequential(torch.nn.Linear(4, 1), torch.nn.Flatten(0))


@pytest.mark.parametrize("shuffle", [False, True])
def test_fit_lowers_the_loss_and_is_deterministic(shuffle):
    x, y = _regression()
    config = TrainConfig(epochs=5, batch_size=64, learning_rate=0.05, shuffle=shuffle, seed=3)
    runs = []
    for _ in range(2):
        torch.manual_seed(0)
        model = _linear()
        history = Trainer(config).fit(model, x, y, validation=(x, y))
        runs.append((history, model))
    (h1, m1), (h2, m2) = runs
    assert h1.loss[-1] < h1.loss[0] / 5
    assert h1.loss == h2.loss
    assert {"val_rmse", "val_mae", "seconds"} <= h1.epochs[0].keys()
    for a, b in zip(m1.parameters(), m2.parameters(), strict=True):
        assert torch.equal(a, b)


def test_fixed_order_differs_from_shuffled():
    x, y = _regression()
    losses = []
    for shuffle in (False, True):
        torch.manual_seed(0)
        losses.append(Trainer(TrainConfig(epochs=2, batch_size=64, shuffle=shuffle)).fit(_linear(), x, y).loss)
    assert losses[0] != losses[1]


def test_evaluate_matches_metrics_and_predict_keeps_order():
    x, y = _regression(100)
    model = _linear()
    trainer = Trainer(TrainConfig(eval_batch_size=7))
    predictions = trainer.predict(model, x)
    with torch.no_grad():
        assert_close(predictions, model(x))
    metrics = trainer.evaluate(model, x, y)
    assert metrics["rmse"] == pytest.approx(rmse(predictions, y))
    assert metrics["loss"] == pytest.approx(metrics["rmse"] ** 2, rel=1e-5)


def test_fit_validation():
    x, y = _regression(10)
    with pytest.raises(ValueError, match=r"same rows\. Received: 10 and 9"):
        Trainer().fit(_linear(), x, y[:9])
    with pytest.raises(ValueError, match=r"must not be empty"):
        Trainer().fit(_linear(), x[:0], y[:0])
    with pytest.raises(ValueError, match=r"`batch_size` must be a positive int\. Received: batch_size=0"):
        TrainConfig(batch_size=0)
    with pytest.raises(ValueError, match=r"learning_rate=-1"):
        TrainConfig(learning_rate=-1)


def test_predict_reuses_its_last_outputs_only_while_the_weights_are_unchanged():
    model = torch.nn.Sequential(torch.nn.Linear(3, 1), torch.nn.Flatten(0))
    x = torch.randn(10, 3)
    calls = []
    model.register_forward_hook(lambda *_: calls.append(1))
    trainer = Trainer(TrainConfig(eval_batch_size=4))
    first = trainer.predict(model, x)
    assert len(calls) == 3
    again = trainer.predict(model, x)
    assert len(calls) == 3 and torch.equal(again, first)  # no second pass
    again.add_(1.0)  # what a caller does with its copy does not reach the kept outputs
    assert torch.equal(trainer.predict(model, x), first)
    with torch.no_grad():
        model[0].bias.add_(1.0)  # an in-place change of a weight: computed afresh
    moved = trainer.predict(model, x)
    assert len(calls) == 6
    torch.testing.assert_close(moved, first + 1.0)
    assert trainer.predict(model, x.clone()) is not None and len(calls) == 9  # another tensor: afresh


def test_predict_never_mistakes_a_new_tensor_for_the_last_one():
    """Chunks of one size made and freed in turn often reuse an address (`id`): each is its own."""
    model = torch.nn.Sequential(torch.nn.Linear(2, 1), torch.nn.Flatten(0))
    data = torch.randn(40, 2)
    trainer = Trainer(TrainConfig())
    chunks = [trainer.predict(model, data[i : i + 10].clone()) for i in range(0, 40, 10)]
    with torch.no_grad():
        torch.testing.assert_close(torch.cat(chunks), model(data))
    x = data.clone()
    first = trainer.predict(model, x)
    x.mul_(2.0)  # the same tensor changed in place: computed afresh
    assert not torch.equal(trainer.predict(model, x), first)


def test_the_validation_after_early_stopping_reuses_the_last_epochs_outputs():
    from dcnrank.training import fit_with_early_stopping

    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(2, 1), torch.nn.Flatten(0))
    x, y = torch.randn(64, 2), torch.randn(64)
    vx, vy = torch.randn(16, 2), torch.randn(16)
    trainer = Trainer(TrainConfig(epochs=2, batch_size=16, learning_rate=1e-4))  # improves each epoch
    result = fit_with_early_stopping(trainer, model, x, y, (vx, vy), patience=3)
    assert result.best_epoch == 2
    calls = []
    model.register_forward_hook(lambda *_: calls.append(1))
    outputs = trainer.predict(model, vx)
    assert calls == []  # the last epoch's validation pass, kept
    with torch.no_grad():
        assert_close(outputs, model(vx))
