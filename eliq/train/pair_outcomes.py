"""Label-free training metrics."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pandas as pd
import torch

from eliq.critic.critic import Critic
from eliq.critic.features import FeatureCache
from eliq.critic.prompt_text import prompt_cache_key
from eliq.critic.scale import ScoreScale

BATCH = 64


def stored_scores(
    critic: Critic, features: FeatureCache, images: Sequence[str], prompts: Sequence[str | None]
) -> torch.Tensor:
    """``(N, 2)`` raw scores of each image with its prompt (alignment NaN without one),
    vision features from ``features``. Each distinct (image, prompt) is scored once: a pair
    set's positive stands beside each of its negatives, and a release history renders one
    prompt suite again and again, so what a critic ranks repeats far more than it differs."""
    keys = [
        (image, prompt_cache_key(prompt)) for image, prompt in zip(images, prompts, strict=True)
    ]
    distinct = list(dict.fromkeys(keys))
    scored = critic.score(
        [image for image, _ in distinct], [p or None for _, p in distinct], BATCH, features
    )
    table = torch.tensor(
        [[s.quality, math.nan if s.alignment is None else s.alignment] for s in scored]
    ).reshape(-1, 2)
    where = {key: i for i, key in enumerate(distinct)}
    return table[[where[key] for key in keys]]


def pair_outcomes(critic: Critic, pairs: pd.DataFrame, features: FeatureCache) -> pd.DataFrame:
    """Per pair (columns ``pair_id``, ``family``, ``right``): did the critic rank its
    positive above its negative on the pair's own axis? Label-free."""
    scores = stored_scores(
        critic,
        features,
        [*pairs["positive"], *pairs["negative"]],
        [*pairs["positive_prompt"], *pairs["negative_prompt"]],
    )
    rows = torch.arange(len(pairs))
    axis = torch.as_tensor(pairs["axis"].to_numpy(), dtype=torch.long)
    positive, negative = scores[: len(pairs)], scores[len(pairs) :]
    right = (positive[rows, axis] > negative[rows, axis]).tolist()
    return pd.DataFrame(
        {"pair_id": list(pairs["pair_id"]), "family": list(pairs["family"]), "right": right}
    )


def fit_scale(critic: Critic, positives: pd.DataFrame, features: FeatureCache) -> ScoreScale:
    """The critic's 0-100 scale (:mod:`eliq.critic.scale`) anchored on ``positives``
    (columns ``positive``, ``positive_prompt``; each distinct image and prompt once): the
    clean images it was trained on, scored with their own prompts. Label-free."""
    anchors = positives[["positive", "positive_prompt"]].drop_duplicates()
    prompts = list(anchors["positive_prompt"])
    scores = stored_scores(critic, features, list(anchors["positive"]), prompts)
    alignment = [
        value if prompt_cache_key(prompt) else None
        for value, prompt in zip(scores[:, 1].tolist(), prompts, strict=True)
    ]
    return ScoreScale.fit(
        scores[:, 0].tolist(),
        alignment,
        f"{len(anchors)} training positives, scored with their prompts",
    )


def pair_accuracy(critic: Critic, pairs: pd.DataFrame, features: FeatureCache) -> dict[str, float]:
    """Share of pairs ranked the right way on their own axis, per family (label-free)."""
    return accuracy_per_family(pair_outcomes(critic, pairs, features)) if len(pairs) else {}


def accuracy_per_family(outcomes: pd.DataFrame) -> dict[str, float]:
    """Share of :func:`pair_outcomes` ranked right, per family."""
    return {f: float(np.mean(part["right"])) for f, part in sorted(outcomes.groupby("family"))}
