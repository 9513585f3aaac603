"""A pristine-statistics prior: how far an image's crops lie from undistorted photographs.

The opinion-unaware NIQE / IL-NIQE / MDFS family. A multivariate Gaussian is fitted to
crops of pristine images, described by the backbone's early levels (mean- and std-pooled
maps) and the low-level statistics; an image's prior is minus the Mahalanobis distance of
its more textured crops from that Gaussian. Two choices follow NIQE and what was measured
here before the critic existed:

* only the most textured quarter of the pristine crops is fitted (NIQE keeps only sharp
  patches): photographs are full of smooth sky and bokeh, and fitted on every crop the
  Gaussian finds blurry generated images close to them;
* only early levels: on semantic levels the distance measures "unlike the content of these
  photographs", not degradation.

The distance is standardised by the pristine crops' own (mean and spread of their
distances), so the weight it gets in the quality prior is in units of the pristine
spread, whatever the backbone. The Gaussian is stored with the critic (safetensors
buffers), and :meth:`PristineStatistics.blend` moves it towards a new release's own
positives, shrunk so one release cannot overwrite the history.
"""

from __future__ import annotations

import torch
from torch import nn


class PristineStatistics(nn.Module):
    """The Gaussian of pristine crop features (``dim`` wide); unfitted until :meth:`fit`."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.register_buffer("mean", torch.zeros(dim))
        self.register_buffer("covariance", torch.eye(dim))
        self.register_buffer("precision", torch.eye(dim))
        # the fitted crops' distances: mean and standard deviation
        self.register_buffer("reference", torch.tensor([0.0, 1.0]))
        self.register_buffer("crops", torch.zeros((), dtype=torch.long))

    @property
    def fitted(self) -> bool:
        return bool(self.crops > 0)

    def distance(self, features: torch.Tensor) -> torch.Tensor:
        """Mahalanobis distance of ``(..., dim)`` features from the pristine mean."""
        centred = features - self.mean
        return ((centred @ self.precision) * centred).sum(-1).clamp_min(0).sqrt()

    def term(self, features: torch.Tensor, texture: torch.Tensor) -> torch.Tensor:
        """``(B,)`` minus the standardised mean distance of each image's more textured half
        of its crops (``features`` ``(B, C, dim)``, ``texture`` ``(B, C)``)."""
        keep = max(1, features.shape[1] // 2)
        textured = texture.topk(keep, dim=1).indices
        distances = self.distance(features).gather(1, textured).mean(1)
        return -(distances - self.reference[0]) / self.reference[1]

    @torch.no_grad()
    def fit(self, features: torch.Tensor, texture: torch.Tensor, keep_fraction: float) -> int:
        """Fit to the ``keep_fraction`` most textured of ``(N, dim)`` crop features
        (``texture`` ``(N,)``); returns how many crops the Gaussian holds."""
        kept = _most_textured(features, texture, keep_fraction).to(self.mean.device)
        self._set(*_gaussian(kept), len(kept))
        self._standardise(kept, _gaussian)
        return len(kept)

    @torch.no_grad()
    def blend(
        self, features: torch.Tensor, texture: torch.Tensor, keep_fraction: float, weight: float
    ) -> int:
        """Move the Gaussian towards new crops' (a release's own positives): their mean and
        covariance get ``weight``, what is held ``1 - weight``. The reference spread is
        measured on the new crops, so a release's images set the scale at which later ones
        are judged. Returns the crops used."""
        if not self.fitted:
            return self.fit(features, texture, keep_fraction)
        kept = _most_textured(features, texture, keep_fraction).to(self.mean.device)
        held = (self.mean.double(), self.covariance.double())

        def blended(crops: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            mean, covariance = _gaussian(crops)
            return (1 - weight) * held[0] + weight * mean, (1 - weight) * held[
                1
            ] + weight * covariance

        self._set(*blended(kept), int(self.crops) + len(kept))
        self._standardise(kept, blended)
        return len(kept)

    def _set(self, mean: torch.Tensor, covariance: torch.Tensor, crops: int) -> None:
        self.mean.copy_(mean)
        self.covariance.copy_(covariance)
        self.precision.copy_(torch.linalg.inv(covariance))
        self.crops.fill_(crops)

    def _standardise(self, kept: torch.Tensor, gaussian) -> None:
        """The reference: mean and spread of the crops' distances, each half measured by a
        Gaussian made (by ``gaussian``) from the other half. In-sample distances of a few
        hundred crops in a few hundred dimensions would all be alike, and an image outside
        them would look absurdly far."""
        halves = (kept[0::2], kept[1::2])
        distances = []
        for measured, other in (halves, halves[::-1]):
            mean, covariance = gaussian(other)
            centred = measured - mean
            squared = (centred @ torch.linalg.inv(covariance) * centred).sum(-1)
            distances.append(squared.clamp_min(0).sqrt())
        every = torch.cat(distances)
        self.reference.copy_(torch.stack([every.mean(), every.std().clamp_min(1e-6)]))


def _gaussian(crops: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean and Ledoit-Wolf shrunk covariance of ``(N, dim)`` float64 rows. Shrinkage is
    done on the standardised features (towards their identity correlation), as the
    features' scales differ by orders of magnitude; a few hundred crops cannot estimate a
    few hundred dimensions' covariance without it."""
    mean = crops.mean(0)
    scale = crops.std(0).clamp_min(1e-8)
    x = (crops - mean) / scale
    n, p = x.shape
    sample = x.T @ x / n
    mu = sample.diagonal().mean()
    squared = x**2
    beta = ((squared.T @ squared).sum() / n - (sample**2).sum()) / (p * n)
    delta = ((sample - mu * torch.eye(p, dtype=x.dtype, device=x.device)) ** 2).sum() / p
    shrinkage = 0.0 if delta == 0 else float(min(beta, delta) / delta)
    shrunk = (1 - shrinkage) * sample + shrinkage * mu * torch.eye(
        p, dtype=x.dtype, device=x.device
    )
    return mean, shrunk * scale[:, None] * scale[None, :]


def _most_textured(features: torch.Tensor, texture: torch.Tensor, fraction: float) -> torch.Tensor:
    """The ``fraction`` most textured rows, in float64 (at least four: each half of them
    must give a Gaussian for the other)."""
    count = max(4, round(fraction * len(features)))
    if len(features) < count:
        raise ValueError(f"a pristine Gaussian needs at least {count} crops, got {len(features)}")
    return features[texture.topk(count).indices].double()
