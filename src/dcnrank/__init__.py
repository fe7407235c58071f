"""dcnrank: Deep & Cross Network ranking on PyTorch."""

__version__ = "0.1.0"
