"""The training levers, all off by default: a norm in the deep network (`model.deep_norm`),
an L2 penalty on the embeddings (`model.embedding_l2`, `model.embedding_l2_scope`), a
learning-rate schedule (`train.warmup_steps`, `train.lr_decay`), early stopping on the task's
metric (`data.monitor`) and the mean of the best epochs' weights (`data.average_epochs`)."""

import copy
import json
import math

import pytest
import torch
from bundle_support import QUICK_TRAIN, SPEC, TABLE
from torch.testing import assert_close

import dcnrank.workflows.train as train_workflow
from dcnrank.bundle import Bundle, load, save
from dcnrank.cli.main import main
from dcnrank.cli.train import run_config
from dcnrank.config import ConfigError, DataConfig, TrainRunConfig, load_config
from dcnrank.data.encoding.table_batch import TableBatch
from dcnrank.data.encoding.table_encoder import TableEncoder
from dcnrank.data.spec.feature_spec import CategoricalColumn, FeatureSpec, NumericColumn
from dcnrank.layers.mlp import MLP, RowBatchNorm
from dcnrank.models import DCNConfig, build_dcn
from dcnrank.models.dcn import DCN
from dcnrank.models.table_inputs import build_table_dcn
from dcnrank.training import TrainConfig, Trainer, fit_with_early_stopping
from dcnrank.training.stacked import StackedTrainer
from dcnrank.training.tasks import task_monitor
from dcnrank.training.trainer import Regularized, make_optimizer
from dcnrank.workflows import train_table

EPS = 1e-5  # torch's BatchNorm1d and LayerNorm default


def regression(n=100):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(n, 4, generator=g)
    return x, x @ torch.tensor([1.0, -2.0, 0.5, 0.0]) + 0.3


def normed_mlp():
    torch.manual_seed(0)
    return torch.nn.Sequential(MLP(4, [8], norm="batch"), torch.nn.Linear(8, 1), torch.nn.Flatten(0))


def states_equal(a, b):
    for name, tensor in a.state_dict().items():
        assert_close(b.state_dict()[name], tensor, rtol=0, atol=0)


# --------------------------------------------------------------------------- the keys


def test_every_lever_is_off_by_default():
    model, train, data = DCNConfig(), TrainConfig(), DataConfig()
    assert (model.deep_norm, model.embedding_l2, model.embedding_l2_scope) == ("none", 0.0, "batch")
    assert (train.warmup_steps, train.lr_decay) == (0, 1.0)
    assert (data.monitor, data.average_epochs) == ("loss", 1)


def test_the_keys_are_read_from_toml_and_overrides(tmp_path):
    path = tmp_path / "run.toml"
    path.write_text(
        '[model]\ndeep_norm = "layer"\nembedding_l2 = 1e-4\nembedding_l2_scope = "table"\n'
        "[train]\nwarmup_steps = 100\nlr_decay = 0.9\n"
        '[data]\nmonitor = "metric"\naverage_epochs = 3\n'
    )
    config = load_config(path, ["model.deep_norm=batch", "train.lr_decay=0.5", "data.average_epochs=2"])
    assert (config.model.deep_norm, config.model.embedding_l2, config.model.embedding_l2_scope) == (
        "batch",
        1e-4,
        "table",
    )
    assert (config.train.warmup_steps, config.train.lr_decay) == (100, 0.5)
    assert (config.data.monitor, config.data.average_epochs) == ("metric", 2)
    again = tmp_path / "again.toml"
    again.write_text(config.to_toml())
    assert load_config(again) == config
    assert TrainRunConfig.from_dict(config.to_dict()) == config


def test_the_train_command_reads_the_keys_as_overrides():
    config = run_config(None, ["model.deep_norm=layer", "model.embedding_l2=0.01", "train.warmup_steps=5",
                               "data.monitor=metric", "data.average_epochs=2"])  # fmt: skip
    assert (config.model.deep_norm, config.model.embedding_l2, config.train.warmup_steps) == ("layer", 0.01, 5)
    assert (config.data.monitor, config.data.average_epochs) == ("metric", 2)
    assert config.model.use_bias_terms  # the recipe, with the overrides on top


def test_out_of_range_values_are_all_reported_with_key_and_value():
    with pytest.raises(ConfigError) as info:
        load_config(
            overrides=[
                "model.deep_norm=group",
                "model.embedding_l2=-0.1",
                "model.embedding_l2_scope=rows",
                "train.warmup_steps=-1",
                "train.lr_decay=0",
                "data.monitor=auc",
                "data.average_epochs=0",
            ]
        )
    assert info.value.errors == [
        "model.deep_norm: must be one of none, batch, layer. Received: 'group' (override 'model.deep_norm=group')",
        "model.embedding_l2: must be ≥ 0. Received: -0.1 (override 'model.embedding_l2=-0.1')",
        "model.embedding_l2_scope: must be one of batch, table. Received: 'rows' "
        "(override 'model.embedding_l2_scope=rows')",
        "train.warmup_steps: must be ≥ 0. Received: -1 (override 'train.warmup_steps=-1')",
        "train.lr_decay: must be in (0, 1]. Received: 0 (override 'train.lr_decay=0')",
        "data.monitor: must be one of loss, metric. Received: 'auc' (override 'data.monitor=auc')",
        "data.average_epochs: must be ≥ 1. Received: 0 (override 'data.average_epochs=0')",
    ]
    with pytest.raises(ConfigError, match=r"train\.lr_decay: must be in \(0, 1\]\. Received: 1\.5"):
        load_config(overrides=["train.lr_decay=1.5"])
    with pytest.raises(ConfigError, match=r"did you mean 'model\.deep_norm'\?"):
        load_config(overrides=["model.deep_nrom=batch"])


def no_cross(**options):
    return DCN(torch.nn.Identity(), 2, None, MLP(2, [2]), "deep_only", **options)


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (lambda: DCNConfig(deep_norm="group"),
         r"`deep_norm` must be one of none, batch, layer\. Received: deep_norm='group'"),
        (lambda: DCNConfig(embedding_l2=-1.0),
         r"`embedding_l2` must be a finite number ≥ 0\. Received: embedding_l2=-1\.0"),
        (lambda: DCNConfig(embedding_l2=math.nan),
         r"`embedding_l2` must be a finite number ≥ 0\. Received: embedding_l2=nan"),
        (lambda: DCNConfig(embedding_l2_scope="rows"),
         r"`embedding_l2_scope` must be one of batch, table\. Received: embedding_l2_scope='rows'"),
        (lambda: TrainConfig(warmup_steps=-1), r"`warmup_steps` must be an int ≥ 0\. Received: warmup_steps=-1"),
        (lambda: TrainConfig(warmup_steps=1.5), r"`warmup_steps` must be an int ≥ 0\. Received: warmup_steps=1\.5"),
        (lambda: TrainConfig(lr_decay=0.0), r"`lr_decay` must be a number in \(0, 1\]\. Received: lr_decay=0\.0"),
        (lambda: TrainConfig(lr_decay=1.01), r"`lr_decay` must be a number in \(0, 1\]\. Received: lr_decay=1\.01"),
        (lambda: DataConfig(monitor="auc"), r"data\.monitor: must be one of loss, metric\. Received: 'auc'"),
        (lambda: DataConfig(average_epochs=0), r"data\.average_epochs: must be ≥ 1\. Received: 0"),
        (lambda: MLP(2, [2], norm="group"), r"`norm` must be one of none, batch, layer\. Received: norm='group'"),
        (lambda: no_cross(embedding_l2=-1.0),
         r"`embedding_l2` must be a finite number ≥ 0\. Received: embedding_l2=-1\.0"),
        (lambda: no_cross(embedding_l2_scope="rows"),
         r"`embedding_l2_scope` must be one of batch, table\. Received: embedding_l2_scope='rows'"),
        (lambda: task_monitor("binary", "auc"), r"`monitor` must be one of loss, metric\. Received: monitor='auc'"),
    ],
)  # fmt: skip
def test_constructors_refuse_bad_values(build, message):
    with pytest.raises(ValueError, match=message):
        build()


# --------------------------------------------------------------------------- model.deep_norm


def test_layer_norm_comes_after_the_dense_layer_and_before_the_relu():
    mlp = MLP(2, [2], norm="layer")
    with torch.no_grad():
        mlp.layers[0].weight.copy_(torch.eye(2))
    # rows [1, 0] (mean 0.5, variance 0.25) and [0, 3] (mean 1.5, variance 2.25), then the ReLU
    expected = torch.tensor([[0.5 / math.sqrt(0.25 + EPS), 0.0], [0.0, 1.5 / math.sqrt(2.25 + EPS)]])
    assert_close(mlp(torch.tensor([[1.0, 0.0], [0.0, 3.0]])), expected)


def test_batch_norm_takes_every_leading_position_as_a_row():
    mlp = MLP(1, [1], norm="batch")
    with torch.no_grad():
        mlp.layers[0].weight.fill_(1.0)
    x = torch.tensor([[[1.0], [2.0]], [[3.0], [4.0]]])  # (B=2, 2, F=1): four rows 1..4, mean 2.5, variance 1.25
    s = math.sqrt(1.25 + EPS)
    assert_close(mlp.train()(x), torch.tensor([[[0.0], [0.0]], [[0.5 / s], [1.5 / s]]]))
    norm = mlp.layers[1]
    # momentum 0.1 from (0, 1); the running variance is the unbiased one, 5/3
    assert_close(norm.running_mean, torch.tensor([0.25]))
    assert_close(norm.running_var, torch.tensor([0.9 + 0.1 * 5 / 3]))
    expected_eval = ((x - 0.25) / math.sqrt(0.9 + 0.1 * 5 / 3 + EPS)).clamp(min=0)
    assert_close(mlp.eval()(x), expected_eval)


def test_batch_norm_of_one_training_row_uses_the_running_statistics():
    norm = RowBatchNorm(2)
    with torch.no_grad():
        norm.running_mean.copy_(torch.tensor([1.0, 2.0]))
        norm.running_var.copy_(torch.tensor([4.0, 1.0]))
    out = norm.train()(torch.tensor([[3.0, 2.0]]))
    assert_close(out, torch.tensor([[2.0 / math.sqrt(4.0 + EPS), 0.0]]))
    assert_close(norm.running_mean, torch.tensor([1.0, 2.0]))  # left as they were
    assert norm(torch.zeros(0, 2)).shape == (0, 2)


@pytest.mark.parametrize(("deep_norm", "norm_type"), [("batch", "RowBatchNorm"), ("layer", "LayerNorm")])
def test_the_dcn_normalises_each_deep_layer(deep_norm, norm_type):
    model = build_dcn(DCNConfig(embedding_dim=2, deep_units=(3, 2), dropout=0.1, deep_norm=deep_norm), [4])
    layers = [type(m).__name__ for m in model.deep.layers]
    assert layers == ["Dense", norm_type, "ReLU", "Dropout"] * 2
    plain = build_dcn(DCNConfig(embedding_dim=2, deep_units=(3, 2)), [4])
    assert [type(m).__name__ for m in plain.deep.layers] == ["Dense", "ReLU"] * 2


@pytest.mark.parametrize("deep_norm", ["batch", "layer"])
def test_a_bundle_with_deep_norm_round_trips(tmp_path, deep_norm):
    config = DCNConfig(embedding_dim=2, num_cross_layers=1, deep_units=(4,), deep_norm=deep_norm)
    encoder = TableEncoder.fit(SPEC, TABLE)
    torch.manual_seed(0)
    model = build_table_dcn(config, SPEC, encoder.table_sizes)
    x, y = encoder.encode(TABLE).features, torch.tensor(TABLE["clicked"], dtype=torch.float32)
    Trainer(TrainConfig(epochs=2, batch_size=16, learning_rate=0.05)).fit(model, x, y)  # moves the running stats
    if deep_norm == "batch":
        assert not torch.equal(model.deep.layers[1].running_mean, torch.zeros(4))
    folder = save(model, tmp_path / "b", model_config=config, encoder=encoder)
    loaded = load(folder)
    assert loaded.model_config.deep_norm == deep_norm
    assert json.loads((folder / "config.json").read_text())["model"]["deep_norm"] == deep_norm
    states_equal(model, loaded.model)
    assert_close(loaded.predict(TABLE), Bundle(model, config, encoder).predict(TABLE), rtol=0, atol=0)


# --------------------------------------------------------------------------- model.embedding_l2

# feature 0 has rows 0..2, feature 1 rows 3..4 of the fused table
WEIGHTS = torch.tensor([[1.0, 0.0], [0.0, 2.0], [1.0, 1.0], [3.0, 0.0], [0.0, 1.0]])
ROWS = torch.tensor([[1, 0], [2, 1]])  # row 0: ||[0,2]||² + ||[3,0]||² = 13; row 1: ||[1,1]||² + ||[0,1]||² = 3


def embedded(scope, l2=0.5):
    model = build_dcn(DCNConfig(embedding_dim=2, deep_units=(2,), embedding_l2=l2, embedding_l2_scope=scope), [3, 2])
    with torch.no_grad():
        model.inputs.weight.copy_(WEIGHTS)
    return model


def test_the_batch_penalty_is_the_mean_over_rows_of_the_lookups_squared_norms():
    model = embedded("batch")
    assert isinstance(model, Regularized)
    model.train()(ROWS)
    penalty = model.regularization_loss()
    assert_close(penalty, torch.tensor(0.5 * (13 + 3) / 2))
    penalty.backward()  # only the looked-up rows: 2λ e / B
    assert_close(model.inputs.weight.grad, torch.tensor([[0, 0], [0, 1], [0.5, 0.5], [1.5, 0], [0, 0.5]]))
    assert model.regularization_loss().item() == 0.0  # handed over once


def test_the_table_penalty_is_every_squared_weight():
    model = embedded("table")
    penalty = model.regularization_loss()
    assert_close(penalty, torch.tensor(0.5 * 17))  # 1 + 4 + 2 + 9 + 1
    penalty.backward()  # every row: 2λ e
    assert_close(model.inputs.weight.grad, WEIGHTS)


def test_no_penalty_when_off_or_evaluating():
    model = embedded("batch", l2=0.0)
    model.train()(ROWS)
    assert model.regularization_loss().item() == 0.0
    model = embedded("batch")
    model.eval()(ROWS)
    assert model.regularization_loss().item() == 0.0


TWO_COLUMNS = FeatureSpec(
    (CategoricalColumn("a"), NumericColumn("x"), CategoricalColumn("b")), label="y", task="regression"
)


@pytest.mark.parametrize(("scope", "expected"), [("batch", 0.5 * (14 + 16) / 2), ("table", 0.5 * (17 + 14))])
def test_a_table_model_penalises_its_categorical_embeddings_and_bias_terms(scope, expected):
    config = DCNConfig(
        embedding_dim=2, deep_units=(2,), use_bias_terms=True, embedding_l2=0.5, embedding_l2_scope=scope
    )
    model = build_table_dcn(config, TWO_COLUMNS, {"a": 3, "b": 2})
    with torch.no_grad():
        model.inputs.embeddings[0].weight.copy_(WEIGHTS)
        model.output.bias_terms.bias.copy_(torch.tensor([0.0, 1.0, 2.0, 0.0, 3.0]))
    # the numeric block (values 5 and 7) is not penalised; biases: row 0 1² + 0², row 1 2² + 3²
    batch = TableBatch(ROWS, torch.tensor([[5.0], [7.0]]), torch.zeros(2, 1, dtype=torch.bool))
    model.train()(batch)
    assert_close(model.regularization_loss(), torch.tensor(expected))


@pytest.mark.parametrize("scope", ["batch", "table"])
def test_the_trainer_adds_the_penalty_to_the_batch_loss(scope):
    x = torch.tensor([[0, 0], [1, 1], [2, 0], [1, 1]])
    y = torch.tensor([1.0, 2.0, 3.0, 4.0])
    config = TrainConfig(epochs=1, batch_size=4, learning_rate=0.1)
    model = embedded(scope)
    by_hand = copy.deepcopy(model)
    history = Trainer(config).fit(model, x, y)
    optimizer = make_optimizer(by_hand.parameters(), config)
    loss = torch.nn.functional.mse_loss(by_hand.train()(x), y) + by_hand.regularization_loss()
    loss.backward()
    optimizer.step()
    states_equal(by_hand, model)
    assert history.loss == [float(loss.detach())]
    unpenalised = embedded(scope, l2=0.0)
    Trainer(config).fit(unpenalised, x, y)
    assert not torch.equal(unpenalised.inputs.weight, model.inputs.weight)


def test_with_every_lever_off_training_is_the_plain_loop():
    x = torch.tensor([[0, 0], [1, 1], [2, 0], [1, 1], [0, 1], [2, 1]])
    y = torch.tensor([1.0, 2.0, 3.0, 4.0, 2.0, 1.0])
    config = TrainConfig(epochs=2, batch_size=4, learning_rate=0.1)
    model = embedded("batch", l2=0.0)
    by_hand = copy.deepcopy(model)
    Trainer(config).fit(model, x, y)
    optimizer = make_optimizer(by_hand.parameters(), config)
    by_hand.train()
    for _ in range(2):
        for start in (0, 4):
            loss = torch.nn.functional.mse_loss(by_hand(x[start : start + 4]), y[start : start + 4])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
    states_equal(by_hand, model)


# --------------------------------------------------------------------------- train.warmup_steps, train.lr_decay


def test_the_learning_rate_schedule_by_hand():
    config = TrainConfig(learning_rate=0.1, warmup_steps=4, lr_decay=0.5)
    rates = [config.learning_rate_at(step, epoch) for step, epoch in [(0, 0), (1, 0), (2, 0), (3, 0), (4, 1), (9, 2)]]
    assert rates == pytest.approx([0.025, 0.05, 0.075, 0.1, 0.05, 0.025], rel=1e-12)
    assert TrainConfig(learning_rate=0.1).learning_rate_at(1000, 7) == 0.1


class RecordingTrainer(Trainer):
    """A Trainer whose optimizer records the learning rate of every step."""

    def __init__(self, config, rates):
        super().__init__(config)
        self.rates = rates

    def make_optimizer(self, model):
        optimizer = super().make_optimizer(model)
        step = optimizer.step

        def recorded(closure=None):
            self.rates.append(optimizer.param_groups[0]["lr"])
            return step(closure)

        optimizer.step = recorded
        return optimizer


def test_the_trainer_steps_with_the_scheduled_rates():
    x, y = regression(60)  # 3 batches of 20 per epoch
    rates = []
    config = TrainConfig(epochs=2, batch_size=20, learning_rate=0.1, warmup_steps=4, lr_decay=0.5)
    RecordingTrainer(config, rates).fit(torch.nn.Sequential(torch.nn.Linear(4, 1), torch.nn.Flatten(0)), x, y)
    assert rates == pytest.approx([0.025, 0.05, 0.075, 0.05, 0.05, 0.05], rel=1e-12)


class Interrupt(Exception):
    pass


def interrupting_mse(after_steps):
    """MSE that raises on training step `after_steps + 1`, as a crash would."""
    calls = {"n": 0}

    def loss(predictions, labels):
        if torch.is_grad_enabled():
            calls["n"] += 1
            if calls["n"] > after_steps:
                raise Interrupt
        return torch.nn.functional.mse_loss(predictions, labels)

    return loss


SCHEDULED = TrainConfig(
    epochs=3, batch_size=24, learning_rate=0.05, shuffle=True, seed=3, checkpoint_every=4, warmup_steps=7, lr_decay=0.6
)


@pytest.mark.parametrize("after_steps", [6, 10])
def test_a_resumed_run_with_a_schedule_equals_an_uninterrupted_one(tmp_path, after_steps):
    x, y = regression()  # 5 batches per epoch
    reference = normed_mlp()
    Trainer(SCHEDULED).fit(reference, x, y)
    unscheduled = normed_mlp()
    Trainer(TrainConfig(epochs=3, batch_size=24, learning_rate=0.05, shuffle=True, seed=3)).fit(unscheduled, x, y)
    assert not torch.equal(unscheduled[1].weight, reference[1].weight)
    with pytest.raises(Interrupt):
        Trainer(SCHEDULED, loss_fn=interrupting_mse(after_steps)).fit(normed_mlp(), x, y, checkpoint_dir=tmp_path)
    resumed = normed_mlp()
    Trainer(SCHEDULED).fit(resumed, x, y, checkpoint_dir=tmp_path, resume=True)
    states_equal(reference, resumed)


def test_stacked_trials_follow_the_same_schedule():
    sizes = [7, 5]
    g = torch.Generator().manual_seed(0)
    x = torch.stack([torch.randint(0, s, (90,), generator=g) for s in sizes], dim=1)
    y = torch.randint(1, 6, (90,), generator=g).float()
    config = TrainConfig(epochs=2, batch_size=32, learning_rate=0.05, warmup_steps=4, lr_decay=0.5)
    model_config = DCNConfig(embedding_dim=2, deep_units=(4,))

    def build(seed):
        torch.manual_seed(seed)
        return build_dcn(model_config, vocabulary_sizes=sizes)

    stacked = [build(s) for s in (1, 2)]
    StackedTrainer(config, seeds=[1, 2]).fit(stacked, x, y)
    for seed, trained in zip((1, 2), stacked, strict=True):
        alone = build(seed)
        Trainer(config).fit(alone, x, y)
        for name, tensor in alone.state_dict().items():
            assert_close(trained.state_dict()[name], tensor, rtol=1e-4, atol=1e-5)


# --------------------------------------------------------------------------- data.monitor


class ScriptedTrainer(Trainer):
    """A Trainer whose validation reports `values` under `key`, one per epoch."""

    def __init__(self, config, key, values):
        super().__init__(config)
        self.key, self.values = key, iter(values)

    def evaluate(self, model, x, y):
        return {"loss": 0.0, self.key: next(self.values)}


@pytest.mark.parametrize(
    ("values", "higher", "patience", "best_epoch", "best_value", "epochs_run"),
    [
        ([0.6, None, 0.7, math.nan, 0.65], True, 5, 3, 0.7, 5),  # None and NaN are never better
        ([None, 0.5, 0.4], True, 5, 2, 0.5, 3),
        ([0.7, 0.6, 0.5, 0.9], True, 2, 1, 0.7, 3),  # lower values use up the patience
        ([3.0, 1.0, 2.0], False, 5, 2, 1.0, 3),  # the default: lower is better
    ],
)
def test_the_monitored_value_picks_the_best_epoch(values, higher, patience, best_epoch, best_value, epochs_run):
    x, y = regression(40)
    trainer = ScriptedTrainer(TrainConfig(epochs=len(values), batch_size=20), "auc", values)
    result = fit_with_early_stopping(
        trainer, normed_mlp(), x, y, (x, y), patience=patience, monitor="val_auc", higher_is_better=higher
    )
    assert (result.best_epoch, result.best_value, len(result.history.epochs)) == (best_epoch, best_value, epochs_run)


def test_an_undefined_auc_in_every_epoch_keeps_the_last_weights():
    x, y = regression(40)
    trainer = ScriptedTrainer(TrainConfig(epochs=2, batch_size=20), "auc", [None, None])
    result = fit_with_early_stopping(trainer, normed_mlp(), x, y, (x, y), patience=5, monitor="val_auc",
                                     higher_is_better=True)  # fmt: skip
    assert result.best_epoch == 2 and math.isnan(result.best_value)


@pytest.mark.parametrize(("monitor", "expected"), [("loss", ("val_loss", False)), ("metric", ("val_auc", True))])
def test_train_table_stops_on_the_monitor_of_the_task(tmp_path, monkeypatch, monitor, expected):
    calls = []

    def spy(*args, **kwargs):
        calls.append(kwargs)
        return fit_with_early_stopping(*args, **kwargs)

    monkeypatch.setattr(train_workflow, "fit_with_early_stopping", spy)
    overrides = [*QUICK_TRAIN, "train.epochs=3", "data.patience=3", f"data.monitor={monitor}", "data.average_epochs=2"]
    result = train_table(load_config(overrides=overrides), SPEC, TABLE, tmp_path / "b")
    assert (calls[0]["monitor"], calls[0]["higher_is_better"], calls[0]["average_epochs"]) == (*expected, 2)
    history = result.metrics["history"]
    values = [e[expected[0]] for e in history]
    best = values.index(max(values) if expected[1] else min(values)) + 1
    assert result.metrics["validation"]["best_epoch"] == best
    assert task_monitor("regression", "metric") == ("val_rmse", False)


# --------------------------------------------------------------------------- data.average_epochs


def epoch_states(config, x, y):
    """Each epoch's weights of `Trainer(config).fit(normed_mlp(), x, y)`."""
    states = []
    model = normed_mlp()

    def keep(record):
        states.append({k: v.clone() for k, v in model.state_dict().items()})
        return False

    Trainer(config).fit(model, x, y, validation=(x, y), on_epoch=keep)
    return states


@pytest.mark.parametrize(("average", "averaged_epochs"), [(2, (2, 3)), (3, (1, 2, 3)), (5, (1, 2, 3))])
def test_the_final_weights_are_the_mean_of_the_best_epoch_and_those_before(average, averaged_epochs):
    x, y = regression()
    config = TrainConfig(epochs=4, batch_size=24, learning_rate=0.05, shuffle=True)
    states = epoch_states(config, x, y)
    model = normed_mlp()
    trainer = ScriptedTrainer(config, "rmse", [3.0, 2.0, 1.0, 5.0])  # epoch 3 is best
    result = fit_with_early_stopping(trainer, model, x, y, (x, y), patience=4, average_epochs=average)
    assert result.best_epoch == 3 and result.best_value == 1.0
    chosen = [states[e - 1] for e in averaged_epochs]
    for name, tensor in model.state_dict().items():
        if name.endswith("num_batches_tracked"):  # an int: the best epoch's
            assert tensor.item() == states[2][name].item() == 15
        else:  # weights and running statistics
            assert_close(tensor, sum(state[name] for state in chosen) / len(chosen))
    assert not torch.equal(model[1].weight, states[2]["1.weight"])


def test_average_epochs_must_be_a_positive_int():
    x, y = regression(8)
    with pytest.raises(ValueError, match=r"`average_epochs` must be a positive int\. Received: average_epochs=0"):
        fit_with_early_stopping(
            Trainer(TrainConfig(epochs=1)), normed_mlp(), x, y, (x, y), patience=1, average_epochs=0
        )


def test_a_resumed_run_keeps_the_window_of_epochs_to_average(tmp_path):
    x, y = regression()  # 5 batches per epoch; the validation RMSE falls each epoch, so epoch 4 is best
    config = TrainConfig(epochs=4, batch_size=24, learning_rate=0.05, shuffle=True, checkpoint_every=4)
    states = epoch_states(config, x, y)
    reference = normed_mlp()
    expected = fit_with_early_stopping(Trainer(config), reference, x, y, (x, y), patience=4, average_epochs=2)
    assert expected.best_epoch == 4
    for name, tensor in reference.state_dict().items():
        if tensor.is_floating_point():
            assert_close(tensor, (states[2][name] + states[3][name]) / 2)
    # 19 loss calls: 16 steps and 3 evaluations; the last checkpoint (epoch 4, step 16) holds epochs 2 and 3
    with pytest.raises(Interrupt):
        fit_with_early_stopping(Trainer(config, loss_fn=interrupting_mse(19)), normed_mlp(), x, y, (x, y),
                                patience=4, average_epochs=2, checkpoint_dir=tmp_path)  # fmt: skip
    resumed = normed_mlp()
    fit_with_early_stopping(Trainer(config), resumed, x, y, (x, y), patience=4, average_epochs=2,
                            checkpoint_dir=tmp_path, resume=True)  # fmt: skip
    states_equal(reference, resumed)


# --------------------------------------------------------------------------- the command


def test_dcnrank_train_takes_the_levers_as_overrides(tmp_path):
    rows = 40
    (tmp_path / "t.csv").write_text(
        "c,x,clicked\n" + "".join(f"{'abcd'[i % 4]},{i / 10},{(i // 2) % 2}\n" for i in range(rows))
    )
    (tmp_path / "spec.toml").write_text(
        'task = "binary"\nlabel = "clicked"\n[columns]\nc = "categorical"\nx = "numeric"\n'
    )
    levers = ["model.deep_norm=batch", "model.embedding_l2=0.001", "model.embedding_l2_scope=table",
              "train.warmup_steps=3", "train.lr_decay=0.9", "data.monitor=metric", "data.average_epochs=2"]  # fmt: skip
    code = main(["train", "--data", str(tmp_path / "t.csv"), "--spec", str(tmp_path / "spec.toml"), "--quiet",
                 "--json", "model.embedding_dim=2", "model.deep_units=[4]", "train.epochs=2", "train.batch_size=8",
                 *levers, "--out", str(tmp_path / "b")])  # fmt: skip
    assert code == 0
    bundle = load(tmp_path / "b")
    config = TrainRunConfig.from_dict(bundle.train)
    assert (config.model.deep_norm, config.model.embedding_l2, config.model.embedding_l2_scope) == (
        "batch",
        0.001,
        "table",
    )
    assert (config.train.warmup_steps, config.train.lr_decay) == (3, 0.9)
    assert (config.data.monitor, config.data.average_epochs) == ("metric", 2)
    assert isinstance(bundle.model.deep.layers[1], RowBatchNorm)
