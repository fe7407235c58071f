"""task = "ranking" through the one pipeline: the spec's group, graded labels, `train.loss`,
lists split from each group every epoch, validation by NDCG@10, bundles, `dcnrank evaluate`."""

import json
import logging
import subprocess
import sys

import numpy as np
import pyarrow as pa
import pytest
import torch

from dcnrank.bundle import load
from dcnrank.cli.main import main
from dcnrank.config import load_config
from dcnrank.config.errors import ConfigError
from dcnrank.config.train_config import LOSSES, TrainConfig
from dcnrank.data.encoding.table_encoder import TableEncoder
from dcnrank.data.encoding.table_error import TableDataError
from dcnrank.data.spec.feature_spec import CategoricalColumn, FeatureSpec, NumericColumn
from dcnrank.metrics.ranking import ranking_metrics
from dcnrank.training import Trainer
from dcnrank.training.list_batches import ListBatches, list_loss
from dcnrank.training.ranking_losses import RANKING_LOSSES
from dcnrank.training.tasks import (
    DEFAULT_RANKING_LOSS,
    TaskTrainer,
    task_loss,
    task_metrics,
    task_monitor,
    task_predictions,
)
from dcnrank.workflows.evaluate import evaluate_table
from dcnrank.workflows.train import train_table
from dcnrank.world import World

COLUMNS = (CategoricalColumn("query"), CategoricalColumn("doc"), NumericColumn("quality"))
SPEC = FeatureSpec(COLUMNS, label="grade", task="ranking", group="query", item="doc")
QUICK = ["model.structure=cross_only", "model.embedding_dim=4", "model.numeric_buckets=0", "train.epochs=3",
         "train.batch_size=128", "train.learning_rate=0.02"]  # fmt: skip


def graded_table(queries=80, docs=60, per_query=12, seed=0):
    """Each query's documents graded 0..3 by their quality (seen by the model) plus noise."""
    rng = np.random.default_rng(seed)
    quality = rng.normal(size=docs)
    query = np.repeat(np.arange(queries), per_query)
    doc = np.concatenate([rng.choice(docs, per_query, replace=False) for _ in range(queries)])
    grade = np.clip(np.round(1.5 + quality[doc] + 0.3 * rng.normal(size=len(doc))), 0, 3)
    return pa.table({
        "query": [f"q{q}" for q in query], "doc": [f"d{d}" for d in doc],
        "quality": quality[doc], "grade": grade,
    })  # fmt: skip


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    out = tmp_path_factory.mktemp("ranking") / "bundle"
    return train_table(load_config(overrides=QUICK), SPEC, graded_table(), out)


def test_a_ranking_spec_needs_a_group_and_defaults_it_to_the_user():
    with pytest.raises(ConfigError, match='group: task = "ranking" orders the rows of each group'):
        FeatureSpec(COLUMNS, label="grade", task="ranking")
    by_user = FeatureSpec(COLUMNS, label="grade", task="ranking", user="query", item="doc")
    assert by_user.group == "query"
    assert FeatureSpec.from_dict(by_user.to_dict()) == by_user
    assert FeatureSpec.from_dict(SPEC.to_dict()) == SPEC


def test_a_negative_grade_is_refused_naming_its_row():
    table = graded_table(queries=2, per_query=3).to_pydict()
    encoder = TableEncoder.fit(SPEC, table)
    table["grade"][4] = -1.0  # −1 marks padding inside a list
    with pytest.raises(TableDataError, match=r'grade.*task = "ranking".*≥ 0.*grade\[4\]=-1'):
        encoder.encode(table, source="t.csv")


def test_the_config_names_every_ranking_loss_and_refuses_them_elsewhere():
    assert set(LOSSES) - {"auto"} == set(RANKING_LOSSES)
    assert task_loss("ranking") is RANKING_LOSSES[DEFAULT_RANKING_LOSS]
    assert task_loss("ranking", "softmax") is RANKING_LOSSES["softmax"]
    with pytest.raises(ValueError, match='applies to task = "ranking"'):
        task_loss("binary", "pairwise_hinge")
    with pytest.raises(ConfigError, match="train.loss: must be one of auto"):
        load_config(overrides=["train.loss=hinge"])
    with pytest.raises(ValueError, match="list_size"):
        TrainConfig(list_size=1)
    assert TrainConfig(batch_size=1024, list_size=10).lists_per_batch == 102
    assert TrainConfig(batch_size=4, list_size=10).lists_per_batch == 1


def test_a_ranking_loss_on_another_task_and_a_streamed_ranking_run_are_refused(tmp_path):
    binary = FeatureSpec(COLUMNS[2:], label="grade", task="binary")
    config = load_config(overrides=["train.loss=list_mle"])
    with pytest.raises(ConfigError, match='train.loss: .list_mle. orders the rows of a group.*task = .binary.'):
        train_table(config, binary, {"quality": [0.0, 1.0], "grade": [0.0, 1.0]}, tmp_path / "b")
    path = tmp_path / "t.csv"
    graded_table(queries=4).to_pandas().to_csv(path, index=False)
    with pytest.raises(ConfigError, match='data.stream: does not go with task = "ranking"'):
        train_table(load_config(overrides=["data.stream=true", "data.validation=random"]), SPEC, path, tmp_path / "b")
    assert not (tmp_path / "b").exists()


def test_split_lists_hold_every_kept_row_once_per_epoch():
    groups = np.repeat(np.arange(5), [23, 10, 11, 2, 1])  # the last has one row: left out
    labels = torch.from_numpy(np.arange(len(groups)) % 3).float()
    lists = ListBatches(torch.arange(len(groups)), labels, groups, 10, 0, 4, seed=1, world=World())
    assert lists.num_lists == 3 + 1 + 2 + 1 == lists.num_batches(0) * 4 - 1
    for epoch in (0, 1):
        index, filled = lists.draw(epoch)
        assert sorted(index[filled].tolist()) == list(range(len(groups) - 1))
        for row, mask in zip(index, filled, strict=True):
            assert len(set(groups[row[mask].numpy()])) == 1 and bool(mask[0])  # one group; slot 0 holds a row
        sizes = sorted(filled.sum(1).tolist())
        assert sizes == [2, 5, 6, 7, 8, 8, 10]  # 23 → 8+8+7, 11 → 6+5: near-equal, none over 10
    first, again, second = lists.draw(0)[0], lists.draw(0)[0], lists.draw(1)[0]
    assert torch.equal(first, again) and not torch.equal(first, second)
    (xb, yb, weight), *_ = lists.batches(0, 0)
    assert xb.shape == (40,) and yb.shape == (4, 10) and weight == 1.0
    assert torch.equal(yb[yb >= 0], labels[xb.reshape(4, 10)][yb >= 0])


def test_list_loss_is_the_mean_loss_over_the_split_lists():
    scores = torch.tensor([3.0, 2.0, 1.0, 0.0, 0.0, 1.0])
    labels = torch.tensor([2.0, 1.0, 0.0, 1.0, 1.0, 0.0])
    groups = np.array([0, 0, 0, 1, 1, 1])
    hinge = RANKING_LOSSES["pairwise_hinge"]
    # group 0 is in order with margins ≥ 1 (loss 0); group 1's two ordered pairs are both reversed
    # by 1 (hinge 2 each) over its 3 slots; one list per group, the mean over the two lists
    assert list_loss(hinge, scores, labels, groups, 3, 8) == pytest.approx((0 + 4 / 3) / 2)
    assert list_loss(hinge, scores, labels, groups, 3, 1) == pytest.approx((0 + 4 / 3) / 2)


def test_ranking_task_functions():
    labels, outputs = torch.tensor([2.0, 0.0, 1.0, 1.0]), torch.tensor([0.1, 0.5, 0.3, 0.0])
    groups = np.array([1, 1, 1, 2])
    assert task_monitor("ranking", "metric") == ("val_ndcg@10", True)
    assert torch.equal(task_predictions("ranking", outputs), outputs)
    expected = ranking_metrics(labels.numpy(), outputs.numpy(), groups, k=10, threshold=1.0)
    assert task_metrics("ranking", labels, outputs, groups) == expected
    with pytest.raises(ValueError, match="need the group of each row"):
        task_metrics("ranking", labels, outputs)
    model = torch.nn.Sequential(torch.nn.Linear(1, 1), torch.nn.Flatten(0))
    metrics = TaskTrainer("ranking", TrainConfig(list_size=3), groups=groups).evaluate(model, labels[:, None], labels)
    assert set(metrics) == {"loss", *expected} and metrics["loss"] >= 0


def test_ranking_training_orders_each_group_and_reports_ndcg(trained, tmp_path):
    validation = trained.metrics["validation"]
    assert trained.metrics["data"]["task"] == "ranking"
    assert {"loss", "ndcg@10", "map@10", "mrr", "precision@10", "recall@10", "groups"} <= set(validation)
    history = trained.metrics["history"]
    assert [sorted(k for k in e if k.startswith("val_ndcg")) for e in history] == [["val_ndcg@10"]] * 3
    test = graded_table(seed=1)
    metrics = evaluate_table(load(trained.bundle_path), test, k=5)
    assert metrics["groups"] == 80 and "users" not in metrics and "rmse" not in metrics
    chance = ranking_metrics(test["grade"].to_numpy(), np.zeros(test.num_rows), test["query"].to_numpy(), k=5)
    assert metrics["ndcg@5"] > chance["ndcg@5"] + 0.1  # it learnt the quality → grade order
    scores = load(trained.bundle_path).predict(test)
    assert scores.dtype == torch.float32 and not ((scores >= 0) & (scores <= 1)).all()  # raw scores, not σ


def test_every_ranking_loss_trains_through_the_pipeline(tmp_path):
    table = graded_table(queries=20, per_query=6)
    for loss in sorted(RANKING_LOSSES):
        config = load_config(overrides=[*QUICK, "train.epochs=1", f"train.loss={loss}"])
        result = train_table(config, SPEC, table, tmp_path / loss)
        assert np.isfinite(result.metrics["history"][0]["loss"]), loss
        assert load(tmp_path / loss).train["train"]["loss"] == loss


def test_sampled_lists_and_the_degenerate_group_notice(tmp_path, caplog):
    table = graded_table(queries=30, per_query=12).to_pydict()
    for row in range(12):  # q0: every grade the same
        table["grade"][row] = 2.0
    table = {k: [v[0], *v] if k != "query" else ["lonely", *v] for k, v in table.items()}  # a one-row group
    config = load_config(overrides=[*QUICK, "train.epochs=1", "train.lists_per_group=3", "train.list_size=5"])
    with caplog.at_level(logging.INFO, logger="dcnrank"):
        train_table(config, SPEC, table, tmp_path / "b")
    # the last 36 of the 361 rows validate (data.validation = "last"): q27…q29; q1…q26 train, 3 lists each
    assert "ranking: 26 groups in 78 lists of up to 5 rows per epoch" in caplog.text
    assert "left out 1 with one row and 1 whose rows all have the same label (nothing to order)" in caplog.text


def test_a_validation_split_with_nothing_to_rank_is_refused(tmp_path):
    table = graded_table(queries=3, per_query=4)
    config = load_config(overrides=[*QUICK, "data.validation_fraction=0.1"])
    with pytest.raises(ValueError, match="validation rows hold no group with two rows of different labels"):
        train_table(config, SPEC, table, tmp_path / "b")


def test_an_interrupted_ranking_fit_resumes_to_the_same_weights(tmp_path):
    table = graded_table(queries=20, per_query=7)
    x = torch.tensor(table["quality"].to_numpy(), dtype=torch.float32)[:, None]
    y = torch.tensor(table["grade"].to_numpy(), dtype=torch.float32)
    groups = table["query"].to_numpy(zero_copy_only=False)
    config = TrainConfig(epochs=2, learning_rate=0.05, checkpoint_every=2)
    loss = RANKING_LOSSES["list_mle"]

    def model():
        torch.manual_seed(0)
        return torch.nn.Sequential(torch.nn.Linear(1, 4), torch.nn.ReLU(), torch.nn.Linear(4, 1), torch.nn.Flatten(0))

    def lists():
        return ListBatches(x, y, groups, 5, 0, 4, seed=2, world=World())

    reference = model()
    Trainer(config, loss_fn=loss).fit(reference, lists(), None)
    calls = {"n": 0}

    def crashing(scores, labels):
        calls["n"] += 1
        if calls["n"] > 7:  # mid epoch 2 (8 batches an epoch)
            raise KeyboardInterrupt
        return loss(scores, labels)

    with pytest.raises(KeyboardInterrupt):
        Trainer(config, loss_fn=crashing).fit(model(), lists(), None, checkpoint_dir=tmp_path)
    resumed = model()
    Trainer(config, loss_fn=loss).fit(resumed, lists(), None, checkpoint_dir=tmp_path, resume=True)
    for name, tensor in reference.state_dict().items():
        torch.testing.assert_close(resumed.state_dict()[name], tensor, rtol=0, atol=0)


def test_cli_trains_and_evaluates_a_ranking_table(tmp_path, capsys):
    data, spec = tmp_path / "train.csv", tmp_path / "spec.toml"
    graded_table().to_pandas().to_csv(data, index=False)
    graded_table(seed=1).to_pandas().to_csv(tmp_path / "test.csv", index=False)
    spec.write_text('task = "ranking"\nlabel = "grade"\ngroup = "query"\n'
                    '[columns]\nquery = "categorical"\ndoc = "categorical"\nquality = "numeric"\n')  # fmt: skip
    code = main(["train", "--data", str(data), "--spec", str(spec), *QUICK, "train.loss=softmax",
                 "--out", str(tmp_path / "b")])  # fmt: skip
    assert code == 0
    assert "validation (" in capsys.readouterr().out
    assert main(["evaluate", "--model", str(tmp_path / "b"), "--data", str(tmp_path / "test.csv"), "--k", "5"]) == 0
    out = capsys.readouterr().out
    assert "960 rows, 80 groups" in out and "ndcg@5" in out and "  groups" not in out
    assert main(["evaluate", "--model", str(tmp_path / "b"), "--data", str(tmp_path / "test.csv"), "--json"]) == 0
    metrics = json.loads(capsys.readouterr().out)
    assert metrics["groups"] == 80 and 0 < metrics["ndcg@10"] <= 1


def test_two_torchrun_ranks_train_the_ranking_run_one_process_does(tmp_path):
    """Each rank takes its share of every batch's lists (DDP, gloo); the result equals one process's."""
    data, spec = tmp_path / "train.csv", tmp_path / "spec.toml"
    graded_table().to_pandas().to_csv(data, index=False)
    spec.write_text('task = "ranking"\nlabel = "grade"\ngroup = "query"\n'
                    '[columns]\nquery = "categorical"\ndoc = "categorical"\nquality = "numeric"\n')  # fmt: skip
    args = ["train", "--data", data, "--spec", spec, *QUICK, "train.epochs=2", "--json"]
    runs = []
    for nproc, out in ((1, "one"), (2, "two")):
        proc = subprocess.run(
            [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", str(nproc),
             "-m", "dcnrank",
             *map(str, args), "--out", str(tmp_path / out)],
            capture_output=True, text=True, timeout=300,
        )  # fmt: skip
        assert proc.returncode == 0, proc.stderr[-2000:]
        runs.append(json.loads(proc.stdout)["validation"])
    assert runs[1]["ndcg@10"] == pytest.approx(runs[0]["ndcg@10"], abs=1e-6)
    assert runs[1]["loss"] == pytest.approx(runs[0]["loss"], rel=1e-4)


def test_a_pointwise_weight_adds_the_lists_mse_to_the_ranking_loss(tmp_path):
    scores = torch.tensor([[2.0, 0.5, 1.0], [0.0, 1.0, 0.0]])
    labels = torch.tensor([[3.0, 1.0, -1.0], [2.0, 0.0, 1.0]])
    ranking = RANKING_LOSSES["pairwise_logistic"](scores, labels)
    squared = ((2 - 3) ** 2 + (0.5 - 1) ** 2 + (0 - 2) ** 2 + (1 - 0) ** 2 + (0 - 1) ** 2) / 5  # the 5 valid slots
    combined = task_loss("ranking", "pairwise_logistic", pointwise_weight=0.5)
    assert combined(scores, labels).item() == pytest.approx(ranking.item() + 0.5 * squared)
    assert task_loss("ranking", "pairwise_logistic", 0.0) is RANKING_LOSSES["pairwise_logistic"]
    with pytest.raises(ValueError, match="pointwise_weight.*number ≥ 0"):
        TrainConfig(pointwise_weight=-1.0)
    with pytest.raises(ValueError, match='pointwise_weight.*applies to task = "ranking"'):
        task_loss("regression", pointwise_weight=1.0)
    binary = FeatureSpec(COLUMNS[2:], label="grade", task="binary")
    config = load_config(overrides=["train.pointwise_weight=1"])
    with pytest.raises(ConfigError, match=r"train.pointwise_weight: .*task = .binary."):
        train_table(config, binary, {"quality": [0.0, 1.0], "grade": [0.0, 1.0]}, tmp_path / "b")
