"""End-to-end jobs behind `dcnrank train`, `evaluate` and `recommend`: train with early
stopping into a bundle, score a bundle on a split, rank unrated movies for a user."""

from dcnrank.workflows.catalog import MovieLensCatalog
from dcnrank.workflows.early_stopping import EarlyStoppingResult, fit_with_early_stopping
from dcnrank.workflows.evaluation import RELEVANT_RATING, evaluate_split, split_settings
from dcnrank.workflows.recommend import Recommendation, Recommendations, recommend
from dcnrank.workflows.train_run import TrainRunResult, train_run

__all__ = [
    "RELEVANT_RATING",
    "EarlyStoppingResult",
    "MovieLensCatalog",
    "Recommendation",
    "Recommendations",
    "TrainRunResult",
    "evaluate_split",
    "fit_with_early_stopping",
    "recommend",
    "split_settings",
    "train_run",
]
