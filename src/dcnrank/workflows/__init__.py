"""End-to-end jobs behind the commands: train a table model with early stopping into a bundle
(`train_table`), score a bundle on labelled rows (`evaluate_table`), predict and rank."""

from dcnrank.workflows.early_stopping import EarlyStoppingResult, fit_with_early_stopping
from dcnrank.workflows.evaluation import RELEVANT_REGRESSION_LABEL, evaluate_table
from dcnrank.workflows.table_run import TableRunResult, train_table

__all__ = [
    "RELEVANT_REGRESSION_LABEL",
    "EarlyStoppingResult",
    "TableRunResult",
    "evaluate_table",
    "fit_with_early_stopping",
    "train_table",
]
