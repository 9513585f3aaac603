"""Label-free training metrics."""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch

from eliq.critic.critic import Critic, encode_each, prompt_key, stack_text
from eliq.critic.model import CriticModel, TextFeatures
from eliq.critic.scale import ScoreScale
from eliq.train.data import FeatureStore

BATCH = 64


@torch.inference_mode()
def pair_outcomes(critic: Critic, pairs: pd.DataFrame, store: FeatureStore) -> pd.DataFrame:
    """Per pair (columns ``pair_id``, ``family``, ``right``): did the critic rank its
    positive above its negative on the pair's own axis? Label-free."""
    model = critic.model
    texts = _each_prompt(model, [*pairs["positive_prompt"], *pairs["negative_prompt"]])
    right: list[bool] = []
    for start in range(0, len(pairs), BATCH):
        batch = pairs.iloc[start : start + BATCH]
        sides = []
        for side in ("positive", "negative"):
            text = stack_text([texts[prompt_key(p)] for p in batch[f"{side}_prompt"]])
            sides.append(model.score_features(store.features(list(batch[side])), text))
        rows = torch.arange(len(batch))
        axis = torch.as_tensor(batch["axis"].to_numpy())
        right += (sides[0][rows, axis] > sides[1][rows, axis]).tolist()
    return pd.DataFrame(
        {"pair_id": list(pairs["pair_id"]), "family": list(pairs["family"]), "right": right}
    )


@torch.inference_mode()
def fit_scale(critic: Critic, positives: pd.DataFrame, store: FeatureStore) -> ScoreScale:
    """The critic's 0-100 scale (:mod:`eliq.critic.scale`) anchored on ``positives``
    (columns ``positive``, ``positive_prompt``; each distinct image and prompt once): the
    clean images it was trained on, scored with their own prompts. Label-free."""
    anchors = positives[["positive", "positive_prompt"]].drop_duplicates()
    model = critic.model
    texts = _each_prompt(model, list(anchors["positive_prompt"]))
    quality: list[float] = []
    alignment: list[float | None] = []
    for start in range(0, len(anchors), BATCH):
        batch = anchors.iloc[start : start + BATCH]
        prompts = list(batch["positive_prompt"])
        text = stack_text([texts[prompt_key(p)] for p in prompts])
        scores = model.score_features(store.features(list(batch["positive"])), text).cpu()
        quality += scores[:, 0].tolist()
        paired = zip(scores[:, 1].tolist(), prompts, strict=True)
        alignment += [value if prompt_key(prompt) else None for value, prompt in paired]
    return ScoreScale.fit(
        quality, alignment, f"{len(anchors)} training positives, scored with their prompts"
    )


def _each_prompt(model: CriticModel, prompts: list[str | None]) -> dict[str, TextFeatures]:
    """Each distinct prompt encoded once for all the pairs: most negatives share their
    positive's prompt, and a release history renders one prompt suite again and again."""
    keys = list(dict.fromkeys(prompt_key(p) for p in prompts))
    texts: dict[str, TextFeatures] = {}
    for start in range(0, len(keys), BATCH):
        texts.update(encode_each(model, keys[start : start + BATCH]))
    return texts


def pair_accuracy(critic: Critic, pairs: pd.DataFrame, store: FeatureStore) -> dict[str, float]:
    """Share of pairs ranked the right way on their own axis, per family (label-free)."""
    return accuracy_per_family(pair_outcomes(critic, pairs, store)) if len(pairs) else {}


def accuracy_per_family(outcomes: pd.DataFrame) -> dict[str, float]:
    """Share of :func:`pair_outcomes` ranked right, per family."""
    return {f: float(np.mean(part["right"])) for f, part in sorted(outcomes.groupby("family"))}
