"""`dcnrank.serve` over real HTTP: a uvicorn server on 127.0.0.1 (a free port, on a thread)
around a small trained bundle (`bundle_support`), hit with urllib and http.client — happy
paths compared with `Bundle.predict` on rows built by hand, every 4xx branch, and the
server answering after bad input."""

from __future__ import annotations

import http.client
import json
import math
import re
import urllib.error
import urllib.request

import pytest
import torch
from bundle_support import HAD, ROW, SPEC, build_bundle, candidate_rows

from dcnrank import __version__
from dcnrank.bundle import Bundle, load
from dcnrank.limits import MAX_STRING_CHARS
from dcnrank.serve import MAX_BODY_BYTES, MAX_ROWS, BackgroundServer, create_app

pytest.importorskip("fastapi")


@pytest.fixture(scope="module")
def bundle(trained_bundle) -> Bundle:
    return load(trained_bundle)


@pytest.fixture(scope="module")
def server(bundle):
    with BackgroundServer(create_app(bundle)) as running:
        yield running


@pytest.fixture(scope="module")
def bare_server(tmp_path_factory):
    """A bundle of the same spec without a catalogue."""
    with BackgroundServer(create_app(load(build_bundle(tmp_path_factory.mktemp("bare") / "b", catalog=False)))) as s:
        yield s


def call(url: str, path: str, body=None, *, raw: bytes | None = None, method: str | None = None):
    """(status, JSON body) of one request; a body is sent as JSON."""
    data = raw if raw is not None else (None if body is None else json.dumps(body).encode())
    request = urllib.request.Request(url + path, data=data, method=method, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def expected_scores(bundle: Bundle, user_id, items, user=None, context=None) -> dict:
    """item -> what `Bundle.predict` gives for the rows `/rank` should score."""
    scores = bundle.predict(candidate_rows(bundle, user_id, items, user, context)).tolist()
    return dict(zip(items, scores, strict=True))


def assert_ranked(items, scores: dict) -> None:
    """`items` are items of `scores`, best first, ranked 1.., with those scores."""
    assert [item["rank"] for item in items] == list(range(1, len(items) + 1))
    got = [item["score"] for item in items]
    assert got == sorted(got, reverse=True)
    torch.testing.assert_close(
        torch.tensor(got, dtype=torch.float64),
        torch.tensor([scores[item["item"]["item_id"]] for item in items], dtype=torch.float64),
        rtol=0, atol=1e-6,
    )  # fmt: skip


# ------------------------------------------------------------------------ happy paths


def test_health_describes_model_catalog_limits_and_version(server, bundle):
    status, body = call(server.url, "/health")
    assert status == 200
    assert body["status"] == "ok" and body["dcnrank_version"] == __version__
    model = body["model"]
    assert model["columns"] == list(SPEC.input_names) and model["structure"] == "stacked"
    assert model["user"] == "user_id" and model["item"] == "item_id" and model["task"] == "binary"
    # ids 1..6 and 1..5 and an OOV row each; 50 zip codes (the last 6 rows held out: 44 + OOV)
    assert model["table_sizes"]["user_id"] == 7 and model["table_sizes"]["item_id"] == 6
    assert model["table_sizes"] == bundle.encoder.table_sizes and model["path"] == str(bundle.path)
    assert model["parameters"] == sum(p.numel() for p in bundle.model.parameters())
    assert model["validation_metrics"] == bundle.metrics["validation"]
    assert body["catalog"] == {"users": 6, "items": 5}
    assert body["limits"] == {
        "max_rows": MAX_ROWS, "max_body_bytes": MAX_BODY_BYTES, "max_string_chars": MAX_STRING_CHARS, "default_top": 10
    }  # fmt: skip


def test_rank_known_user_defaults_to_the_items_it_did_not_have_with_their_columns(server, bundle):
    status, body = call(server.url, "/rank", {"user_id": 1})
    assert status == 200
    assert HAD[1] == {2, 3}  # so items 1, 4 and 5 are left
    assert body["user_id"] == 1 and body["candidates"] == 3
    assert body["unknown"] == {} and body["missing"] == ["device"]
    assert {item["item"]["item_id"]: (item["item"]["genres"], item["item"]["year"]) for item in body["items"]} == {
        1: (["comedy", "drama"], 1991.0), 4: ([], 1994.0), 5: (["action", "comedy"], 1995.0)
    }  # fmt: skip
    assert_ranked(body["items"], expected_scores(bundle, 1, [1, 4, 5]))


def test_rank_explicit_candidates_unknown_user_and_item_go_through_oov(server, bundle):
    status, body = call(server.url, "/rank", {"user_id": 42, "candidates": [2, 99, 1], "top": 2})
    assert status == 200
    assert body["candidates"] == 3 and len(body["items"]) == 2
    assert body["unknown"] == {"user_id": [42], "item_id": [99]}
    assert body["missing"] == ["age", "zip", "occupation", "device"]
    scores = expected_scores(bundle, 42, [2, 99, 1])
    assert_ranked(body["items"], scores)
    assert set(scores) - {item["item"]["item_id"] for item in body["items"]} == {min(scores, key=scores.get)}
    columns = {1: (["comedy", "drama"], 1991.0), 2: (["action"], 1992.0), 99: (None, None)}
    assert all((item["item"]["genres"], item["item"]["year"]) == columns[item["item"]["item_id"]]
               for item in body["items"])  # fmt: skip
    assert "user 42 is not in the model's vocabulary: scored through the out-of-vocabulary row" in body["notices"]


def test_rank_by_user_columns_scores_every_catalogue_item(server, bundle):
    user = {"zip": "00001", "occupation": "astronaut"}
    status, body = call(server.url, "/rank", {"user": user, "top": 100})
    assert status == 200
    assert body["user_id"] is None and body["candidates"] == 5 and len(body["items"]) == 5
    assert body["unknown"] == {"occupation": ["astronaut"]}
    assert body["missing"] == ["user_id", "age", "device"]
    assert_ranked(body["items"], expected_scores(bundle, None, [2, 3, 4, 5, 1], user=user))


def test_rank_user_columns_override_the_catalogues_and_context_is_scored(server, bundle):
    override = {"zip": "00003", "age": 64.5}
    request = {"user_id": 1, "user": override, "context": {"device": "tablet"}, "candidates": [1, 3]}
    status, body = call(server.url, "/rank", request)
    assert status == 200 and body["missing"] == [] and body["unknown"] == {}
    assert bundle.catalog.users["zip"][0] == "00000"  # the catalogue's, overridden
    assert_ranked(body["items"], expected_scores(bundle, 1, [1, 3], user=override, context={"device": "tablet"}))


def test_predict_scores_rows_in_order_and_reports_unknown_values(server, bundle):
    rows = [ROW, {**ROW, "item_id": 7, "zip": "99999"}, {**ROW, "user_id": 2, "genres": "drama|new"}]
    status, body = call(server.url, "/predict", {"rows": rows})
    assert status == 200
    assert body["unknown"] == {"item_id": [7], "zip": ["99999"]}
    expected = bundle.predict({name: [row[name] for row in rows] for name in SPEC.input_names})
    torch.testing.assert_close(torch.tensor(body["scores"]), expected, rtol=0, atol=1e-6)


def test_predict_takes_a_multi_hot_value_as_a_list(server, bundle):
    rows = [{**ROW, "genres": ["drama", "new"]}, {**ROW, "genres": []}]
    status, body = call(server.url, "/predict", {"rows": rows})
    assert status == 200
    expected = bundle.predict({**{name: [ROW[name]] * 2 for name in SPEC.input_names}, "genres": ["drama|new", ""]})
    torch.testing.assert_close(torch.tensor(body["scores"]), expected, rtol=0, atol=1e-6)


def test_predict_takes_multi_hot_values_as_lists_and_strings_in_one_request(server):
    status, _ = call(server.url, "/predict", {"rows": [ROW, {**ROW, "genres": ["drama", "new"]}]})
    assert status == 200


def test_predict_an_absent_column_is_missing(server, bundle):
    status, body = call(server.url, "/predict", {"rows": [{"item_id": 1}]})
    assert status == 200
    expected = bundle.predict({name: [1 if name == "item_id" else None] for name in SPEC.input_names})
    torch.testing.assert_close(torch.tensor(body["scores"]), expected, rtol=0, atol=1e-6)


def test_rank_without_catalogue_is_a_422_naming_the_model(bare_server):
    for request in ({"user_id": 1}, {"user_id": 1, "candidates": [3, 1]}):
        status, body = call(bare_server.url, "/rank", request)
        assert status == 422 and len(body["errors"]) == 1
        assert body["error"].startswith("model: this bundle holds no catalogue to rank from")
    assert call(bare_server.url, "/predict", {"rows": [ROW]})[0] == 200
    assert call(bare_server.url, "/health")[1]["catalog"] is None


# ------------------------------------------------------------------------ bad input

BAD_REQUESTS = [
    # (path, body, status, field, message pattern)
    ("/rank", {"user_id": "42"}, 422, "user_id", r"valid integer\. Received: '42'"),
    ("/rank", {"user_id": True}, 422, "user_id", r"valid integer\. Received: True"),
    ("/rank", {"user_id": 4.0}, 422, "user_id", r"valid integer\. Received: 4\.0"),
    ("/rank", {"user_id": 2**64}, 422, "user_id", r"less than or equal to 9223372036854775807"),
    ("/rank", {"user_id": 1, "movie": 3}, 422, "movie", r"Extra inputs are not permitted\. Received: 3"),
    ("/rank", {"user": {"device": "web"}}, 422, "user.device", r"Extra inputs are not permitted\. Received: 'web'"),
    ("/rank", {"user": {"zip": 94043.5}}, 422, "user.zip", r"must be a str \(or an int.*Received: 94043\.5"),
    ("/rank", {"user": {"age": "old"}}, 422, "user.age", r"valid number\. Received: 'old'"),
    ("/rank", {"user": ["x"]}, 422, "user", r"valid dictionary"),
    ("/rank", {"user_id": 1, "context": {"device": True}}, 422, "context.device", r"must be a str .*Received: True"),
    ("/rank", {"user_id": 1, "context": {"zip": "1"}}, 422, "context.zip", r"Extra inputs are not permitted"),
    ("/rank", {"user_id": 1, "candidates": []}, 422, "candidates", r"at least 1 item"),
    ("/rank", {"user_id": 1, "candidates": list(range(1, MAX_ROWS + 2))}, 422, "candidates",
     rf"at most {MAX_ROWS} items"),
    ("/rank", {"user_id": 1, "candidates": [1, 2, 1]}, 422, "candidates",
     r"^candidates: must not repeat an item id\. Received: 1 twice$"),
    ("/rank", {"user_id": 1, "candidates": [1, "2"]}, 422, "candidates[1]", r"valid integer\. Received: '2'"),
    ("/rank", {"user_id": 1, "candidates": 3}, 422, "candidates", r"valid list\. Received: 3"),
    ("/rank", {"user_id": 1, "top": 0}, 422, "top", r"greater than or equal to 1\. Received: 0"),
    ("/rank", {"user_id": 1, "top": "all"}, 422, "top", r"valid integer\. Received: 'all'"),
    ("/rank", [1, 2], 422, "body", r"valid dictionary or object"),
    ("/predict", {}, 422, "rows", r"Field required"),
    ("/predict", {"rows": []}, 422, "rows", r"at least 1 item"),
    ("/predict", {"rows": [ROW] * (MAX_ROWS + 1)}, 422, "rows", rf"at most {MAX_ROWS} items"),
    ("/predict", {"rows": [ROW, {**ROW, "item_id": 1.5}]}, 422, "rows[1].item_id", r"valid integer\. Received: 1\.5"),
    ("/predict", {"rows": [{**ROW, "user_id": "1"}]}, 422, "rows[0].user_id", r"valid integer\. Received: '1'"),
    ("/predict", {"rows": [{**ROW, "item_id": 2**63}]}, 422, "rows[0].item_id", r"less than or equal to 9223372036"),
    ("/predict", {"rows": [{**ROW, "zip": [85711]}]}, 422, "rows[0].zip", r"must be a str .*Received: \[85711\]"),
    ("/predict", {"rows": [{**ROW, "age": "x"}]}, 422, "rows[0].age", r"valid number\. Received: 'x'"),
    ("/predict", {"rows": [{**ROW, "age": 1e999}]}, 422, "rows[0].age", r"finite number"),
    ("/predict", {"rows": [ROW, {**ROW, "genre": "x"}]}, 422, "rows[1].genre", r"Extra inputs are not permitted"),
    ("/predict", {"rows": [{**ROW, "clicked": 1}]}, 422, "rows[0].clicked", r"Extra inputs are not permitted"),
    ("/predict", {"rows": ["item_id"]}, 422, "rows[0]", r"valid dictionary"),
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


def test_a_multi_hot_value_of_the_wrong_kind_names_the_column(server):
    got, answer = call(server.url, "/predict", {"rows": [{**ROW, "genres": [1.5]}]})
    assert got == 422 and answer["errors"][0]["field"].startswith("rows[0].genres")


def test_a_multi_hot_field_path_holds_no_pydantic_tags(server):
    _, answer = call(server.url, "/predict", {"rows": [{**ROW, "genres": [1.5]}]})
    assert [e["field"] for e in answer["errors"]] == ["rows[0].genres[0]", "rows[0].genres"]


def test_an_int_for_a_text_column_is_read_as_its_digits(server):
    # ids a CSV stored as text ("85711") arrive as JSON numbers from most clients
    as_int = call(server.url, "/predict", {"rows": [{**ROW, "zip": 85711, "genres": [1]}]})
    as_text = call(server.url, "/predict", {"rows": [{**ROW, "zip": "85711", "genres": ["1"]}]})
    assert as_int[0] == 200 and as_int == as_text


@pytest.mark.parametrize(
    ("path", "body"), [("/predict", {"rows": [{**ROW, "age": 1e39}]}), ("/rank", {"user_id": 1, "user": {"age": 1e39}})]
)
def test_a_huge_finite_number_gets_a_finite_score(server, path, body):
    status, answer = call(server.url, path, body)
    scores = answer["scores"] if path == "/predict" else [item["score"] for item in answer["items"]]
    assert status == 200 and all(score is not None and math.isfinite(score) for score in scores), answer


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


def test_internal_error_is_a_500_and_the_server_survives(trained_bundle, monkeypatch):
    bundle = load(trained_bundle)
    with BackgroundServer(create_app(bundle)) as running:

        def broken(*args, **kwargs):
            raise RuntimeError("boom")

        monkeypatch.setattr(bundle, "predictions", broken)  # the app scores through this bundle
        for path, body in (("/rank", {"user_id": 1}), ("/predict", {"rows": [ROW]})):
            status, answer = call(running.url, path, body)
            assert status == 500
            assert answer["error"] == "server: internal error (RuntimeError); see the server log"
        monkeypatch.undo()
        assert call(running.url, "/rank", {"user_id": 1})[0] == 200


# ------------------------------------------------------------------------ construction


def test_create_app_argument_errors():
    with pytest.raises(ValueError, match=r"`bundle` must be a dcnrank\.bundle\.Bundle\. Received: str"):
        create_app("runs/dcn")


def test_background_server_url_needs_a_running_server(bundle):
    with pytest.raises(ValueError, match=r"the server is not running"):
        _ = BackgroundServer(create_app(bundle)).url
