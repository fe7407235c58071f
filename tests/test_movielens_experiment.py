"""The MovieLens experiment on the real data: preparation, a short run, the CLI and report."""

import json
import subprocess
import sys

import matplotlib.image
import numpy as np
import pytest

from dcnrank.experiments.movielens import prepare_movielens, run_movielens

SEED_SIZES = {
    "movie_id": 1683,
    "user_id": 944,
    "user_gender": 3,
    "bucketized_user_age": 8,
    "user_zip_code": 796,
    "user_occupation_text": 22,
}


def test_prepare_all_vocabularies_match_the_seed(movielens_ratings, movielens_dir):
    prepared = prepare_movielens(movielens_ratings, "leaky", "all", seed=0, folder=movielens_dir)
    train, info = prepared.train, prepared.info
    assert info["vocabulary_sizes"] == SEED_SIZES
    assert (info["n_train"], info["n_test"]) == (80_000, 20_000)
    assert 0.78 < info["train_test_overlap"] < 0.82
    assert all(share == 0 for share in info["test_oov_share"].values())
    assert train.features.shape == (80_000, 6)


def test_prepare_train_vocabularies_map_unseen_test_values_to_oov(movielens_ratings, movielens_dir):
    prepared = prepare_movielens(movielens_ratings, "random", "train", seed=0, folder=movielens_dir)
    test, info = prepared.test, prepared.info
    assert tuple(v.size for v in prepared.vocabularies.values()) == prepared.train.vocabulary_sizes
    assert info["train_test_overlap"] == 0
    assert info["vocabulary_sizes"]["movie_id"] < 1683  # some movies are rated only in test rows
    unseen = info["test_oov_share"]["movie_id"]
    assert 0 < unseen < 0.01
    assert float((test.features[:, 0] == 0).double().mean()) == pytest.approx(unseen)
    with pytest.raises(ValueError, match=r"`vocab` must be one of train, all\. Received: vocab='test'"):
        prepare_movielens(movielens_ratings, "random", "test", seed=0)


def test_short_run_is_reproducible(movielens_dir):
    kwargs = dict(data_dir=movielens_dir, trials=1, epochs=1, models=("cross_low_rank",), max_train_rows=8192)
    first, again = run_movielens(**kwargs), run_movielens(**kwargs)
    assert first.models["cross_low_rank"].params == 192_769 - (1683 - first.info["vocabulary_sizes"]["movie_id"]) * 32
    assert first.models["cross_low_rank"].rmse == again.models["cross_low_rank"].rmse
    assert 0.5 < first.models["cross_low_rank"].rmse[0] < 2.0
    with pytest.raises(ValueError, match=r"`models` must name"):
        run_movielens(data_dir=movielens_dir, models=("wide",))


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
