"""PyTorch twin of ssdit's DiT and flow matching, for benchmarks only (never shipped)."""

from .flow import guided_velocity, sample, train_step
from .model import TwinConfig, TwinDiT

__all__ = ["TwinConfig", "TwinDiT", "guided_velocity", "sample", "train_step"]
