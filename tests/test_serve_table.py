"""`dcnrank serve` on a bundle: `/rank` and `/predict` with schemas derived from the
spec (through FastAPI's TestClient), the same answer as `dcnrank recommend`, `/health`."""

import json

import pytest
import torch
from test_catalog import FIT, SPEC, make_bundle

from dcnrank.bundle import load
from dcnrank.bundle.ranking import rank_items
from dcnrank.cli.main import main
from dcnrank.serve import create_app

pytest.importorskip("fastapi")
from fastapi.testclient import TestClient  # noqa: E402


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    return make_bundle(tmp_path_factory.mktemp("serve") / "b")


@pytest.fixture(scope="module")
def bundle(folder):
    return load(folder)


@pytest.fixture(scope="module")
def client(bundle):
    return TestClient(create_app(bundle))


def test_rank_equals_the_core_and_the_cli(client, bundle, folder, capsys):
    response = client.post("/rank", json={"user_id": 2, "top": 5})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body == json.loads(json.dumps(rank_items(bundle, 2, top=5).to_dict()))
    assert main(["recommend", "--model", str(folder), "--user", "2", "--top", "5", "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == body
    assert [item["item"]["item_id"] for item in body["items"]] and body["candidates"] == 2


def test_rank_with_user_context_and_candidates(client, bundle):
    request = {"user_id": 1, "user": {"age": 55.0}, "context": {"device": "web"}, "candidates": ["c", "zz"]}
    body = client.post("/rank", json=request).json()
    expected = rank_items(bundle, 1, user={"age": 55.0}, context={"device": "web"}, candidates=["c", "zz"])
    assert body == json.loads(json.dumps(expected.to_dict()))
    assert body["unknown"] == {"item_id": ["zz"]}


@pytest.mark.parametrize(
    ("request_body", "field"),
    [
        ({"user_id": "2"}, "user_id"),  # the user column holds ints
        ({"user_id": 2.0}, "user_id"),
        ({"user_id": 2, "user": {"age": "old"}}, "user.age"),
        ({"user_id": 2, "user": {"device": "web"}}, "user.device"),  # not a user column: unknown field
        ({"user_id": 2, "context": {"device": 3.5}}, "context.device"),
        ({"user_id": 2, "candidates": [True]}, "candidates[0]"),  # the item column holds strings
        ({"user_id": 2, "top": 0}, "top"),
        ({"user_id": 2, "movie_id": 3}, "movie_id"),
    ],
)
def test_rank_schema_refuses_wrong_types_with_422_naming_the_field(client, request_body, field):
    response = client.post("/rank", json=request_body)
    assert response.status_code == 422, response.text
    assert response.json()["errors"][0]["field"] == field
    assert response.json()["error"].startswith(f"{field}: ")


def test_unservable_rank_is_a_422(client, tmp_path):
    response = client.post("/rank", json={"user_id": 2, "candidates": ["a", "a"]})
    assert response.status_code == 422
    assert response.json()["error"] == "candidates: must not repeat an item id. Received: 'a' twice"
    bare = TestClient(create_app(load(make_bundle(tmp_path / "b", catalog=False))))
    response = bare.post("/rank", json={"user_id": 2})
    assert response.status_code == 422 and response.json()["errors"][0]["field"] == "model"


def test_predict_rows_keyed_by_the_spec_columns(client, bundle):
    rows = [{name: FIT[name][i] for name in SPEC.input_names} for i in range(3)]
    rows[1]["user_id"] = 77
    del rows[2]["age"]  # absent: missing
    response = client.post("/predict", json={"rows": rows})
    assert response.status_code == 200, response.text
    expected = bundle.predict({name: [row.get(name) for row in rows] for name in SPEC.input_names})
    torch.testing.assert_close(torch.tensor(response.json()["scores"]), expected)
    assert response.json()["unknown"] == {"user_id": [77]}


@pytest.mark.parametrize(
    ("rows", "field"),
    [
        ([{"user_id": "1"}], "rows[0].user_id"),
        ([{"age": "x"}], "rows[0].age"),
        ([{"genres": [1.5]}], "rows[0].genres"),
        ([{"clicked": 1}], "rows[0].clicked"),  # the label is not an input
        ([], "rows"),
    ],
)
def test_predict_schema_refuses_wrong_types(client, rows, field):
    response = client.post("/predict", json={"rows": rows})
    assert response.status_code == 422, response.text
    assert response.json()["errors"][0]["field"].startswith(field)


def test_health_describes_the_table_bundle(client, folder):
    body = client.get("/health").json()
    assert body["status"] == "ok"
    assert body["model"]["columns"] == list(SPEC.input_names) and body["model"]["path"] == str(folder)
    assert body["model"]["user"] == "user_id" and body["catalog"] == {"users": 3, "items": 3}


def test_openapi_schema_names_the_spec_columns(client):
    schema = client.get("/openapi.json").json()["components"]["schemas"]
    assert set(schema["UserColumns"]["properties"]) == {"age"}
    assert set(schema["ContextColumns"]["properties"]) == {"device"}
    assert set(schema["Row"]["properties"]) == set(SPEC.input_names)


def test_create_app_refuses_what_is_not_a_bundle():
    with pytest.raises(ValueError, match=r"`bundle` must be a dcnrank\.bundle\.Bundle\. Received: object"):
        create_app(object())
