"""Ranking metrics over grouped predictions (NDCG, MAP, MRR, precision and recall at k).

The regression metrics (`rmse`, `mae`) live in `dcnrank.training`.
"""

from dcnrank.metrics.ranking import (
    mean_average_precision,
    mean_reciprocal_rank,
    ndcg,
    precision_at_k,
    ranking_metrics,
    recall_at_k,
)

__all__ = [
    "mean_average_precision",
    "mean_reciprocal_rank",
    "ndcg",
    "precision_at_k",
    "ranking_metrics",
    "recall_at_k",
]
