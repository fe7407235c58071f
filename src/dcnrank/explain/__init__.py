"""From a trained cross layer to a feature × feature importance matrix and its heatmap."""

from dcnrank.explain.heatmap import plot_heatmap
from dcnrank.explain.interactions import interaction_matrix

__all__ = ["interaction_matrix", "plot_heatmap"]
