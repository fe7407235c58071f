"""Pure `torch.nn.Module` building blocks: no I/O, no training logic."""

from dcnrank.layers.dense import Dense
from dcnrank.layers.feature_cross import FeatureCross
from dcnrank.layers.mixture_cross import MixtureCross
from dcnrank.layers.mlp import MLP
from dcnrank.layers.vector_cross import VectorCross

__all__ = ["MLP", "Dense", "FeatureCross", "MixtureCross", "VectorCross"]
