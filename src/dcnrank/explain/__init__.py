"""From a trained cross layer to a feature × feature importance matrix and its heatmap."""

from dcnrank.explain.heatmap import plot_heatmap
from dcnrank.explain.interactions import interaction_matrix
from dcnrank.explain.model_interactions import ModelInteractions, input_blocks, model_interactions
from dcnrank.explain.top_pairs import top_pairs

__all__ = ["ModelInteractions", "input_blocks", "interaction_matrix", "model_interactions", "plot_heatmap", "top_pairs"]
