"""`evaluate_table` and `relevance_threshold`, with hand-checked values."""

import numpy as np
import pytest
import torch

from dcnrank.bundle import Bundle
from dcnrank.data.encoding.table_encoder import TableEncoder
from dcnrank.data.encoding.table_error import TableDataError
from dcnrank.data.spec.feature_spec import CategoricalColumn, FeatureSpec, NumericColumn
from dcnrank.models import DCNConfig
from dcnrank.models.table_inputs import build_table_dcn
from dcnrank.workflows.evaluate import evaluate_table, relevance_threshold


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
    return Bundle(model, config, encoder)


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
