"""Label-free training of the critic on pair sets."""

from eliq.train.trainer import TrainResult, TrainSettings, train

__all__ = ["TrainResult", "TrainSettings", "train"]
