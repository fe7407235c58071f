"""Catalog, recommend, evaluate_split (tiny MovieLens files) and evaluate_table, with hand-checked values."""

import doctest

import numpy as np
import pytest
import torch

import dcnrank.workflows.catalog
import dcnrank.workflows.evaluation
from dcnrank.bundle import Bundle, BundleConfig, TableBundle
from dcnrank.data import fit_vocabularies, load_movielens
from dcnrank.data.feature_spec import CategoricalColumn, FeatureSpec, NumericColumn
from dcnrank.data.table_encoder import TableEncoder
from dcnrank.data.table_error import TableDataError
from dcnrank.models import DCNConfig, build_dcn
from dcnrank.models.table_inputs import build_table_dcn
from dcnrank.workflows import MovieLensCatalog, evaluate_split, recommend, split_settings
from dcnrank.workflows.evaluation import evaluate_table, relevance_threshold

CONFIG = DCNConfig(embedding_dim=2, deep_units=(3,))


@pytest.fixture
def ratings(tiny_movielens_dir):
    return load_movielens(tiny_movielens_dir)


def make_bundle(ratings, constant=None, seed=0):
    """A bundle over the tutorial's six features; `constant` makes it predict that everywhere."""
    vocabularies = fit_vocabularies(ratings)
    sizes = [v.size for v in vocabularies.values()]
    torch.manual_seed(seed)
    model = build_dcn(CONFIG, vocabulary_sizes=sizes)
    if constant is not None:
        # Zero embeddings make x0 = 0, so the cross and deep outputs are 0: output = head bias.
        with torch.no_grad():
            for parameter in model.parameters():
                parameter.zero_()
            model.head.bias.fill_(constant)
    config = BundleConfig(CONFIG, tuple(vocabularies), tuple(sizes), train={"data": {"split": "temporal", "seed": 0}})
    return Bundle(model, config, vocabularies)


def test_catalog(ratings):
    catalog = MovieLensCatalog.from_ratings(ratings)
    assert catalog.users["user_id"].tolist() == [1, 2, 3]
    # u.user: "3|17|M|student|T8H1N": age 17 buckets to 1, M is 1.
    assert catalog.user_features(3) == {
        "user_id": 3,
        "user_gender": 1,
        "bucketized_user_age": 1,
        "user_zip_code": "T8H1N",
        "user_occupation_text": "student",
    }
    assert catalog.user_features(42) is None and not catalog.has_user(42) and catalog.has_user(2)
    assert catalog.unrated_movies(1).tolist() == [3, 4]  # user 1 rated movies 1 and 2
    assert catalog.unrated_movies(42).tolist() == [1, 2, 3, 4]
    assert catalog.movie_columns(np.array([4, 1]))["title"].tolist() == ["Café Society (1995)", "Toy Story (1995)"]
    with pytest.raises(ValueError, match=r"`movie_ids` holds unknown movie 9"):
        catalog.movie_columns(np.array([1, 9]))


def test_recommend_scores_unrated_movies_with_the_users_features(ratings):
    bundle = make_bundle(ratings)
    result = recommend(bundle, MovieLensCatalog.from_ratings(ratings), 3, top=5)
    assert result.in_vocabulary and result.in_data and result.candidates == 2  # user 3 rated 4 and 1
    # The same rows encoded by hand: movies 2 and 3, then user 3's features (all index 3 or so).
    rows = {
        "movie_id": [2, 3],
        "user_id": [3, 3],
        "user_gender": [1, 1],
        "bucketized_user_age": [1, 1],
        "user_zip_code": ["T8H1N", "T8H1N"],
        "user_occupation_text": ["student", "student"],
    }
    scores = bundle.predict(rows).tolist()
    order = sorted(range(2), key=lambda i: -scores[i])
    assert [item.movie_id for item in result.items] == [[2, 3][i] for i in order]
    assert [item.predicted_rating for item in result.items] == [scores[i] for i in order]
    assert [item.rank for item in result.items] == [1, 2]
    assert result.items[0].title in ("GoldenEye (1995)", "unknown")


def test_recommend_unknown_user_goes_through_oov_rows(ratings):
    bundle = make_bundle(ratings)
    result = recommend(bundle, MovieLensCatalog.from_ratings(ratings), 42, top=2)
    assert not result.in_vocabulary and not result.in_data and result.candidates == 4
    # Every user feature is OOV (index 0); the movies are 1..4 -> indices 1..4.
    indices = torch.tensor([[m, 0, 0, 0, 0, 0] for m in (1, 2, 3, 4)])
    scores = bundle.predict(indices).tolist()
    best = sorted(range(4), key=lambda i: (-scores[i], i))[:2]
    assert [item.movie_id for item in result.items] == [i + 1 for i in best]


def test_recommend_ties_favour_low_movie_ids_and_empty_lists(ratings):
    result = recommend(make_bundle(ratings, constant=3.5), MovieLensCatalog.from_ratings(ratings), 42, top=3)
    assert [(i.movie_id, i.predicted_rating) for i in result.items] == [(1, 3.5), (2, 3.5), (3, 3.5)]
    only_user_1 = MovieLensCatalog.from_ratings(ratings.take(np.flatnonzero(ratings.user_id == 1)))
    assert recommend(make_bundle(ratings), only_user_1, 1).items == []


def test_recommend_validation(ratings):
    bundle, catalog = make_bundle(ratings), MovieLensCatalog.from_ratings(ratings)
    with pytest.raises(ValueError, match=r"`user_id` must be a positive int\. Received: user_id=0"):
        recommend(bundle, catalog, 0)
    with pytest.raises(ValueError, match=r"`top` must be a positive int\. Received: top=0"):
        recommend(bundle, catalog, 1, top=0)
    vocabularies = {"timestamp": fit_vocabularies(ratings, feature_names=["timestamp"])["timestamp"]}
    other = Bundle(build_dcn(CONFIG, vocabulary_sizes=[7]), BundleConfig(CONFIG, ("timestamp",), (7,)), vocabularies)
    with pytest.raises(ValueError, match=r"cannot recommend with feature\(s\) \['timestamp'\]"):
        recommend(other, catalog, 1)


def test_evaluate_split_by_hand(ratings, tiny_movielens_dir):
    # temporal split of 6 rows: the latest (timestamp 881250953) is the test row: user 3, movie 4,
    # rating 2. A model predicting 3 everywhere: RMSE = MAE = |3 - 2| = 1. One user with one
    # item: NDCG 1; no rating >= 4, so MAP, MRR, precision and recall are 0.
    metrics = evaluate_split(make_bundle(ratings, constant=3.0), ratings, "temporal", 0, tiny_movielens_dir)
    assert metrics == {
        "split": "temporal",
        "seed": 0,
        "rows": 1,
        "users": 1,
        "rmse": 1.0,
        "mae": 1.0,
        "ndcg@10": 1.0,
        "map@10": 0.0,
        "mrr": 0.0,
        "precision@10": 0.0,
        "recall@10": 0.0,
    }


def test_evaluate_split_rejects_foreign_features(ratings):
    vocabularies = {"title": fit_vocabularies(ratings, feature_names=["title"])["title"]}
    size = vocabularies["title"].size
    bundle = Bundle(build_dcn(CONFIG, vocabulary_sizes=[size]), BundleConfig(CONFIG, ("title",), (size,)), vocabularies)
    bundle.vocabularies["plot"] = bundle.vocabularies.pop("title")  # a feature no table has
    with pytest.raises(ValueError, match=r"are not all MovieLens columns"):
        evaluate_split(bundle, ratings, "temporal", 0)


def test_split_settings():
    assert split_settings({"data": {"split": "u1", "seed": 4}}) == ("u1", 4)
    assert split_settings({"data": {"split": "u1", "seed": 4}}, split="random", seed=0) == ("random", 0)
    with pytest.raises(ValueError, match=r"does not record data\.split and data\.seed.*Received: split=None"):
        split_settings({})


def constant_table_bundle(task, constant, rows, user="u", group=None):
    """A table bundle over `u` (categorical) and `x` (numeric) whose raw output is `constant` everywhere."""
    spec = FeatureSpec((CategoricalColumn("u"), NumericColumn("x")), label="y", task=task, user=user, group=group)
    encoder = TableEncoder.fit(spec, rows)
    config = DCNConfig(structure="cross_only", embedding_dim=2)
    model = build_table_dcn(config, spec, encoder.table_sizes)
    # Zero weights make x0 = 0, so the cross output is 0: output = head bias.
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.zero_()
        model.head.bias.fill_(constant)
    return TableBundle(model, config, encoder)


REGRESSION_ROWS = {"u": [1, 1, 2], "x": [0.0, 1.0, 2.0], "y": [5.0, 3.0, 4.0]}


def test_evaluate_table_regression_by_hand():
    # Predicting 3: errors 2, 0, 1 -> RMSE sqrt(5/3), MAE 1, MSE 5/3. All scores tie, so each user's
    # rows keep their order: user 1 ranks 5 then 3 (ideal: NDCG 1), user 2 has one row. Relevant
    # (>= 4): user 1's first row, user 2's row: MAP, MRR, recall 1; precision (1/2 + 1/1) / 2 = 0.75.
    metrics = evaluate_table(constant_table_bundle("regression", 3.0, REGRESSION_ROWS), REGRESSION_ROWS)
    expected = {
        "rows": 3, "users": 2, "loss": 5 / 3, "rmse": (5 / 3) ** 0.5, "mae": 1.0,
        "ndcg@10": 1.0, "map@10": 1.0, "mrr": 1.0, "precision@10": 0.75, "recall@10": 1.0,
    }  # fmt: skip
    assert list(metrics) == list(expected)
    torch.testing.assert_close(
        torch.tensor(list(metrics.values()), dtype=torch.float64), torch.tensor(list(expected.values())).double()
    )
    # labels >= 5 relevant: user 2 has none (MRR 0 there), user 1's first row is: MRR (1 + 0) / 2
    assert evaluate_table(constant_table_bundle("regression", 3.0, REGRESSION_ROWS), REGRESSION_ROWS, relevant=5)[
        "mrr"
    ] == pytest.approx(0.5)


def test_evaluate_table_binary_with_groups_and_no_user():
    rows = {"u": ["a", "a", "b", "b"], "x": [0.0, 1.0, 2.0, 3.0], "y": [1, 0, 0, 1]}
    # logit 0: probability 1/2 everywhere, log loss ln 2; AUC of all-tied scores 0.5.
    metrics = evaluate_table(constant_table_bundle("binary", 0.0, rows, user=None, group="u"), rows, k=1)
    assert metrics == {
        "rows": 4, "loss": pytest.approx(np.log(2)), "logloss": pytest.approx(np.log(2)), "auc": 0.5,
        "group_auc": 0.5, "groups": 2,
    }  # fmt: skip
    with_user = evaluate_table(constant_table_bundle("binary", 0.0, rows), rows, k=1)
    # clicks are relevant: user a's first row is a click (MRR 1), user b's first is not (its second is: 1/2)
    assert with_user["users"] == 2 and with_user["mrr"] == pytest.approx(0.75) and with_user["precision@1"] == 0.5


def test_evaluate_table_validation():
    bundle = constant_table_bundle("regression", 3.0, REGRESSION_ROWS)
    with pytest.raises(TableDataError, match=r"data: evaluating needs the label column 'y', which the table lacks"):
        evaluate_table(bundle, {"u": [1], "x": [0.0]})
    with pytest.raises(TableDataError, match=r"test\.csv: the table holds no rows to evaluate"):
        evaluate_table(bundle, {"u": [], "x": [], "y": []}, source="test.csv")
    with pytest.raises(TableDataError, match=r"user column|column 'u' must have a value in every row"):
        evaluate_table(bundle, {"u": [1, None], "x": [0.0, 1.0], "y": [3.0, 4.0]})
    with pytest.raises(ValueError, match=r"`k` must be a positive int\. Received: k=0"):
        evaluate_table(bundle, REGRESSION_ROWS, k=0)
    with pytest.raises(ValueError, match=r"`relevant` must be a finite number\. Received: relevant=nan"):
        evaluate_table(bundle, REGRESSION_ROWS, relevant=float("nan"))
    assert relevance_threshold("binary") == 1.0 and relevance_threshold("regression", 2) == 2.0


def test_docstring_examples_run():
    result = doctest.testmod(dcnrank.workflows.catalog, extraglobs={"np": np})
    assert result.attempted >= 2 and result.failed == 0
    result = doctest.testmod(dcnrank.workflows.evaluation)
    assert result.attempted >= 4 and result.failed == 0
