"""The two-axis critic: visual quality and prompt-image alignment."""

from eliq.critic.config import CriticConfig, LoraSettings, PristineSettings
from eliq.critic.critic import Critic, Score

__all__ = ["Critic", "CriticConfig", "LoraSettings", "PristineSettings", "Score"]
