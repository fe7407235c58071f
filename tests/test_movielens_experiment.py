"""The MovieLens experiment on the real data: preparation, a short run, the CLI and report."""

import json
import subprocess
import sys

import matplotlib.image
import numpy as np
import pytest
import torch

from dcnrank.data.sources import load_movielens_source
from dcnrank.experiments.movielens import SEED_FEATURES, encode_seed_features, run_movielens, seed_spec
from dcnrank.experiments.report import params_note

SEED_SIZES = {
    "movie_id": 1683,
    "user_id": 944,
    "user_gender": 3,
    "bucketized_user_age": 8,
    "user_zip_code": 796,
    "user_occupation_text": 22,
}


@pytest.fixture(scope="module")
def movielens_source(movielens_dir):
    return load_movielens_source(movielens_dir)


def test_seed_spec_is_the_seeds_six_categorical_features_in_its_order():
    spec = seed_spec()
    assert list(SEED_FEATURES) == list(SEED_SIZES)  # the seed's int features, then its str features
    assert spec.input_names == ("movie_id", "user_id", "gender", "age", "zip_code", "occupation")
    assert [c.type for c in spec.columns] == ["categorical"] * 6 and all(c.min_count == 1 for c in spec.columns)
    assert (spec.label, spec.task, spec.user, spec.item) == ("rating", "regression", None, None)


def test_all_vocabularies_match_the_seed(movielens_source):
    features = encode_seed_features(movielens_source, "leaky", "all", seed=0)
    info = features.info
    assert info["vocabulary_sizes"] == SEED_SIZES  # every distinct value + 1 OOV row
    assert features.vocabulary_sizes == list(SEED_SIZES.values())
    assert (info["n_train"], info["n_test"]) == (80_000, 20_000)
    assert 0.78 < info["train_test_overlap"] < 0.82
    assert all(share == 0 for share in info["test_oov_share"].values())
    assert features.train[0].shape == (80_000, 6) and features.train[0].dtype == torch.int32  # the encoder's rows
    assert features.train[1].dtype == torch.float32 and set(features.train[1].unique().tolist()) == {1, 2, 3, 4, 5}
    assert params_note(info) == ""


def test_train_vocabularies_map_unseen_test_values_to_oov(movielens_source):
    features = encode_seed_features(movielens_source, "random", "train", seed=0)
    test, info = features.test, features.info
    assert info["train_test_overlap"] == 0
    assert info["vocabulary_sizes"]["movie_id"] < 1683  # some movies are rated only in test rows
    assert info["vocabulary_sizes"]["user_gender"] == 3 and info["vocabulary_sizes"]["bucketized_user_age"] == 8
    unseen = info["test_oov_share"]["movie_id"]
    assert 0 < unseen < 0.01
    assert float((test[0][:, 0] == 0).double().mean()) == pytest.approx(unseen)
    missing = 1683 - info["vocabulary_sizes"]["movie_id"]
    assert f"leave out {missing} value(s)" in params_note(info)
    assert f"{missing * 32:,} fewer embedding parameters" in params_note(info)
    with pytest.raises(ValueError, match=r"`vocab` must be one of train, all\. Received: vocab='test'"):
        encode_seed_features(movielens_source, "random", "test", seed=0)
    with pytest.raises(ValueError, match=r"`split` must be one of u1, .*Received: split='u9'"):
        encode_seed_features(movielens_source, "u9", "train", seed=0)


def test_grouplens_split_rows_are_the_source_rows(movielens_source):
    features = encode_seed_features(movielens_source, "u1", "train", seed=0)
    train_rows, test_rows = movielens_source.split_rows("u1")
    assert (features.info["n_train"], features.info["n_test"]) == (80_000, 20_000)
    assert features.info["train_test_overlap"] == 0
    np.testing.assert_array_equal(features.train_rows, train_rows)
    ratings = torch.tensor(movielens_source.table.column("rating").to_numpy(), dtype=torch.float32)
    torch.testing.assert_close(features.test[1], ratings[torch.from_numpy(test_rows)])


def test_short_run_is_reproducible(movielens_dir):
    kwargs = dict(data_dir=movielens_dir, trials=1, epochs=1, models=("cross_low_rank",), max_train_rows=8192)
    first, again = run_movielens(**kwargs), run_movielens(**kwargs)
    assert first.models["cross_low_rank"].params == 192_769 - (1683 - first.info["vocabulary_sizes"]["movie_id"]) * 32
    assert first.models["cross_low_rank"].rmse == again.models["cross_low_rank"].rmse
    assert 0.5 < first.models["cross_low_rank"].rmse[0] < 2.0
    with pytest.raises(ValueError, match=r"`models` must name"):
        run_movielens(data_dir=movielens_dir, models=("wide",))
    with pytest.raises(ValueError, match=r"`vocab` must be one of train, all\. Received: vocab='every'"):
        run_movielens(data_dir=movielens_dir, vocab="every")


@pytest.mark.slow
def test_cli_both_splits_write_json_heatmaps_and_leak_report(movielens_dir, tmp_path):
    for split in ("random", "leaky"):
        proc = subprocess.run(
            [sys.executable, "-m", "dcnrank", "movielens", "--trials", "2", "--epochs", "1", "--split", split,
             "--vocab", "all", "--data-dir", str(movielens_dir), "--out", str(tmp_path), "--quiet"],
            capture_output=True, text=True, timeout=900,
        )  # fmt: skip
        assert proc.returncode == 0, proc.stderr
        assert "221,953" in proc.stdout and "192,769" in proc.stdout
    report = json.loads((tmp_path / "movielens.json").read_text())
    assert report["experiment"] == "movielens"
    assert report["split"] == "leaky" and report["vocab"] == "all"
    assert (report["n_train"], report["n_test"]) == (80_000, 20_000)
    assert 0.78 < report["train_test_overlap"] < 0.82
    assert [report["models"][m]["params"] for m in ("cross", "cross_low_rank", "deep")] == [221_953, 192_769, 221_953]
    for name in ("cross", "cross_low_rank", "deep"):
        model = report["models"][name]
        assert len(model["rmse"]) == 2
        assert model["rmse_mean"] == pytest.approx(np.mean(model["rmse"]))
        assert model["rmse_std"] == pytest.approx(np.std(model["rmse"]))
        assert model["mae_mean"] > 0
    for name in ("cross", "cross_low_rank"):
        matrix = np.array(report["models"][name]["interactions"])
        assert matrix.shape == (6, 6) and (matrix >= 0).all() and matrix.max() > 0
    assert json.loads((tmp_path / "movielens_random.json").read_text())["train_test_overlap"] == 0
    for png in ("movielens_interactions.png", "movielens_interactions_low_rank.png",
                "movielens_random_interactions.png", "movielens_leaky_interactions_low_rank.png"):  # fmt: skip
        assert matplotlib.image.imread(tmp_path / png).shape[0] > 100
    text = (tmp_path / "report.md").read_text()
    assert "## MovieLens 100K, split `random`" in text and "## MovieLens 100K, split `leaky`" in text
    assert "The seed's split leaks" in text
    assert "movielens_leaky_interactions.png" in text
