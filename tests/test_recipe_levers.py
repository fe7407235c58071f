"""The levers of the recipe (issue 6): bias terms, random validation slices, their config keys,
and a MovieLens training run (`dcnrank train --split u1`) that never sees its test fold; the
table model's levers themselves: tests/test_table_levers.py."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from conftest import TINY_RATINGS, rating_lines
from torch.testing import assert_close

import dcnrank.cli.train
import dcnrank.data.holdout
import dcnrank.models.bias_terms
from dcnrank.cli.main import main
from dcnrank.config import ConfigError, load_config
from dcnrank.data.holdout import validation_split
from dcnrank.models import DCNConfig, build_dcn
from dcnrank.models.bias_terms import BiasTerms

RECIPE = Path(__file__).resolve().parent.parent / "configs" / "movielens_100k.toml"


# --------------------------------------------------------------------------- bias terms


def test_bias_terms_by_hand():
    terms = BiasTerms([3, 4], global_mean=3.5)
    with torch.no_grad():
        terms.bias.copy_(torch.tensor([0.0, 0.5, -1.0, 0.0, 0.25, 0.0, 2.0]))
    # row 1: μ + b0[1] + b1[1] = 3.5 + 0.5 + 0.25; row 2: 3.5 - 1.0 + 2.0
    assert_close(terms(torch.tensor([[1, 1], [2, 3]])), torch.tensor([4.25, 4.5]))
    terms.set_global_mean(1.0)
    assert_close(terms(torch.tensor([[0, 0]])), torch.tensor([1.0]))


def test_bias_terms_validation():
    with pytest.raises(ValueError, match=r"`vocabulary_sizes` must be a non-empty .* Received: vocabulary_sizes=\[\]"):
        BiasTerms([])
    with pytest.raises(ValueError, match=r"Received: vocabulary_sizes=\[3, 0\]"):
        BiasTerms([3, 0])
    with pytest.raises(ValueError, match=r"`indices` must have shape \(B, 2\). Received: indices.shape=\(2,\)"):
        BiasTerms([3, 3])(torch.tensor([1, 2]))


def test_build_dcn_refuses_the_levers():  # they are a table model's (tests/test_table_levers.py)
    for flag in ("use_bias_terms", "clip_output", "user_history", "item_history"):
        with pytest.raises(ValueError, match=rf"`build_dcn` builds no levers; .* Received: {flag}=True"):
            build_dcn(DCNConfig(**{flag: True}), vocabulary_sizes=[3, 2])


# --------------------------------------------------------------------------- config


def test_lever_config_keys_and_their_validation():
    config = load_config(RECIPE)
    assert config.model.use_bias_terms and config.model.clip_output and config.model.user_history
    assert config.data.validation == "random"
    assert load_config().data.validation == "last" and not load_config().model.use_bias_terms
    with pytest.raises(ConfigError, match=r"model.use_bias_terms: must be true or false. Received: 'yes'"):
        load_config(overrides=["model.use_bias_terms=yes"])
    with pytest.raises(ConfigError, match=r"data.validation: must be one of last, random. Received: 'first'"):
        load_config(overrides=["data.validation=first"])
    with pytest.raises(ValueError, match=r"`clip_output` must be a bool. Received: clip_output=1"):
        DCNConfig(clip_output=1)


def test_validation_split_policies():
    fit, val = validation_split(10, 0.2)
    assert fit.tolist() == list(range(8)) and val.tolist() == [8, 9]
    fit, val = validation_split(10, 0.2, "random", seed=0)  # the rows `held_out` draws (tests/test_holdout.py)
    assert val.tolist() == [3, 5] and sorted(fit.tolist() + val.tolist()) == list(range(10))
    assert fit.tolist() == sorted(fit.tolist())
    assert validation_split(10, 0.2, "random", seed=1)[1].tolist() == [3, 6]  # seeded
    with pytest.raises(ValueError, match=r"`policy` must be one of last, random. Received: policy='first'"):
        validation_split(10, 0.2, "first")
    with pytest.raises(ValueError, match=r"`fraction` must be in \(0, 1\). Received: fraction=1.0"):
        validation_split(10, 1.0)
    with pytest.raises(ValueError, match=r"the training split has 1 rows: too few"):
        validation_split(1, 0.5)


# --------------------------------------------------------------------------- the test fold stays unread


def test_training_never_sees_the_test_fold(tmp_path, tiny_movielens_dir, monkeypatch, capsys):
    (tiny_movielens_dir / "u1.base").write_text(rating_lines(TINY_RATINGS[:4]), encoding="ascii")
    (tiny_movielens_dir / "u1.test").write_text(rating_lines(TINY_RATINGS[4:]), encoding="ascii")
    test_pairs = {(user, movie) for user, movie, _, _ in TINY_RATINGS[4:]}
    seen = {}
    real_train = dcnrank.cli.train.train_table

    def guarded_train(config, spec, data, out, **kwargs):  # noqa: ANN001, ANN202
        pairs = set(zip(data.column("user_id").to_pylist(), data.column("movie_id").to_pylist(), strict=True))
        assert not pairs & test_pairs, "a test row is among the training or validation rows"
        seen["rows"] = len(pairs)
        return real_train(config, spec, data, out, **kwargs)

    monkeypatch.setattr(dcnrank.cli.train, "train_table", guarded_train)
    args = ["train", "--split", "u1", "--data-dir", str(tiny_movielens_dir), "train.epochs=2", "train.batch_size=2",
            "model.embedding_dim=2", "model.deep_units=[4]", "model.projection_dim=none",
            "data.validation_fraction=0.25", "--out", str(tmp_path / "bundle"), "--json", "--quiet"]  # fmt: skip
    assert main(args) == 0
    summary = json.loads(capsys.readouterr().out)
    assert seen["rows"] == 4 and summary["dataset"] == "movielens-100k" and summary["split"] == "u1"
    assert summary["test"]["rows"] == 2 and summary["validation"]["rows"] == 1
    assert 0.0 <= summary["test"]["rmse"] <= 4.0
