"""The ranking core on a table bundle (`rank_items`) and `dcnrank recommend` over it."""

import json

import pytest
import torch
from test_catalog import FIT, SPEC, make_bundle

from dcnrank.bundle import load
from dcnrank.bundle.ranking import RankingError, rank_items
from dcnrank.cli.main import main
from dcnrank.workflows.recommend import parse_user_id, recommend_items


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    return make_bundle(tmp_path_factory.mktemp("rank") / "b")


@pytest.fixture(scope="module")
def bundle(folder):
    return load(folder)


def rows_for(user_id, items, age, genres, years, device=None):
    """The rows `rank_items` should build, written by hand."""
    n = len(items)
    return {"user_id": [user_id] * n, "item_id": items, "age": [age] * n, "genres": genres, "year": years,
            "device": [device] * n}  # fmt: skip


def test_ranking_equals_predict_on_the_same_rows_and_leaves_out_fit_items(bundle):
    ranking = rank_items(bundle, 2, top=5)  # user 2 had item a: b and c are left
    expected = bundle.predict(rows_for(2, ["b", "c"], None, [["y"], []], [2001.0, None]))
    order = torch.argsort(-expected, stable=True).tolist()
    assert [item.item["item_id"] for item in ranking.items] == [["b", "c"][i] for i in order]
    torch.testing.assert_close(torch.tensor([item.score for item in ranking.items]), expected[order])
    assert [item.rank for item in ranking.items] == [1, 2]
    assert ranking.candidates == 2 and ranking.unknown == {}
    assert ranking.items[0].item == {"item_id": ["b", "c"][order[0]], "genres": [["y"], []][order[0]],
                                     "year": [2001.0, None][order[0]]}  # fmt: skip
    assert ranking.missing == ["age", "device"]  # user 2's age was missing; no context given


def test_given_candidates_are_all_scored_and_users_columns_come_from_the_catalogue(bundle):
    ranking = rank_items(bundle, 1, candidates=["c", "a"], context={"device": "web"})
    expected = bundle.predict(rows_for(1, ["c", "a"], 30.0, [[], ["x", "y"]], [None, 1990.0], "web"))
    assert {item.item["item_id"]: item.score for item in ranking.items} == pytest.approx(
        dict(zip(["c", "a"], expected.tolist(), strict=True))
    )
    assert ranking.candidates == 2 and ranking.missing == []
    assert rank_items(bundle, 1).candidates == 1  # user 1 had a and b: only c


def test_request_values_override_the_catalogue(bundle):
    ranking = rank_items(bundle, 1, user={"age": 55.0}, candidates=["c"])
    expected = bundle.predict(rows_for(1, ["c"], 55.0, [[]], [None]))
    assert ranking.items[0].score == pytest.approx(float(expected[0]))


def test_unknown_user_and_items_go_through_the_oov_row_with_notices(bundle):
    ranking = rank_items(bundle, 99, candidates=["zz", "a"], top=1)
    assert ranking.unknown == {"user_id": [99], "item_id": ["zz"]}
    assert ranking.candidates == 2 and len(ranking.items) == 1
    assert any("user 99 is not in the model's vocabulary" in notice for notice in ranking.notices)
    assert any("1 candidate item(s) not in the catalogue" in notice for notice in ranking.notices)
    unknown_user = rank_items(bundle, 99)  # an unknown user has no fit items: every item is a candidate
    assert unknown_user.candidates == 3
    expected = bundle.predict(rows_for(99, ["zz"], None, [None], [None]))
    zz = next(item for item in rank_items(bundle, 99, candidates=["zz", "a"]).items if item.item["item_id"] == "zz")
    assert zz.score == pytest.approx(float(expected[0])) and zz.item == {"item_id": "zz", "genres": None, "year": None}


@pytest.mark.parametrize(
    ("kwargs", "field", "message"),
    [
        ({"user_id": "1"}, "user_id", r"must be an int that fits int64, as the column's vocabulary holds"),
        ({"user_id": True}, "user_id", r"must be an int that fits int64"),
        ({"user_id": 1, "top": 0}, "top", r"must be a positive int. Received: top=0"),
        (
            {"user_id": 1, "user": {"device": "web"}},
            "user.device",
            r"is not a user column of this model; they are: age",
        ),
        (
            {"user_id": 1, "context": {"age": 3}},
            "context.age",
            r"is not a context column of this model; they are: device",
        ),
        ({"user_id": 1, "user": {"age": "old"}}, "user.age", r"must be a finite number. Received: 'old'"),
        ({"user_id": 1, "context": {"device": 3}}, "context.device", r"must be a str of at most"),
        ({"user_id": 1, "user": []}, "user", r"must map column names to values"),
        ({"user_id": 1, "candidates": []}, "candidates", r"must be a non-empty list of item ids"),
        ({"user_id": 1, "candidates": ["a", "a"]}, "candidates", r"must not repeat an item id. Received: 'a' twice"),
        ({"user_id": 1, "candidates": ["a", 3]}, "candidates[1]", r"must be a str of at most"),
    ],
)
def test_request_errors_name_the_field(bundle, kwargs, field, message):
    user_id = kwargs.pop("user_id")
    with pytest.raises(RankingError, match=message) as caught:
        rank_items(bundle, user_id, **kwargs)
    assert caught.value.field == field


def test_a_bundle_without_a_catalogue_cannot_rank(tmp_path):
    bundle = load(make_bundle(tmp_path / "b", catalog=False))
    with pytest.raises(RankingError, match=r"this bundle holds no catalogue to rank from") as caught:
        rank_items(bundle, 1)
    assert caught.value.field == "model"


def test_parse_user_id(bundle, tmp_path):
    assert parse_user_id(bundle, "2") == 2
    with pytest.raises(ValueError, match=r"--user must be an integer: the column 'user_id' holds ints. Received: 'x'"):
        parse_user_id(bundle, "x")
    strings = make_bundle(tmp_path / "s", fit={**FIT, "user_id": ["u1", "u1", "u2", "u3", "u1"]})
    assert parse_user_id(load(strings), "u2") == "u2"
    assert recommend_items(load(strings), "u2", top=1).items[0].rank == 1


def test_recommend_cli_json_equals_the_core(folder, bundle, capsys):
    assert main(["recommend", "--model", str(folder), "--user", "2", "--top", "5", "--json"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed == json.loads(json.dumps(rank_items(bundle, 2, top=5).to_dict()))


def test_recommend_cli_text_and_notices(folder, capsys):
    assert main(["recommend", "--model", str(folder), "--user", "99", "--top", "2"]) == 0
    out, err = capsys.readouterr()
    lines = out.splitlines()
    assert lines[0].split() == ["rank", "score", "item_id", "genres", "year"]
    assert len(lines) == 3 and lines[1].split()[0] == "1"
    assert "dcnrank recommend: notice: user 99 is not in the model's vocabulary" in err


def test_recommend_cli_errors(folder, capsys):
    assert main(["recommend", "--model", str(folder), "--user", "x"]) == 2
    assert "--user must be an integer" in capsys.readouterr().err


def test_spec_rows_cover_every_input(bundle):
    assert set(rows_for(1, ["a"], 1.0, [[]], [None])) == set(SPEC.input_names)
