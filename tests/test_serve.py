"""`dcnrank.serve` over real HTTP: a uvicorn server on 127.0.0.1 (a free port, on a thread)
around a tiny bundle, hit with urllib and http.client — happy paths compared with
`Bundle.predict`, every 4xx branch, and the server answering after bad input."""

from __future__ import annotations

import http.client
import json
import re
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import write_tiny_movielens

from dcnrank import __version__
from dcnrank.bundle import Bundle, load, save
from dcnrank.data import fit_vocabularies, load_movielens
from dcnrank.limits import MAX_STRING_CHARS
from dcnrank.models import DCNConfig, build_dcn
from dcnrank.serve import MAX_BODY_BYTES, MAX_ROWS, BackgroundServer, create_app
from dcnrank.workflows import MovieLensCatalog

# The tiny data's users (conftest.TINY_USERS) as the model sees them.
USER_1 = {"user_gender": 1, "bucketized_user_age": 18, "user_zip_code": "85711", "user_occupation_text": "technician"}
FEATURES = ("movie_id", "user_id", "user_gender", "bucketized_user_age", "user_zip_code", "user_occupation_text")


def save_tiny_bundle(root: Path, config: DCNConfig | None = None) -> tuple[Path, Path]:
    """A freshly built DCN saved as a bundle, with vocabularies fitted on the tiny
    MovieLens ratings of users 1 and 2 only: user 3 and movie 4 (rated only by user 3)
    are in the data but out of the model's vocabulary. Returns (bundle, ml-100k folder)."""
    data = write_tiny_movielens(root / "ml-100k")
    ratings = load_movielens(data)
    vocabularies = fit_vocabularies(ratings, np.flatnonzero(ratings.user_id != 3))
    config = config or DCNConfig(embedding_dim=2, deep_units=(4,))
    torch.manual_seed(0)
    model = build_dcn(config, vocabulary_sizes=[v.size for v in vocabularies.values()])
    return save(model, root / "bundle", model_config=config, vocabularies=vocabularies), data


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    folder, data = save_tiny_bundle(tmp_path_factory.mktemp("serve"))
    return load(folder), MovieLensCatalog.from_ratings(load_movielens(data))


@pytest.fixture(scope="module")
def server(tiny):
    with BackgroundServer(create_app(*tiny)) as running:
        yield running


@pytest.fixture(scope="module")
def bare_server(tiny):
    """The same model without a catalog."""
    with BackgroundServer(create_app(tiny[0])) as running:
        yield running


def call(url: str, path: str, body=None, *, raw: bytes | None = None, method: str | None = None):
    """(status, JSON body) of one request; a body is sent as JSON."""
    data = raw if raw is not None else (None if body is None else json.dumps(body).encode())
    request = urllib.request.Request(url + path, data=data, method=method, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def expected_scores(bundle: Bundle, movie_ids, user_id=None, user=None) -> list[float]:
    """What `Bundle.predict` gives for these movies and this user (absent features OOV)."""
    n = len(movie_ids)
    columns = {"movie_id": list(movie_ids)}
    if user_id is not None:
        columns["user_id"] = [user_id] * n
    for name, value in (user or {}).items():
        columns[name] = [value] * n
    return bundle.predict(columns, missing_as_oov=True).tolist()


def assert_ranked(items, scores: dict[int, float]) -> None:
    """`items` are the movies of `scores`, best first, ranked 1.., with those scores."""
    assert [item["rank"] for item in items] == list(range(1, len(items) + 1))
    got = [item["score"] for item in items]
    assert got == sorted(got, reverse=True)
    torch.testing.assert_close(
        torch.tensor(got, dtype=torch.float64),
        torch.tensor([scores[item["movie_id"]] for item in items], dtype=torch.float64),
        rtol=0, atol=1e-6,
    )  # fmt: skip


# ------------------------------------------------------------------------ happy paths


def test_health_describes_model_catalog_limits_and_version(server, tiny):
    bundle, _ = tiny
    status, body = call(server.url, "/health")
    assert status == 200
    assert body["status"] == "ok" and body["dcnrank_version"] == __version__
    model = body["model"]
    assert model["features"] == list(FEATURES) and model["structure"] == "stacked"
    assert model["vocabulary_sizes"] == [4, 3, 3, 3, 3, 3] and model["path"] == str(bundle.path)
    assert model["parameters"] == sum(p.numel() for p in bundle.model.parameters())
    assert body["catalog"] == {"users": 3, "movies": 4}
    assert body["limits"] == {
        "max_rows": MAX_ROWS, "max_body_bytes": MAX_BODY_BYTES, "max_string_chars": MAX_STRING_CHARS, "default_top": 10
    }  # fmt: skip


def test_rank_known_user_defaults_to_unrated_movies_with_titles(server, tiny):
    status, body = call(server.url, "/rank", {"user_id": 1})
    assert status == 200
    # user 1 rated movies 1 and 2; movie 4 is in the catalog but not the vocabulary
    assert body["user_id"] == 1 and body["candidates"] == 2
    assert body["unknown"] == {"movie_id": [4]} and body["missing"] == []
    assert {item["movie_id"]: item["title"] for item in body["items"]} == {3: "unknown", 4: "Café Society (1995)"}
    scores = expected_scores(tiny[0], [3, 4], user_id=1, user=USER_1)
    assert_ranked(body["items"], dict(zip([3, 4], scores, strict=True)))


def test_rank_explicit_candidates_unknown_user_and_movie_go_through_oov(server, tiny):
    status, body = call(server.url, "/rank", {"user_id": 42, "candidates": [2, 99, 1], "top": 2})
    assert status == 200
    assert body["candidates"] == 3 and len(body["items"]) == 2
    assert body["unknown"] == {"movie_id": [99], "user_id": [42]}
    assert body["missing"] == ["user_gender", "bucketized_user_age", "user_zip_code", "user_occupation_text"]
    scores = dict(zip([2, 99, 1], expected_scores(tiny[0], [2, 99, 1], user_id=42), strict=True))
    assert_ranked(body["items"], scores)
    assert set(scores) - {item["movie_id"] for item in body["items"]} == {min(scores, key=scores.get)}
    known = {1: "Toy Story (1995)", 2: "GoldenEye (1995)", 99: None}
    assert all(item["title"] == known[item["movie_id"]] for item in body["items"])


def test_rank_by_features_scores_every_catalog_movie(server, tiny):
    user = {"user_gender": 0, "user_zip_code": "94043", "user_occupation_text": "astronaut"}
    status, body = call(server.url, "/rank", {"user": user, "top": 100})
    assert status == 200
    assert body["user_id"] is None and body["candidates"] == 4 and len(body["items"]) == 4
    assert body["unknown"] == {"movie_id": [4], "user_occupation_text": ["astronaut"]}
    assert body["missing"] == ["user_id", "bucketized_user_age"]
    assert_ranked(
        body["items"], dict(zip([1, 2, 3, 4], expected_scores(tiny[0], [1, 2, 3, 4], user=user), strict=True))
    )


def test_rank_user_features_override_the_catalogs(server, tiny):
    override = {"user_zip_code": "94043"}
    status, body = call(server.url, "/rank", {"user_id": 1, "user": override, "candidates": [1, 3]})
    assert status == 200 and body["missing"] == [] and body["unknown"] == {}
    user = {**USER_1, **override}
    assert_ranked(body["items"], dict(zip([1, 3], expected_scores(tiny[0], [1, 3], user_id=1, user=user), strict=True)))


def test_predict_scores_rows_in_order_and_reports_unknown_values(server, tiny):
    rows = [
        {"movie_id": 1, "user_id": 1, **USER_1},
        {"movie_id": 7, "user_id": 2, **USER_1, "user_zip_code": "00000"},
        {"movie_id": 3, "user_id": 2, **USER_1},
    ]
    status, body = call(server.url, "/predict", {"rows": rows})
    assert status == 200
    assert body["unknown"] == {"movie_id": [7], "user_zip_code": ["00000"]}
    expected = tiny[0].predict({name: [row[name] for row in rows] for name in FEATURES})
    torch.testing.assert_close(torch.tensor(body["scores"]), expected, rtol=0, atol=1e-6)


def test_rank_without_catalog_needs_candidates_and_has_no_titles(bare_server, tiny):
    status, body = call(bare_server.url, "/rank", {"user_id": 1})
    assert status == 422
    assert body["errors"][0]["field"] == "candidates" and len(body["errors"]) == 1
    assert body["error"].startswith("candidates: required: this server has no MovieLens catalog")
    status, body = call(bare_server.url, "/rank", {"user_id": 1, "candidates": [3, 1]})
    assert status == 200 and body["missing"] == list(USER_1)
    assert all(item["title"] is None for item in body["items"])
    assert_ranked(body["items"], dict(zip([3, 1], expected_scores(tiny[0], [3, 1], user_id=1), strict=True)))
    assert call(bare_server.url, "/health")[1]["catalog"] is None


# ------------------------------------------------------------------------ bad input

ROW = {"movie_id": 1, "user_id": 1, **USER_1}

BAD_REQUESTS = [
    # (path, body, status, field, message pattern)
    ("/rank", {"user_id": "42"}, 422, "user_id", r"valid integer\. Received: '42'"),
    ("/rank", {"user_id": True}, 422, "user_id", r"valid integer\. Received: True"),
    ("/rank", {"user_id": 4.0}, 422, "user_id", r"valid integer\. Received: 4\.0"),
    ("/rank", {"user_id": 0}, 422, "user_id", r"greater than or equal to 1\. Received: 0"),
    ("/rank", {"user_id": 2**64}, 422, "user_id", r"less than or equal to 9223372036854775807"),
    ("/rank", {"user_id": 1, "movie": 3}, 422, "movie", r"Extra inputs are not permitted\. Received: 3"),
    ("/rank", {"user": {"age": 30}}, 422, "user.age", r"Extra inputs are not permitted\. Received: 30"),
    ("/rank", {"user": {"user_zip_code": 94043}}, 422, "user.user_zip_code", r"valid string\. Received: 94043"),
    ("/rank", {"user": ["x"]}, 422, "user", r"valid dictionary"),
    ("/rank", {}, 422, "user_id", r"give `user_id` or `user` \(the user's features\)\. Received neither"),
    ("/rank", {"user_id": 1, "candidates": []}, 422, "candidates", r"at least 1 item"),
    ("/rank", {"user_id": 1, "candidates": list(range(1, MAX_ROWS + 2))}, 422, "candidates",
     rf"at most {MAX_ROWS} items"),
    ("/rank", {"user_id": 1, "candidates": [1, 2, 1]}, 422, "candidates",
     r"must not repeat a movie id\. Received: 1 more than once"),
    ("/rank", {"user_id": 1, "candidates": [1, "2"]}, 422, "candidates[1]", r"valid integer\. Received: '2'"),
    ("/rank", {"user_id": 1, "candidates": [-5]}, 422, "candidates[0]", r"greater than or equal to 1"),
    ("/rank", {"user_id": 1, "candidates": 3}, 422, "candidates", r"valid list\. Received: 3"),
    ("/rank", {"user_id": 1, "top": 0}, 422, "top", r"greater than or equal to 1\. Received: 0"),
    ("/rank", {"user_id": 1, "top": "all"}, 422, "top", r"valid integer\. Received: 'all'"),
    ("/rank", [1, 2], 422, "body", r"valid dictionary or object"),
    ("/predict", {}, 422, "rows", r"Field required"),
    ("/predict", {"rows": []}, 422, "rows", r"at least 1 item"),
    ("/predict", {"rows": [ROW] * (MAX_ROWS + 1)}, 422, "rows", rf"at most {MAX_ROWS} items"),
    ("/predict", {"rows": [ROW, {**ROW, "movie_id": 1.5}]}, 422, "rows[1].movie_id",
     r"must be an int or a str\. Received: 1\.5"),
    ("/predict", {"rows": [{**ROW, "user_gender": None}]}, 422, "rows[0].user_gender", r"must be an int or a str"),
    ("/predict", {"rows": [{**ROW, "user_id": "1"}]}, 422, "rows[0].user_id",
     r"must be an int that fits int64, as this feature's vocabulary holds\. Received: '1'"),
    ("/predict", {"rows": [{**ROW, "movie_id": 2**63}]}, 422, "rows[0].movie_id", r"must be an int that fits int64"),
    ("/predict", {"rows": [{**ROW, "user_zip_code": 85711}]}, 422, "rows[0].user_zip_code",
     r"must be a str, as this feature's vocabulary holds\. Received: 85711"),
    ("/predict", {"rows": [ROW, {**ROW, "genre": "x"}]}, 422, "rows[1].genre", r"is not a feature of this model"),
    ("/predict", {"rows": [{"movie_id": 1}]}, 422, "rows[0]",
     r"missing feature\(s\) user_id, user_gender, bucketized_user_age, user_zip_code, user_occupation_text"),
    ("/predict", {"rows": ["movie_id"]}, 422, "rows[0]", r"valid dictionary"),
    ("/predict", {"rows": [ROW], "top": 1}, 422, "top", r"Extra inputs are not permitted"),
]  # fmt: skip


@pytest.mark.parametrize(("path", "body", "status", "field", "pattern"), BAD_REQUESTS)
def test_bad_request_is_a_4xx_naming_the_field_and_the_server_still_answers(server, path, body, status, field, pattern):
    got, answer = call(server.url, path, body)
    assert got == status
    assert answer["errors"][0]["field"] == field
    assert answer["error"] == f"{field}: {answer['errors'][0]['message']}"
    assert re.search(pattern, answer["error"]), answer["error"]
    assert call(server.url, "/rank", {"user_id": 1})[0] == 200


@pytest.mark.parametrize(
    ("raw", "pattern"),
    [
        (b'{"user_id": 1,', r"^body: malformed JSON at character \d+: "),
        (b"user_id=1", r"^body: malformed JSON at character 0: "),
        (b"\xff\xfe", r"^body: malformed JSON"),
    ],
)
def test_malformed_json_is_a_400(server, raw, pattern):
    status, body = call(server.url, "/rank", raw=raw)
    assert status == 400
    assert re.search(pattern, body["error"]), body["error"]
    assert call(server.url, "/health")[0] == 200


def test_oversized_body_is_a_413_before_it_is_read(server):
    port = int(server.url.rsplit(":", 1)[1])
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    connection.putrequest("POST", "/predict")
    connection.putheader("Content-Type", "application/json")
    connection.putheader("Content-Length", str(MAX_BODY_BYTES + 1))
    connection.endheaders()  # and no body: the server must answer without waiting for it
    response = connection.getresponse()
    body = json.loads(response.read())
    connection.close()
    assert response.status == 413
    assert body["error"] == f"body: at most {MAX_BODY_BYTES} bytes. Received: Content-Length {MAX_BODY_BYTES + 1}"
    assert call(server.url, "/health")[0] == 200


def test_chunked_body_without_length_is_a_411(server):
    port = int(server.url.rsplit(":", 1)[1])
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    connection.request(
        "POST", "/rank", body=iter([b'{"user_id": 1}']), headers={"Content-Type": "application/json"},
        encode_chunked=True,
    )  # fmt: skip
    response = connection.getresponse()
    body = json.loads(response.read())
    connection.close()
    assert response.status == 411
    assert body["errors"] == [
        {"field": "body", "message": "send a Content-Length header (chunked bodies are not accepted)"}
    ]


@pytest.mark.parametrize(
    ("path", "method", "status", "message"),
    [("/nowhere", "GET", 404, "Not Found"), ("/rank", "GET", 405, "Method Not Allowed")],
)
def test_unknown_path_and_method(server, path, method, status, message):
    assert call(server.url, path, method=method) == (
        status, {"error": f"path: {message}", "errors": [{"field": "path", "message": message}]}
    )  # fmt: skip


def test_internal_error_is_a_500_and_the_server_survives(tiny, monkeypatch):
    bundle, catalog = tiny
    app = create_app(bundle, catalog)
    with BackgroundServer(app) as running:

        def broken(*args, **kwargs):
            raise RuntimeError("boom")

        monkeypatch.setattr(bundle, "predict", broken)  # the app's ranker holds this bundle
        status, body = call(running.url, "/rank", {"user_id": 1})
        assert status == 500
        assert body["error"] == "server: internal error (RuntimeError); see the server log"
        monkeypatch.undo()
        assert call(running.url, "/rank", {"user_id": 1})[0] == 200


# ------------------------------------------------------------------------ construction


def test_create_app_argument_errors(tiny):
    with pytest.raises(ValueError, match=r"`bundle` must be a dcnrank.bundle.TableBundle or Bundle\. Received: str"):
        create_app("runs/dcn")
    with pytest.raises(ValueError, match=r"`catalog` must be a MovieLensCatalog or None\. Received: dict"):
        create_app(tiny[0], {})


def test_background_server_url_needs_a_running_server(tiny):
    with pytest.raises(ValueError, match=r"the server is not running"):
        _ = BackgroundServer(create_app(tiny[0])).url
