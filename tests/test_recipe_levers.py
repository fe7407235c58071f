"""The levers of the MovieLens recipe (issue 6): bias terms, clipping, item side features,
random validation slices, their config keys, bundles, and a training run that never reads
its test fold."""

from __future__ import annotations

import doctest
import importlib
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import TINY_RATINGS, rating_lines
from torch.testing import assert_close

import dcnrank.data.item_side
import dcnrank.data.splits
import dcnrank.data.validation_split
import dcnrank.models.bias_terms
import dcnrank.models.item_features
from dcnrank.bundle import load, save
from dcnrank.config import ConfigError, load_config
from dcnrank.data import Vocabulary, fit_vocabularies, load_movielens
from dcnrank.data.item_side import NUM_YEAR_BUCKETS, bucketize_release_year, item_side_table
from dcnrank.data.validation_split import validation_split
from dcnrank.models import DCNConfig, build_dcn
from dcnrank.models.bias_terms import BiasTerms
from dcnrank.models.dcn import count_parameters
from dcnrank.models.item_features import ItemFeatures
from dcnrank.workflows.train_run import train_run

train_run_module = importlib.import_module("dcnrank.workflows.train_run")
RECIPE = Path(__file__).resolve().parent.parent / "configs" / "movielens_100k.toml"
LEVERS = DCNConfig(embedding_dim=2, deep_units=(4,), use_bias_terms=True, clip_output=True, item_features=True)


def zero_network(model: torch.nn.Module) -> None:
    """Make the head output 0 for every input, so only the bias terms are left."""
    with torch.no_grad():
        model.head.weight.zero_()
        model.head.bias.zero_()


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


def test_dcn_with_zero_network_predicts_mean_plus_user_and_item_bias():
    config = DCNConfig(embedding_dim=2, deep_units=(4,), use_bias_terms=True)
    model = build_dcn(config, vocabulary_sizes=[3, 2], label_mean=3.5)  # columns: item, user
    zero_network(model)
    with torch.no_grad():
        model.bias_terms.bias.copy_(torch.tensor([0.0, 0.5, -0.5, 0.0, 0.25]))  # b_item[0..2], b_user[0..1]
    # item 1, user 1: 3.5 + 0.5 + 0.25; item 2, user 0: 3.5 - 0.5 + 0
    assert_close(model(torch.tensor([[1, 1], [2, 0]])), torch.tensor([4.25, 3.0]))


# --------------------------------------------------------------------------- clipping


def test_clip_output_clamps_in_eval_mode_only():
    config = DCNConfig(embedding_dim=2, deep_units=(4,), use_bias_terms=True, clip_output=True)
    model = build_dcn(config, vocabulary_sizes=[3, 2], label_mean=3.0)
    zero_network(model)
    with torch.no_grad():
        model.bias_terms.bias.copy_(torch.tensor([0.0, 4.0, -4.0, 0.0, 0.0]))
    x = torch.tensor([[1, 0], [2, 0], [0, 0]])
    assert_close(model.train()(x), torch.tensor([7.0, -1.0, 3.0]))  # training sees the raw output
    assert_close(model.eval()(x), torch.tensor([5.0, 1.0, 3.0]))


# --------------------------------------------------------------------------- item side features


def test_bucketize_release_year():
    assert bucketize_release_year(np.array([0, 1920, 1939, 1940, 1979, 1980, 1998, 2000])).tolist() == [
        0, 1, 1, 2, 5, 6, 13, 13,
    ]  # fmt: skip
    assert NUM_YEAR_BUCKETS == 14


def test_item_features_mean_pool_genres_by_hand():
    features = ItemFeatures(num_items=3, embedding_dim=2, num_genres=3, num_year_buckets=2)
    with torch.no_grad():
        features.genre_embedding.copy_(torch.tensor([[1.0, 0.0], [0.0, 2.0], [3.0, 3.0]]))
        features.year_embedding.copy_(torch.tensor([[0.0, 0.0], [7.0, 8.0]]))
    features.set_items(torch.tensor([[0, 0, 0], [1, 1, 0], [0, 0, 1]]), torch.tensor([0, 1, 0]))
    # item 1: genres 0 and 1 -> ([1,0] + [0,2]) / 2 = [0.5, 1]; year bucket 1 -> [7, 8]
    # item 0 (OOV): no genres -> zeros; year bucket 0 -> [0, 0]
    assert_close(features(torch.tensor([1, 0, 2])), torch.tensor([[0.5, 1.0, 7.0, 8.0], [0, 0, 0, 0], [3, 3, 0, 0.0]]))


def test_item_features_validation():
    with pytest.raises(ValueError, match=r"`num_items` must be a positive int. Received: num_items=0"):
        ItemFeatures(0, 2)
    with pytest.raises(ValueError, match=r"`embedding_dim` must be a positive int. Received: embedding_dim=True"):
        ItemFeatures(3, True)
    features = ItemFeatures(3, 2, num_genres=2, num_year_buckets=2)
    with pytest.raises(ValueError, match=r"`genres` must have shape \(3, 2\). Received: shape=\(3, 1\)"):
        features.set_items(torch.zeros(3, 1), torch.zeros(3, dtype=torch.long))
    with pytest.raises(ValueError, match=r"`year_buckets` must have shape \(3,\). Received: shape=\(2,\)"):
        features.set_items(torch.zeros(3, 2), torch.zeros(2, dtype=torch.long))
    with pytest.raises(ValueError, match=r"`year_buckets` must hold buckets in 0..1. Received: range 0..2"):
        features.set_items(torch.zeros(3, 2), torch.tensor([0, 1, 2]))


def test_item_side_table_reads_only_the_given_rows(tiny_movielens_dir):
    ratings = load_movielens(tiny_movielens_dir)
    rows = np.array([0, 1])  # movies 1 (Comedy, 1995) and 2 (Action|Adventure, 1995)
    vocabularies = fit_vocabularies(ratings, rows)
    genres, years = item_side_table(ratings, rows, vocabularies)
    index = vocabularies["movie_id"].encode(np.array([1, 2]))
    assert genres.shape == (3, 19) and years.tolist()[0] == 0 and genres[0].sum() == 0
    assert np.flatnonzero(genres[index[0]].numpy()).tolist() == [5]
    assert np.flatnonzero(genres[index[1]].numpy()).tolist() == [1, 2]
    assert years[index].tolist() == [10, 10]


def test_item_features_widen_x0_and_keep_seed_counts_when_off():
    assert count_parameters(build_dcn(DCNConfig(), vocabulary_sizes=[1683, 944, 3, 8, 796, 22])) == 221_953
    low_rank = DCNConfig(projection_dim=20)
    assert count_parameters(build_dcn(low_rank, vocabulary_sizes=[1683, 944, 3, 8, 796, 22])) == 192_769
    model = build_dcn(LEVERS, vocabulary_sizes=[3, 2])
    assert model.cross.in_features == 2 * 2 + 2 * 2  # two features and the genre and year blocks
    assert model.eval()(torch.tensor([[1, 1], [0, 0]])).shape == (2,)


def test_levers_need_categorical_inputs():
    with pytest.raises(ValueError, match=r"need `vocabulary_sizes` .* Received: dense_features=3"):
        build_dcn(DCNConfig(use_bias_terms=True), dense_features=3)
    with pytest.raises(ValueError, match=r"item_features=True"):
        build_dcn(DCNConfig(item_features=True), dense_features=3)


# --------------------------------------------------------------------------- config


def test_lever_config_keys_and_their_validation():
    config = load_config(RECIPE)
    assert config.model.use_bias_terms and config.model.clip_output and config.model.item_features
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


# --------------------------------------------------------------------------- bundles


def test_bundle_round_trip_with_levers(tmp_path):
    vocabularies = {"movie_id": Vocabulary.fit([10, 20]), "user_id": Vocabulary.fit([1])}
    torch.manual_seed(0)
    model = build_dcn(LEVERS, vocabulary_sizes=[3, 2], label_mean=3.6)
    model.item_features.set_items(torch.tensor([[0.0] * 19, [1.0] + [0.0] * 18, [0.0, 1.0] + [0.0] * 17]),
                                  torch.tensor([0, 5, 9]))  # fmt: skip
    with torch.no_grad():
        model.bias_terms.bias.add_(torch.arange(5.0) / 10)
    folder = save(model, tmp_path / "b", model_config=LEVERS, vocabularies=vocabularies)
    loaded = load(folder)
    assert loaded.config.model == LEVERS
    x = torch.tensor([[1, 1], [2, 0], [0, 1]])
    assert_close(loaded.predict(x), model.eval()(x))
    assert float(loaded.model.bias_terms.global_mean) == pytest.approx(3.6)
    assert loaded.model.item_features.item_year_bucket.tolist() == [0, 5, 9]


# --------------------------------------------------------------------------- the test fold stays unread


def test_training_never_reads_the_test_fold(tmp_path, tiny_movielens_dir, monkeypatch):
    (tiny_movielens_dir / "u1.base").write_text(rating_lines(TINY_RATINGS[:4]), encoding="ascii")
    (tiny_movielens_dir / "u1.test").write_text(rating_lines(TINY_RATINGS[4:]), encoding="ascii")
    test_pairs = {(movie, user) for user, movie, _, _ in TINY_RATINGS[4:]}
    state = {"training": False, "fits": 0}
    real_read = dcnrank.data.splits.read_split_file
    real_fit = train_run_module.fit_with_early_stopping

    def guarded_read(folder, name, ratings=None):  # noqa: ANN001, ANN202
        if state["training"] and name.endswith(".test"):
            raise AssertionError(f"the test fold {name} was read during training")
        return real_read(folder, name, ratings)

    def guarded_fit(trainer, model, x, y, validation, **kwargs):  # noqa: ANN001, ANN202
        vocab = state["vocabularies"]
        seen = {
            (vocab["movie_id"].values[m - 1], vocab["user_id"].values[u - 1])  # index i >= 1 is values[i - 1]
            for rows in (x, validation[0])
            for m, u in rows[:, :2].tolist()
        }
        assert not seen & test_pairs, "a test row is among the training or validation rows"
        state["training"], state["fits"] = True, state["fits"] + 1
        try:
            return real_fit(trainer, model, x, y, validation, **kwargs)
        finally:
            state["training"] = False

    real_prepare = train_run_module.prepare_movielens

    def remember_vocabularies(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
        prepared = real_prepare(*args, **kwargs)
        state["vocabularies"] = prepared.vocabularies
        return prepared

    monkeypatch.setattr(dcnrank.data.splits, "read_split_file", guarded_read)
    monkeypatch.setattr(train_run_module, "fit_with_early_stopping", guarded_fit)
    monkeypatch.setattr(train_run_module, "prepare_movielens", remember_vocabularies)
    config = load_config(
        RECIPE,
        ["train.epochs=2", "train.batch_size=2", "model.embedding_dim=2", "model.deep_units=[4]",
         "model.projection_dim=none", "data.validation_fraction=0.25",
         f"data.data_dir={json.dumps(str(tiny_movielens_dir))}"],
    )  # fmt: skip
    result = train_run(config, tmp_path / "bundle")
    assert state["fits"] == 1
    assert result.metrics["test"]["rows"] == 2 and result.metrics["data"]["n_fit"] == 3
    assert 1.0 <= result.metrics["test"]["rmse"] <= 4.0


def test_docstring_examples_run():
    for module in (
        dcnrank.models.bias_terms,
        dcnrank.models.item_features,
        dcnrank.data.item_side,
        dcnrank.data.validation_split,
    ):
        assert doctest.testmod(module).failed == 0
