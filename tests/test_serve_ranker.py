"""`dcnrank.serve.Ranker` in-process: it agrees with `workflows.recommend` and `Bundle.predict`,
and each of its validation branches raises a `RequestError` naming the field."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from test_serve import USER_1, save_tiny_bundle

from dcnrank.bundle import load
from dcnrank.data import fit_vocabularies, load_movielens
from dcnrank.models import DCNConfig, build_dcn
from dcnrank.serve import BackgroundServer, RequestError, bind_socket
from dcnrank.serve.body_limit import BodyLimit
from dcnrank.serve.ranker import Ranker
from dcnrank.workflows import MovieLensCatalog, recommend


@pytest.fixture(scope="module")
def ranker(tmp_path_factory):
    folder, data = save_tiny_bundle(tmp_path_factory.mktemp("ranker"))
    return Ranker(load(folder), MovieLensCatalog.from_ratings(load_movielens(data)))


@pytest.mark.parametrize("user_id", [1, 2, 3, 42])
def test_rank_matches_recommend_workflow(ranker, user_id):
    expected = recommend(ranker.bundle, ranker.catalog, user_id, top=10)
    got = ranker.rank(user_id=user_id, top=10)
    assert got.candidates == expected.candidates
    assert [(i.rank, i.movie_id, i.title) for i in got.items] == [(i.rank, i.movie_id, i.title) for i in expected.items]
    torch.testing.assert_close(
        torch.tensor([i.score for i in got.items]), torch.tensor([i.predicted_rating for i in expected.items])
    )
    assert ("user_id" in got.unknown) == (not expected.in_vocabulary)


def test_rank_ties_go_to_the_earlier_candidate(ranker):
    with torch.no_grad():
        weights = [p.clone() for p in ranker.bundle.model.head.parameters()]
        for p in ranker.bundle.model.head.parameters():
            p.zero_()  # every score 0
        try:
            got = ranker.rank(user_id=1, candidates=[3, 1, 2], top=3)
        finally:
            for p, w in zip(ranker.bundle.model.head.parameters(), weights, strict=True):
                p.copy_(w)
    assert [item.movie_id for item in got.items] == [3, 1, 2]
    assert [item.score for item in got.items] == [0.0, 0.0, 0.0]


def test_rank_user_who_rated_everything_gets_no_items(tmp_path):
    folder, data = save_tiny_bundle(tmp_path)
    ranker = Ranker(load(folder), _catalog_where_user_rated_all(load_movielens(data)))
    got = ranker.rank(user_id=1)
    assert got.candidates == 0 and got.items == [] and got.missing == []


def _catalog_where_user_rated_all(ratings):
    """The tiny catalog plus ratings of movies 3 and 4 by user 1."""
    from dataclasses import fields

    from dcnrank.data import Ratings

    extra = np.flatnonzero(np.isin(ratings.movie_id, [3, 4]))[:2]
    columns = {}
    for field in fields(Ratings):
        if field.name == "genre_names":
            continue
        column = getattr(ratings, field.name)
        added = column[extra].copy()
        if field.name == "user_id":
            added[:] = 1
        elif field.name in USER_1:
            added[:] = column[np.flatnonzero(ratings.user_id == 1)[0]]
        columns[field.name] = np.concatenate([column, added])
    return MovieLensCatalog.from_ratings(Ratings(**columns))


RANK_ERRORS = [
    ({}, "user_id", r"give `user_id` or `user` \(the user's features\)\. Received neither"),
    ({"user_id": 0}, "user_id", r"must be an int from 1 to 2\*\*63-1\. Received: 0"),
    ({"user_id": True}, "user_id", r"must be an int from 1 to 2\*\*63-1\. Received: True"),
    ({"user_id": "1"}, "user_id", r"Received: '1'"),
    ({"user_id": 1, "top": 0}, "top", r"must be a positive int\. Received: top=0"),
    ({"user_id": 1, "top": True}, "top", r"must be a positive int\. Received: top=True"),
    ({"user": {"age": 3}}, "user.age", r"is not a user feature; they are user_gender, bucketized_user_age"),
    ({"user": {"user_zip_code": 85711}}, "user.user_zip_code", r"must be a str, as this feature's vocabulary"),
    ({"user": {"user_gender": "M"}}, "user.user_gender", r"must be an int that fits int64.*Received: 'M'"),
    ({"user_id": 1, "candidates": []}, "candidates", r"must hold at least one movie id\. Received: \[\]"),
    ({"user_id": 1, "candidates": [2, 0]}, "candidates[1]", r"must be an int from 1 to 2\*\*63-1\. Received: 0"),
    ({"user_id": 1, "candidates": [2, 2**63]}, "candidates[1]", r"Received: 9223372036854775808"),
    ({"user_id": 1, "candidates": [5, 6, 5]}, "candidates", r"must not repeat a movie id\. Received: 5 more than once"),
]  # fmt: skip


@pytest.mark.parametrize(("arguments", "field", "pattern"), RANK_ERRORS)
def test_rank_validation(ranker, arguments, field, pattern):
    with pytest.raises(RequestError, match=pattern) as caught:
        ranker.rank(**arguments)
    assert caught.value.field == field and str(caught.value).startswith(f"{field}: ")


def test_rank_without_catalog_needs_candidates(ranker):
    bare = Ranker(ranker.bundle)
    with pytest.raises(RequestError, match=r"^candidates: required: this server has no MovieLens catalog"):
        bare.rank(user_id=1)


ROW = {"movie_id": 1, "user_id": 1, **USER_1}

PREDICT_ERRORS = [
    ([], "rows", r"must hold at least one row\. Received: \[\]"),
    ([ROW, [1, 2]], "rows[1]", r"must be an object of feature values\. Received: \[1, 2\]"),
    ([{**ROW, "genre": 1}], "rows[0].genre", r"is not a feature of this model; its features are movie_id, user_id"),
    ([{"movie_id": 1, "user_id": 1}], "rows[0]", r"missing feature\(s\) user_gender, bucketized_user_age"),
    ([ROW, {**ROW, "movie_id": np.float64(1.0)}], "rows[1].movie_id", r"must be an int that fits int64"),
    ([ROW, {**ROW, "user_gender": False}], "rows[1].user_gender", r"must be an int that fits int64.*False"),
    ([{**ROW, "user_occupation_text": 3}], "rows[0].user_occupation_text", r"must be a str.*Received: 3"),
]  # fmt: skip


@pytest.mark.parametrize(("rows", "field", "pattern"), PREDICT_ERRORS)
def test_predict_validation(ranker, rows, field, pattern):
    with pytest.raises(RequestError, match=pattern) as caught:
        ranker.predict(rows)
    assert caught.value.field == field


def test_predict_accepts_numpy_scalars_and_matches_bundle(ranker):
    rows = [{**ROW, "movie_id": np.int64(3)}, ROW]
    got = ranker.predict(rows)
    expected = ranker.bundle.predict({name: [row[name] for row in rows] for name in ROW})
    torch.testing.assert_close(torch.tensor(got.scores), expected)
    assert got.unknown == {}


def test_request_error_carries_field_and_message():
    error = RequestError("rows[2].movie_id", "must be an int. Received: 'x'")
    assert (error.field, error.message, str(error)) == (
        "rows[2].movie_id", "must be an int. Received: 'x'", "rows[2].movie_id: must be an int. Received: 'x'"
    )  # fmt: skip


@pytest.mark.parametrize("max_bytes", [0, -1, 1.5, True, None])
def test_body_limit_needs_a_positive_int(max_bytes):
    with pytest.raises(ValueError, match=rf"`max_bytes` must be a positive int\. Received: max_bytes={max_bytes!r}"):
        BodyLimit(lambda *args: None, max_bytes)


@pytest.mark.parametrize("port", [-1, 65536, "80", True])
def test_bind_socket_port_range(port):
    with pytest.raises(ValueError, match=r"`port` must be an int in 0\.\.65535\. Received: port="):
        bind_socket("127.0.0.1", port)


def test_bind_socket_port_zero_picks_a_free_port_and_a_taken_one_is_an_os_error():
    first = bind_socket("127.0.0.1", 0)
    try:
        port = first.getsockname()[1]
        assert port > 0
        with pytest.raises(OSError):
            bind_socket("127.0.0.1", port)
    finally:
        first.close()


def test_background_server_stops_on_exit(ranker):
    from dcnrank.serve import create_app

    server = BackgroundServer(create_app(ranker.bundle))
    with server:
        thread = server._thread
    assert thread is not None and not thread.is_alive()


def test_real_movielens_rank_matches_recommend(movielens_ratings):
    """On the real catalog (1,682 movies), with a fresh model: the same ranking as `recommend`."""
    ratings = movielens_ratings
    vocabularies = fit_vocabularies(ratings)
    config = DCNConfig(embedding_dim=4, deep_units=(8,))
    torch.manual_seed(0)
    from dcnrank.bundle import Bundle, BundleConfig

    model = build_dcn(config, vocabulary_sizes=[v.size for v in vocabularies.values()])
    bundle = Bundle(
        model, BundleConfig(config, tuple(vocabularies), tuple(v.size for v in vocabularies.values())), vocabularies
    )
    catalog = MovieLensCatalog.from_ratings(ratings)
    ranker = Ranker(bundle, catalog)
    expected = recommend(bundle, catalog, 42, top=20)
    got = ranker.rank(user_id=42, top=20)
    assert got.candidates == expected.candidates == 1682 - int((ratings.user_id == 42).sum())
    assert [i.movie_id for i in got.items] == [i.movie_id for i in expected.items]
    torch.testing.assert_close(
        torch.tensor([i.score for i in got.items]), torch.tensor([i.predicted_rating for i in expected.items])
    )
    everything = ranker.rank(user_id=42, candidates=list(range(1, 1683)), top=1682)
    assert everything.candidates == 1682 and len(everything.items) == 1682 and everything.unknown == {}


@pytest.mark.parametrize("module", ["app", "body_limit", "connection_limits", "errors", "protocol", "ranker", "server"])
def test_docstring_examples_run(module):
    import doctest
    import importlib

    result = doctest.testmod(importlib.import_module(f"dcnrank.serve.{module}"))
    assert result.failed == 0 and result.attempted > 0
