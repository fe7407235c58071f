"""Ranking metrics over grouped predictions (NDCG, MAP, MRR, precision and recall at k) and
binary click-through metrics (AUC, group AUC, log loss).

The regression metrics (`rmse`, `mae`) live in `dcnrank.training`.
"""

from dcnrank.metrics.classification import auc, group_auc, logloss, validate_binary_labels
from dcnrank.metrics.ranking import (
    mean_average_precision,
    mean_reciprocal_rank,
    ndcg,
    precision_at_k,
    ranking_metrics,
    recall_at_k,
)

__all__ = [
    "auc",
    "group_auc",
    "logloss",
    "mean_average_precision",
    "mean_reciprocal_rank",
    "ndcg",
    "precision_at_k",
    "ranking_metrics",
    "recall_at_k",
    "validate_binary_labels",
]
