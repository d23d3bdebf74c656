"""transferlab: reproducible experiments on pretraining and transfer."""

__version__ = "0.1.0"
