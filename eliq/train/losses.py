"""The label-free training objective.

Every pair (positive, negative) belongs to one axis: technical and aesthetic negatives to
**quality** (column 0), alignment negatives to **alignment** (column 1). With ``s(x)`` the
critic's score on that axis, the loss of a batch is::

    L = L_rank + w_severity * L_severity + w_invariance * L_invariance
        + w_residual * L_residual + w_linear * L_linear + w_decorrelation * L_decorrelation

* ``L_rank``: logistic ranking with a margin on the pair's own axis only,
  ``softplus(margin - (s(positive) - s(negative)))``. A technical negative says nothing about
  alignment and an alignment negative nothing about quality, so the other axis is free.
* ``L_severity``: for two negatives of the same positive and family with severities
  ``i < j``, ``softplus(-(s(negative_i) - s(negative_j)))``: graded severities rank in order.
* ``L_invariance``: an alignment negative keeps the positive's image, so its quality score
  must not move: ``(q(positive) - q(negative))**2``.
* ``L_residual``: the critic's score is a fixed prior plus learned residuals
  (:mod:`eliq.critic.model`). The query transformer's, a deep network, is held small by
  ``mean(residual**2)`` over every scored image, so it cannot drift into recognising only
  the synthetic distortions it was trained on.
* ``L_linear``: the linear residuals (low-level and whole-image on quality, bilinear on
  alignment) are penalised on their weights instead, ``w_linear * sum(weight**2)`` (ridge
  on standardised features), so they may correct the prior as far as the pairs ask where
  an image's features are far out (noise), while their few directions keep them from
  overfitting.
  ``w_linear`` (0.03) was chosen label-free by leaving families out, on each axis (see the
  README).
* ``L_decorrelation``: the squared Pearson correlation, over the batch's scored images, of
  the linear quality residual with the quality prior. Left free, that residual learns to
  undo part of the sharpness prior (a noisier copy has more high frequencies than its
  positive), which helps on the synthetic pairs and costs camera photos; held uncorrelated
  it may only add what the prior does not already say. Always reported; weighted 0 unless
  a recipe asks.

All terms are means over the pairs they apply to (zero when a batch has none).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F

from eliq.critic.model import ScoreParts
from eliq.train.settings import LossWeights

LOSS_PARTS = (
    "rank",
    "severity",
    "invariance",
    "residual",
    "linear",
    "decorrelation",
    "accuracy",
)
"""The parts :func:`critic_loss` reports, in this order."""


def critic_loss(
    positive: torch.Tensor,
    negative: torch.Tensor,
    axis: torch.Tensor,
    ladder: torch.Tensor,
    scored: ScoreParts,
    weights: LossWeights | None = None,
    linear: Sequence[torch.Tensor] = (),
) -> tuple[torch.Tensor, dict[str, float]]:
    """``positive``/``negative``: ``(P, 2)`` scores of each pair's two sides; ``axis``: ``(P,)``
    0 or 1; ``ladder``: ``(K, 2)`` indices ``(i, j)`` of pairs whose negatives rank
    ``i`` above ``j``; ``scored``: the parts of every scored image's scores (the query
    transformer's residual and the linear one are regularised); ``linear``: the linear
    residuals' weights. Returns the loss and its parts for logging."""
    weights = weights or LossWeights()
    rows = torch.arange(len(axis), device=axis.device)
    pos, neg = positive[rows, axis], negative[rows, axis]
    rank = F.softplus(weights.margin - (pos - neg)).mean()
    severity = positive.new_zeros(())
    if len(ladder):
        better, worse = ladder[:, 0], ladder[:, 1]
        severity = F.softplus(-(neg.index_select(0, better) - neg.index_select(0, worse))).mean()
    prompt_only = axis == 1
    invariance = positive.new_zeros(())
    if prompt_only.any():
        invariance = (positive[prompt_only, 0] - negative[prompt_only, 0]).pow(2).mean()
    residual_size = scored.query.pow(2).mean()
    linear_size = sum((w.pow(2).sum() for w in linear), positive.new_zeros(()))
    decorrelation = _squared_correlation(scored.linear[:, 0], scored.prior[:, 0].detach())
    total = (
        rank
        + weights.severity * severity
        + weights.invariance * invariance
        + weights.residual * residual_size
        + weights.linear * linear_size
        + weights.decorrelation * decorrelation
    )
    parts = {
        "rank": rank.item(),
        "severity": severity.item(),
        "invariance": invariance.item(),
        "residual": residual_size.item(),
        "linear": linear_size.item(),
        "decorrelation": decorrelation.item(),
        "accuracy": (pos > neg).float().mean().item(),
    }
    return total, parts


def _squared_correlation(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Squared Pearson correlation of two ``(N,)`` tensors; zero where either is constant
    (the untrained linear residual). No square root, whose gradient at zero is infinite."""
    x, y = x - x.mean(), y - y.mean()
    return (x * y).sum().pow(2) / (x.pow(2).sum() * y.pow(2).sum()).clamp_min(1e-12)
