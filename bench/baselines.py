"""Baselines the critic is compared against: classic no-reference measures and zero-shot
proxies from the critic's own pre-trained backbones (no training at all).

Every function returns one number per image where higher means better.
"""

from __future__ import annotations

import numpy as np
import torch
from brisque import BRISQUE
from PIL import Image
from pypiqe import piqe
from scipy import ndimage

from eliq.backbones.imagenet import SentenceText, imagenet_class_names, minilm_path
from eliq.backbones.mobilenet_v2 import MobileNetV2
from eliq.critic.views import make_views
from eliq.imageio import load_image


def laplacian_variance(path: str) -> float:
    """Variance of the Laplacian of the greyscale image at full resolution (sharpness)."""
    grey = np.asarray(Image.open(path).convert("L"), dtype=np.float64)
    return float(ndimage.laplace(grey).var())


def piqe_score(path: str) -> float:
    """PIQE (lower is better in its own convention, so negated)."""
    return -float(piqe(np.asarray(Image.open(path).convert("RGB")))[0])


class _Numpy2Brisque(BRISQUE):
    """brisque 0.2 builds its features as an object array of 1-element arrays, which numpy 2
    refuses to convert with ``float()``; flatten them first."""

    def scale_features(self, features):
        flat = np.array([np.asarray(f, dtype=np.float64).ravel()[0] for f in features])
        return super().scale_features(flat)


_BRISQUE = None


def brisque_score(path: str) -> float:
    """BRISQUE (trained on LIVE opinion scores, so not label-free); negated, NaN when it fails."""
    global _BRISQUE
    _BRISQUE = _BRISQUE or _Numpy2Brisque(url=False)
    try:
        return -float(_BRISQUE.score(np.asarray(Image.open(path).convert("RGB"))))
    except (ValueError, ZeroDivisionError, FloatingPointError):
        return float("nan")


class ZeroShot:
    """ImageNet MobileNetV2 and MiniLM used as they come, on the critic's own views."""

    def __init__(self, crops: int = 4) -> None:
        self.crops = crops
        self.classifier = MobileNetV2.from_pretrained()
        self.text = SentenceText(minilm_path())
        with torch.inference_mode():
            self.class_embeddings = self.text.sentence(imagenet_class_names(), 64)

    @torch.inference_mode()
    def __call__(self, path: str, prompt: str) -> tuple[float, float]:
        """(quality proxy, alignment proxy): negative class entropy averaged over the views;
        MiniLM similarity of the prompt to the probability-weighted top-5 class names."""
        views = make_views(load_image(path), 224, self.crops)
        probabilities = self.classifier(views).softmax(-1)
        entropy = -(probabilities * probabilities.clamp_min(1e-12).log()).sum(-1).mean()
        top = probabilities[0].topk(5)
        prompt_embedding = self.text.sentence([prompt], 64)[0]
        similarity = (self.class_embeddings[top.indices] @ prompt_embedding * top.values).sum()
        return -float(entropy), float(similarity / top.values.sum())
