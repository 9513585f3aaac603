"""A pyiqa-style facade, so code written for pyiqa scores with eliq unchanged::

    metric = eliq.create_metric("eliq-quality")          # the shipped reference critic
    metric("a.png"), metric(batch)                       # (N,) tensor, higher is better
    eliq.create_metric("eliq-alignment")(images, caption_list=prompts)

As in pyiqa, a metric has ``metric_name``, ``lower_better``, ``metric_mode`` ("NR": no
reference image) and ``score_range``. Scores are on the critic's 0-100 scale
(:mod:`eliq.critic.scale`) unless ``scaled=False``.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from eliq.critic.critic import Critic, ImageInput
from eliq.critic.shipped import DEFAULT_CRITIC

AXES = {"eliq-quality": "quality", "eliq-alignment": "alignment"}


def list_models() -> list[str]:
    """The metric names :func:`create_metric` takes."""
    return sorted(AXES)


def create_metric(
    metric_name: str,
    device: str | torch.device | None = None,
    as_loss: bool = False,
    critic: str = DEFAULT_CRITIC,
    scaled: bool = True,
) -> CriticMetric:
    """One axis of a critic (a shipped critic's name or a checkpoint folder) as a metric."""
    if metric_name not in AXES:
        raise ValueError(f"unknown metric {metric_name!r}; known: {', '.join(list_models())}")
    if as_loss:
        raise ValueError("eliq metrics score images; they are not differentiable losses")
    loaded = Critic.from_pretrained(critic, "auto" if device is None else str(device))
    if scaled and loaded.scale is None:
        raise ValueError(f"critic {critic!r} has no 0-100 scale; pass scaled=False")
    return CriticMetric(loaded, metric_name, scaled)


class CriticMetric:
    """``metric(images, caption_list=None) -> (N,)`` scores of one axis."""

    lower_better = False
    metric_mode = "NR"

    def __init__(self, critic: Critic, metric_name: str, scaled: bool) -> None:
        self.critic = critic
        self.metric_name = metric_name
        self.axis = AXES[metric_name]
        self.scaled = scaled
        self.score_range = "0, 100" if scaled else "-inf, inf"

    def __call__(
        self,
        target: ImageInput | Sequence[ImageInput],
        caption_list: Sequence[str] | None = None,
    ) -> torch.Tensor:
        """Images as paths, PIL images, a ``(3, H, W)`` or ``(N, 3, H, W)`` tensor in
        [0, 1], or a sequence of them; alignment needs one caption per image."""
        images = list(target) if isinstance(target, torch.Tensor) and target.ndim == 4 else target
        if self.axis == "alignment" and caption_list is None:
            raise ValueError("eliq-alignment needs caption_list: one prompt per image")
        prompts = None if caption_list is None else list(caption_list)
        scores = self.critic.score(images, prompts)
        name = f"{self.axis}_scaled" if self.scaled else self.axis
        return torch.tensor([getattr(score, name) for score in scores], dtype=torch.float32)

    def __repr__(self) -> str:
        return f"CriticMetric({self.metric_name!r}, critic version {self.critic.version})"
