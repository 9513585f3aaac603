"""Label-free training of the critic on pair sets."""

from eliq.train.trainer import TrainingStopped, TrainResult, TrainSettings, train

__all__ = ["TrainResult", "TrainSettings", "TrainingStopped", "train"]
