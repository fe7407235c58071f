"""DCN models: feature embeddings, cross networks and the assembled ranker."""

from dcnrank.config.model_config import DCNConfig
from dcnrank.models.cross_network import CrossNetwork
from dcnrank.models.dcn import DCN, build_dcn
from dcnrank.models.feature_embedding import FeatureEmbedding

__all__ = ["DCN", "CrossNetwork", "DCNConfig", "FeatureEmbedding", "build_dcn"]
