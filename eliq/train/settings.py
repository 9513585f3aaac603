"""How a critic trains: settings that a run saves with its checkpoint (no torch here, so
services can read and validate them cheaply)."""

from __future__ import annotations

from dataclasses import dataclass

from pydantic import Field

from eliq.config import StrictModel


@dataclass(frozen=True)
class LossWeights:
    margin: float = 1.0
    severity: float = 0.5
    invariance: float = 0.5
    residual: float = 1.0
    linear: float = 0.03
    decorrelation: float = 0.0


class TrainSettings(StrictModel):
    steps: int = Field(default=1500, ge=1)
    batch_pairs: int = Field(default=48, ge=2)
    learning_rate: float = 3e-4
    weight_decay: float = 0.01
    seed: int = 0
    held_out_fraction: float = Field(default=0.1, ge=0.0, lt=1.0)
    replay_fraction: float = Field(default=0.5, ge=0.0, le=1.0)
    checkpoint_every: int = Field(default=250, ge=1)
    time_budget_s: float | None = Field(
        default=None,
        description="Stop early (and save) once training has run this long. Makes the "
        "result depend on machine load: for services that must move on, not for recipes.",
    )
    exclude_families: list[str] = Field(
        default=[], description="Negative families left out of training (and replay)."
    )
    device: str = "auto"
    margin: float = 1.0
    severity_weight: float = 0.5
    invariance_weight: float = 0.5
    residual_weight: float = 1.0
    linear_weight: float = Field(
        default=0.03, description="Ridge penalty on the linear residuals' weights."
    )
    decorrelation_weight: float = Field(
        default=0.0,
        ge=0.0,
        description="Penalty on the squared correlation, over a batch's images, of the linear "
        "quality residual with the quality prior: the residual may add to what the prior "
        "knows but not undo it.",
    )

    @property
    def loss_weights(self) -> LossWeights:
        return LossWeights(
            self.margin,
            self.severity_weight,
            self.invariance_weight,
            self.residual_weight,
            self.linear_weight,
            self.decorrelation_weight,
        )


RETUNE_DEFAULTS = TrainSettings(
    steps=120, batch_pairs=24, held_out_fraction=0.2, decorrelation_weight=1.0
)
"""How a critic is retuned on one new release: the daemon's ``retune`` settings default to
these, and the leave-generators-out protocol retunes with them. The decorrelation penalty is
the reference recipe's: a retune that may undo the prior gives back what it kept on photos."""
