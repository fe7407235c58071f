"""End-to-end jobs behind the commands: train a table model with early stopping into a bundle
(`train_table`), score a bundle on labelled rows (`evaluate_table`), predict and rank."""

from dcnrank.workflows.evaluate import RELEVANT_REGRESSION_LABEL, evaluate_table
from dcnrank.workflows.train import TableRunResult, train_table

__all__ = [
    "RELEVANT_REGRESSION_LABEL",
    "TableRunResult",
    "evaluate_table",
    "train_table",
]
