"""Content digests of model weights: results computed by a model can be reused wherever
the digest matches, and must be recomputed wherever it does not."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import TYPE_CHECKING

import torch

from eliq.critic.statistics import FEATURES

if TYPE_CHECKING:  # the model keys its caches by these digests
    from eliq.critic.model import CriticModel


def state_digest(header: str, state: Mapping[str, torch.Tensor], length: int = 20) -> str:
    """A hex digest of ``header`` and every tensor of ``state`` (names and bytes, in name
    order): equal for equal weights on any device, different for any changed bit."""
    digest = hashlib.sha256(header.encode())
    for name, tensor in sorted(state.items()):
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().reshape(-1).contiguous().view(torch.uint8).numpy())
    return digest.hexdigest()[:length]


def vision_fingerprint(model: CriticModel) -> str:
    """What a view's features depend on: the vision weights (LoRA included), the views and
    the statistics. Two critics with the same fingerprint compute identical features."""
    config = model.config
    header = f"{config.vision_backbone}|{config.view_size}|{config.crops}|{FEATURES}"
    return state_digest(header, model.vision.tower.state_dict())
