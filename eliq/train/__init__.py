"""Label-free training of the critic on pair sets."""

from eliq.train.settings import RETUNE_DEFAULTS, TrainSettings
from eliq.train.trainer import TrainingStopped, TrainResult, train

__all__ = ["RETUNE_DEFAULTS", "TrainResult", "TrainSettings", "TrainingStopped", "train"]
