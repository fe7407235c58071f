"""Regression metrics (RMSE, MAE), ranking metrics over grouped predictions (NDCG, MAP, MRR,
precision and recall at k) and binary click-through metrics (AUC, group AUC, log loss)."""

from dcnrank.metrics.classification import auc, group_auc, logloss, validate_binary_labels
from dcnrank.metrics.ranking import (
    mean_average_precision,
    mean_reciprocal_rank,
    ndcg,
    precision_at_k,
    ranking_metrics,
    recall_at_k,
)
from dcnrank.metrics.regression import mae, rmse

__all__ = [
    "auc",
    "group_auc",
    "logloss",
    "mae",
    "mean_average_precision",
    "mean_reciprocal_rank",
    "ndcg",
    "precision_at_k",
    "ranking_metrics",
    "recall_at_k",
    "rmse",
    "validate_binary_labels",
]
