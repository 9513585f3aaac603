"""Label-free training metrics."""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch

from eliq.critic.critic import Critic
from eliq.critic.model import TextFeatures
from eliq.train.data import FeatureStore


@torch.inference_mode()
def pair_outcomes(critic: Critic, pairs: pd.DataFrame, store: FeatureStore) -> pd.DataFrame:
    """Per pair (columns ``pair_id``, ``family``, ``right``): did the critic rank its
    positive above its negative on the pair's own axis? Label-free."""
    model = critic.model
    right: list[bool] = []
    for start in range(0, len(pairs), 64):
        batch = pairs.iloc[start : start + 64]
        # both sides in one call: most negatives share their positive's prompt, encoded once
        both = model.text_features([*batch["positive_prompt"], *batch["negative_prompt"]])
        sides = []
        for index, side in enumerate(("positive", "negative")):
            rows = slice(index * len(batch), (index + 1) * len(batch))
            text = TextFeatures(*(part[rows] for part in both))
            sides.append(model.score_features(store.features(list(batch[side])), text))
        rows = torch.arange(len(batch))
        axis = torch.as_tensor(batch["axis"].to_numpy())
        right += (sides[0][rows, axis] > sides[1][rows, axis]).tolist()
    return pd.DataFrame(
        {"pair_id": list(pairs["pair_id"]), "family": list(pairs["family"]), "right": right}
    )


def pair_accuracy(critic: Critic, pairs: pd.DataFrame, store: FeatureStore) -> dict[str, float]:
    """Share of pairs ranked the right way on their own axis, per family (label-free)."""
    return accuracy_per_family(pair_outcomes(critic, pairs, store)) if len(pairs) else {}


def accuracy_per_family(outcomes: pd.DataFrame) -> dict[str, float]:
    """Share of :func:`pair_outcomes` ranked right, per family."""
    return {f: float(np.mean(part["right"])) for f, part in sorted(outcomes.groupby("family"))}
