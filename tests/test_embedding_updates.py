"""Sparse embedding updates (issue 16): row-wise AdamW equals the dense rule on rows touched
every step and follows it closely on rows touched now and then; row-wise Adagrad; the trainer
turns them on by `train.embedding_updates`; checkpoints resume them; DDP all-reduces them."""

import copy
import json
import subprocess
import sys

import pytest
import torch

from dcnrank.config.model_config import DCNConfig
from dcnrank.config.train_config import TrainConfig
from dcnrank.models.dcn import build_dcn
from dcnrank.training.embedding_updates import rowwise_adagrad_, wants_sparse
from dcnrank.training.optimizer import KerasAdamW
from dcnrank.training.trainer import Trainer

V, E = 6, 3


def sparse(rows, values):
    return torch.sparse_coo_tensor(rows.unsqueeze(0), values, (V, E), check_invariants=True)


def gradients(steps, every, seed=0):
    """Rows 0 and 1 get a gradient every step, rows 2…5 every `every`-th step."""
    g = torch.Generator().manual_seed(seed)
    out = []
    for t in range(steps):
        rows = torch.arange(V) if t % every == 0 else torch.tensor([0, 1])
        out.append((rows, torch.randn(len(rows), E, generator=g) * 0.1 + 0.05))
    return out


def run_rule(grads, rule, lr=0.01, weight_decay=0.004, warmup=0):
    w = torch.nn.Parameter(torch.linspace(-1, 1, V * E).view(V, E))
    opt = KerasAdamW([{"params": [w], "rule": rule}], lr=lr, weight_decay=weight_decay)
    for t, (rows, values) in enumerate(grads):
        opt.param_groups[0]["lr"] = lr * min(1.0, (t + 1) / warmup) if warmup else lr
        if rule == "adamw":
            w.grad = torch.zeros(V, E).index_copy(0, rows, values)
        else:
            w.grad = sparse(rows, values)
        opt.step()
    opt.catch_up()
    return w.detach(), opt


def test_rows_touched_every_step_are_updated_exactly_as_by_the_dense_rule():
    grads = gradients(30, every=1)
    dense, _ = run_rule(grads, "adamw", warmup=10)
    rows, _ = run_rule(grads, "adamw_rows", warmup=10)
    torch.testing.assert_close(rows, dense, rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("every", [4, 20])
def test_rows_touched_now_and_then_follow_the_dense_rule(every):
    start = torch.linspace(-1, 1, V * E).view(V, E)
    grads = gradients(400, every)
    dense, _ = run_rule(grads, "adamw")
    rows, _ = run_rule(grads, "adamw_rows")
    moved = (dense - start).abs().max()
    assert moved > 0.5
    assert (rows - dense).abs().max() < 0.1 * moved  # lazily caught up: close, not equal


def test_without_the_catch_up_rare_rows_lag_the_dense_rule():
    """The catch-up is what keeps rare rows near the dense rule: a pure lazy update (moments
    frozen while a row is not touched) is further from it."""
    grads = gradients(400, every=20)
    dense, _ = run_rule(grads, "adamw")
    rows, _ = run_rule(grads, "adamw_rows")
    w = torch.nn.Parameter(torch.linspace(-1, 1, V * E).view(V, E))
    m, v = torch.zeros(V, E), torch.zeros(V, E)
    for t, (index, g) in enumerate(grads, start=1):  # the textbook lazy Adam, no catch-up
        with torch.no_grad():
            w[index] *= 1 - 0.01 * 0.004
            m[index] = m[index] * 0.9 + 0.1 * g
            v[index] = v[index] * 0.999 + 0.001 * g * g
            w[index] -= 0.01 * (1 - 0.999**t) ** 0.5 / (1 - 0.9**t) * m[index] / (v[index].sqrt() + 1e-7)
    assert (rows - dense).abs().max() < (w.detach() - dense).abs().max()


def test_rowwise_adagrad_by_hand_and_the_same_for_sparse_and_dense_gradients():
    grads = gradients(5, every=2)
    group = {"lr": 0.1, "epsilon": 1e-7}
    a, b = torch.zeros(V, E), torch.zeros(V, E)
    state_a, state_b = {}, {}
    for rows, values in grads:
        rowwise_adagrad_(a, sparse(rows, values), state_a, group)
        rowwise_adagrad_(b, torch.zeros(V, E).index_copy(0, rows, values), state_b, group)
    torch.testing.assert_close(a, b)
    # row 0, by hand: s accumulates the mean square of each step's gradient row
    s, expected = 0.0, torch.zeros(E)
    for _, values in grads:
        s += float(values[0].square().mean())
        expected -= 0.1 * values[0] / (s**0.5 + 1e-7)
    torch.testing.assert_close(a[0], expected)


def test_auto_is_sparse_only_for_tables_larger_than_a_batch_looks_up_and_no_table_penalty():
    assert wants_sparse("auto", 10_000_000, 4096 * 39)
    assert not wants_sparse("auto", 60_000, 4096 * 39)
    assert not wants_sparse("auto", 10_000_000, 4096 * 39, penalises_tables=True)
    sizes = [5000, 5000, 5000]
    trainer = Trainer(TrainConfig(batch_size=64))
    assert trainer.use_sparse_gradients(dcn(sizes, l2_scope="batch"))  # 15,000 rows > 2 × 64 × 3
    assert not trainer.use_sparse_gradients(dcn(sizes, l2_scope="table"))
    assert not Trainer(TrainConfig(batch_size=4096)).use_sparse_gradients(dcn(sizes, l2_scope="batch"))
    assert wants_sparse("sparse", 10, 4096) and not wants_sparse("dense", 10**9, 1)
    with pytest.raises(ValueError, match="embedding_updates"):
        TrainConfig(embedding_updates="lazy")
    with pytest.raises(ValueError, match="embedding_optimizer"):
        TrainConfig(embedding_optimizer="sgd")


def categorical_data(n=2000, seed=0):
    g = torch.Generator().manual_seed(seed)
    sizes = [200, 150, 40]
    x = torch.stack([torch.randint(0, s, (n,), generator=g) for s in sizes], dim=1)
    y = ((x[:, 0] % 7) / 7.0 - (x[:, 1] % 5) / 5.0 + (x[:, 2] % 3) / 3.0).float()
    return sizes, x, y


def dcn(sizes, l2_scope="table"):
    torch.manual_seed(0)
    config = DCNConfig(embedding_dim=4, deep_units=(16,), embedding_l2=1e-4, embedding_l2_scope=l2_scope)
    return build_dcn(config, sizes)


@pytest.mark.parametrize("optimizer", ["adamw", "rowwise_adagrad"])
def test_the_trainer_updates_only_the_rows_a_run_looked_up(optimizer):
    sizes, x, y = categorical_data()
    x = x.clone()
    x[:, 0] = x[:, 0] % 100  # rows 100…199 of the first table are never looked up
    model = dcn(sizes)
    before = model.inputs.weight.detach().clone()
    config = TrainConfig(epochs=3, batch_size=64, learning_rate=0.01, embedding_updates="sparse",
                         embedding_optimizer=optimizer, embedding_learning_rate=0.05)  # fmt: skip
    history = Trainer(config).fit(model, x, y)
    assert model.inputs.sparse
    assert history.loss[-1] < history.loss[0]
    after = model.inputs.weight.detach()
    steps = 3 * 32
    decay = (1 - 0.05 * config.weight_decay) ** steps if optimizer == "adamw" else 1.0  # AdamW's, caught up
    torch.testing.assert_close(after[100:200], before[100:200] * decay)  # untouched: no move, no penalty
    assert (after[:100] - before[:100]).abs().max() > 1e-3


def test_sparse_updates_train_as_well_as_dense_ones():
    sizes, x, y = categorical_data()
    losses = {}
    for updates in ("dense", "sparse"):
        model = dcn(sizes)
        config = TrainConfig(epochs=4, batch_size=64, learning_rate=0.01, shuffle=True, embedding_updates=updates)
        history = Trainer(config).fit(model, x[:1600], y[:1600], validation=(x[1600:], y[1600:]))
        losses[updates] = history.epochs[-1]["val_rmse"]
    assert losses["sparse"] < 1.1 * losses["dense"]


def test_an_interrupted_sparse_run_resumes_to_the_same_weights(tmp_path):
    sizes, x, y = categorical_data(600)
    config = TrainConfig(epochs=2, batch_size=50, learning_rate=0.01, shuffle=True, checkpoint_every=5,
                         embedding_updates="sparse")  # fmt: skip
    reference = dcn(sizes)
    Trainer(config).fit(reference, x, y)
    calls = {"n": 0}

    def crashing(predictions, labels):
        calls["n"] += 1
        if calls["n"] > 17:  # mid epoch 2 (12 batches an epoch), after the checkpoint at step 15
            raise KeyboardInterrupt
        return torch.nn.functional.mse_loss(predictions, labels)

    with pytest.raises(KeyboardInterrupt):
        Trainer(config, loss_fn=crashing).fit(dcn(sizes), x, y, checkpoint_dir=tmp_path)
    resumed = dcn(sizes)
    Trainer(config).fit(resumed, x, y, checkpoint_dir=tmp_path, resume=True)
    for name, tensor in reference.state_dict().items():
        torch.testing.assert_close(resumed.state_dict()[name], tensor, rtol=0, atol=0)


def test_two_torchrun_ranks_all_reduce_sparse_gradients_to_the_one_process_result(tmp_path):
    """DDP on gloo sums the ranks' sparse gradients; without dropout, 2 ranks train what 1 does."""
    rows = ["u,i,c,y"]
    g = torch.Generator().manual_seed(0)
    for _ in range(1200):
        u, i, c = (int(torch.randint(0, k, (1,), generator=g)) for k in (120, 80, 10))
        rows.append(f"u{u},i{i},c{c},{(u % 5) - (i % 3) + 0.1 * c}")
    data, spec = tmp_path / "t.csv", tmp_path / "spec.toml"
    data.write_text("\n".join(rows) + "\n")
    spec.write_text('task = "regression"\nlabel = "y"\n[columns]\nu = "categorical"\ni = "categorical"\n'
                    'c = "categorical"\n')  # fmt: skip
    args = ["train", "--data", data, "--spec", spec, "train.epochs=2", "train.batch_size=100",
            "train.embedding_updates=sparse", "model.dropout=0", "model.embedding_l2=0", "--json"]  # fmt: skip
    runs = []
    for nproc, out in ((1, "one"), (2, "two")):
        proc = subprocess.run(
            [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", str(nproc),
             "-m", "dcnrank", *map(str, args), "--out", str(tmp_path / out)],
            capture_output=True, text=True, timeout=300,
        )  # fmt: skip
        assert proc.returncode == 0, proc.stderr[-2000:]
        runs.append(json.loads(proc.stdout)["validation"])
    assert runs[1]["rmse"] == pytest.approx(runs[0]["rmse"], rel=1e-4)


def test_a_dense_model_copy_is_unaffected_by_a_sparse_run():
    """`sparse` is a property of the lookups only: weights and state_dict keys are unchanged."""
    sizes, x, y = categorical_data(200)
    model = dcn(sizes)
    keys = list(copy.deepcopy(model).state_dict())
    Trainer(TrainConfig(epochs=1, batch_size=50, embedding_updates="sparse")).fit(model, x, y)
    assert list(model.state_dict()) == keys


def test_the_epoch_end_catch_up_in_slices_equals_it_at_once(monkeypatch):
    from dcnrank.training import embedding_updates

    grads = gradients(50, every=7)
    whole, _ = run_rule(grads, "adamw_rows")
    monkeypatch.setattr(embedding_updates, "CATCH_UP_ROWS", 4)  # slices of 4 rows and 2
    sliced, _ = run_rule(grads, "adamw_rows")
    torch.testing.assert_close(sliced, whole, rtol=0, atol=0)


def test_the_vocabulary_curve_benchmark_measures_a_point():
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
    try:
        import vocab_curve
    finally:
        sys.path.pop(0)
    point = vocab_curve.measure(4000, "sparse", steps=2, warmup=1)
    assert point["rows"] == 39 * (4000 // 39) and point["updates"] == "sparse"
    assert point["step_ms"] > 0 and point["steps"] == 2 and point["peak_rss_mb"] > 0


@pytest.mark.parametrize("betas", [(0.9, 0.81), (0.9, 0.0), (0.0, 0.999)])  # r = β1/√β2 = 1, β2 = 0, β1 = 0
def test_row_wise_adamw_stays_finite_at_the_edges_of_its_constants(betas):
    w = torch.nn.Parameter(torch.ones(V, E))
    opt = KerasAdamW([{"params": [w], "rule": "adamw_rows"}], lr=0.01, beta_1=betas[0], beta_2=betas[1])
    for rows, values in gradients(12, every=4):
        w.grad = sparse(rows, values)
        opt.step()
    opt.catch_up()
    assert torch.isfinite(w).all()
