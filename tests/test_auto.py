"""`dcnrank train --auto` (`auto_train`): candidates on the same validation rows, the best one saved."""

from __future__ import annotations

import json

import pyarrow as pa
import pyarrow.csv as pacsv
import pytest
import torch
from bundle_support import QUICK_TRAIN, SPEC, TABLE

import dcnrank.workflows.auto as auto_module
from dcnrank.bundle import BundleError, load
from dcnrank.cli.main import main
from dcnrank.config import ConfigError, load_config
from dcnrank.workflows import train_table
from dcnrank.workflows.auto import auto_train

# bundle_support.SPEC as a spec file
SPEC_TOML = """
task = "binary"
label = "clicked"
user = "user_id"
item = "item_id"
user_columns = ["age", "zip", "occupation"]
item_columns = ["genres", "year"]

[columns]
user_id = "categorical"
item_id = "categorical"
age = "numeric"
zip = "categorical"
occupation = "categorical"
genres = { type = "multi_hot", separator = "|" }
year = "numeric"
device = "categorical"
"""

CANDIDATES = {
    "as configured": (),
    "lr 0.05": ("train.learning_rate=0.05",),
    "wide": ("model.embedding_dim=4", "train.learning_rate=0.02"),
}


@pytest.fixture(scope="module")
def searched(tmp_path_factory):
    folder = tmp_path_factory.mktemp("auto")
    config = load_config(None, QUICK_TRAIN)
    return config, auto_train(config, SPEC, TABLE, folder / "bundle", candidates=CANDIDATES), folder


def test_the_best_candidate_on_validation_is_chosen_and_recorded(searched):
    _, result, _ = searched
    auto = result.metrics["auto"]
    assert auto["metric"] == "val_auc" and list(auto["candidates"]) == list(CANDIDATES)
    scores = {name: entry["val_auc"] for name, entry in auto["candidates"].items()}
    assert auto["chosen"] == max(scores, key=lambda name: scores[name])  # first of equals wins
    assert all(entry["seconds"] > 0 and entry["best_epoch"] >= 1 for entry in auto["candidates"].values())
    assert auto["candidates"]["wide"]["overrides"] == ["model.embedding_dim=4", "train.learning_rate=0.02"]
    assert json.loads((result.bundle_path / "metrics.json").read_text())["auto"] == auto


def test_the_saved_bundle_is_the_chosen_candidates_own_training(searched, tmp_path):
    config, result, _ = searched
    chosen = result.metrics["auto"]["chosen"]
    alone = load_config(None, [*QUICK_TRAIN, *CANDIDATES[chosen]])
    assert result.config == alone and load(result.bundle_path).train == alone.to_dict()
    direct = train_table(alone, SPEC, TABLE, tmp_path / "direct")
    assert result.metrics["validation"] == direct.metrics["validation"]
    torch.testing.assert_close(load(result.bundle_path).predict(TABLE), load(direct.bundle_path).predict(TABLE),
                               rtol=0, atol=0)  # fmt: skip


def test_a_regression_table_is_chosen_by_the_lowest_rmse(tmp_path):
    from dataclasses import replace

    columns = tuple(c for c in SPEC.columns if c.name != "year")
    spec = replace(SPEC, columns=columns, label="year", task="regression", item_columns=("genres",))
    table = {k: v for k, v in TABLE.items() if k != "clicked"}
    result = auto_train(load_config(None, QUICK_TRAIN), spec, table, tmp_path / "b", candidates=CANDIDATES)
    scores = {name: entry["val_rmse"] for name, entry in result.metrics["auto"]["candidates"].items()}
    assert result.metrics["auto"]["chosen"] == min(scores, key=lambda name: scores[name])


def test_a_user_file_at_out_is_refused_before_any_training(tmp_path):
    mine = tmp_path / "notes.txt"
    mine.write_text("mine")
    with pytest.raises(BundleError, match="notes.txt"):
        auto_train(load_config(None, QUICK_TRAIN), SPEC, TABLE, mine, candidates=CANDIDATES)
    assert mine.read_text() == "mine"
    with pytest.raises(ConfigError, match="at least one candidate"):
        auto_train(load_config(None, QUICK_TRAIN), SPEC, TABLE, tmp_path / "b", candidates={})


def test_the_train_command_prints_the_candidates(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(auto_module, "AUTO_CANDIDATES", dict(list(CANDIDATES.items())[:2]))
    data, spec = tmp_path / "t.csv", tmp_path / "spec.toml"
    pacsv.write_csv(pa.table({k: v for k, v in TABLE.items()}), data)
    spec.write_text(SPEC_TOML)
    argv = ["train", "--data", str(data), "--spec", str(spec), "--out", str(tmp_path / "b"), "--auto", "--quiet",
            *QUICK_TRAIN]  # fmt: skip
    assert main(argv) == 0
    printed = capsys.readouterr().out
    assert "--auto: 2 candidates" in printed and "by validation auc" in printed
    assert "as configured" in printed and "lr 0.05" in printed and printed.count("<- chosen") == 1
    assert load(tmp_path / "b").metrics["auto"]["chosen"] in CANDIDATES


def test_auto_with_a_checkpoint_folder_is_refused(tmp_path, capsys):
    code = main(["train", "--out", str(tmp_path / "b"), "--auto", "--checkpoint-dir", str(tmp_path / "c")])
    assert code != 0
    assert "--auto trains several candidates" in capsys.readouterr().err
