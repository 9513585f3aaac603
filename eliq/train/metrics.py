"""Label-free training metrics."""

from __future__ import annotations

from collections import defaultdict

import numpy as np
import pandas as pd
import torch

from eliq.critic.critic import Critic
from eliq.train.data import FeatureStore


@torch.inference_mode()
def pair_accuracy(critic: Critic, pairs: pd.DataFrame, store: FeatureStore) -> dict[str, float]:
    """Share of pairs ranked the right way on their own axis, per family (label-free)."""
    if pairs.empty:
        return {}
    hits: dict[str, list[bool]] = defaultdict(list)
    model = critic.model
    for start in range(0, len(pairs), 64):
        batch = pairs.iloc[start : start + 64]
        sides = []
        for side in ("positive", "negative"):
            text = model.text_features(list(batch[f"{side}_prompt"]))
            sides.append(model.score_features(store.features(list(batch[side])), text))
        rows = torch.arange(len(batch))
        axis = torch.as_tensor(batch["axis"].to_numpy())
        right = (sides[0][rows, axis] > sides[1][rows, axis]).tolist()
        for family, hit in zip(batch["family"], right, strict=True):
            hits[family].append(hit)
    return {family: float(np.mean(v)) for family, v in sorted(hits.items())}
