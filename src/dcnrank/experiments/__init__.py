"""The seed's experiments as plain functions returning results; the CLI prints them."""

from dcnrank.experiments.result import ExperimentResult, ModelResult
from dcnrank.experiments.toy import TOY_FEATURES, mixer_data, run_toy

__all__ = ["TOY_FEATURES", "ExperimentResult", "ModelResult", "mixer_data", "run_toy"]
