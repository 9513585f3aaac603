"""The promotion gate: does a retuned critic replace the champion?

Label-free, on held-out pairs only, and every comparison paired: the challenger and its
baseline (the champion; for a first release, the critic the retune started from) rank the
*same* held-out pairs, and each pair's outcome is stored with the evaluation, so any
decision can be re-derived from the database. Three tests, all of which must pass:

1. **Floor.** The challenger's held-out accuracy on the new release, over at least
   ``min_pairs`` pairs, must be above ``min_accuracy`` with confidence: the lower bound of
   its Wilson interval at ``confidence`` reaches it. A critic at chance (0.5) never
   passes, whatever the champion scored.
2. **Gain on the new release** over the champion, the paired difference of accuracies, is at
   least ``min_gain`` (the estimate itself: noise never promotes). A first release has no
   champion to gain over; its challenger may not fall below its starting critic by more
   than ``forgetting_margin`` with confidence.
3. **Forgetting.** On the earlier releases' held-out pairs, the challenger may lose to its
   baseline, but not by more than ``forgetting_margin`` with confidence (the whole paired
   interval of the loss beyond the margin blocks).

Paired differences are bootstrap intervals over pairs; McNemar's exact p-value is recorded
beside them. The record's ``why`` says the decision in words.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import Any, Literal

import numpy as np
from pydantic import Field

from daemon.state.tables import EvaluationRecord
from eliq.config import StrictModel
from eliq.intervals import Interval, mcnemar, paired_mean_difference, proportion


class GateSettings(StrictModel):
    """When a challenger replaces the champion (the tests are in daemon/policy/gate.py)."""

    mode: Literal["auto", "manual"] = Field(
        default="auto", description="manual: every challenger waits for `eliq-daemon promote`."
    )
    min_pairs: int = Field(
        default=30,
        ge=1,
        description="Fewer held-out pairs of the new release than this: too few to decide, "
        "the challenger is held.",
    )
    min_accuracy: float = Field(
        default=0.6,
        ge=0,
        lt=1,
        description="Floor: the lower bound of the challenger's held-out accuracy on the new "
        "release (Wilson interval at `confidence`) must reach this. 0.5 is chance; at 0.6 a "
        "critic at chance passes in under 0.1% of releases, at any number of pairs.",
    )
    min_gain: float = Field(
        default=0.0,
        description="The paired gain in held-out accuracy over the champion on the new "
        "release must be at least this (0: not worse); a first release has no champion.",
    )
    forgetting_margin: float = Field(
        default=0.05,
        ge=0,
        description="Largest loss of held-out accuracy on earlier releases (and, for a first "
        "release, on its own against its starting critic) tolerated: only a loss whose whole "
        "interval lies beyond it blocks.",
    )
    forgetting_pairs: int | None = Field(
        default=500,
        ge=1,
        description="Earlier releases' held-out pairs the forgetting test ranks: at most "
        "this many, the same sample for both critics (chosen by a hash of each pair, so a "
        "champion ranked them already), so that each cycle costs the same however long "
        "the history; None: all of them. At 500 pairs the 95% interval of the paired loss "
        "is about ±0.04 when a fifth of the pairs change outcome.",
    )
    confidence: float = Field(
        default=0.95, ge=0.5, lt=1.0, description="Level of the gate's intervals."
    )


@dataclass(frozen=True)
class GateDecision:
    """The gate's verdict on a challenger: whether it passed, why in one sentence, the
    reasons it failed, and each test's numbers. Stored on the critic version as
    :meth:`record`."""

    passed: bool
    why: str
    reasons: tuple[str, ...] = ()
    checks: dict[str, Any] = field(default_factory=dict)
    mode: str = "auto"

    def waiting_for_a_person(self) -> GateDecision:
        """The same verdict, saying that in manual mode a person promotes it."""
        return replace(self, why=f"{self.why}; manual mode: waiting for `eliq-daemon promote`")

    def record(self) -> dict[str, Any]:
        return {**asdict(self), "reasons": list(self.reasons)}


def gate_decision(
    evaluations: Sequence[EvaluationRecord], settings: GateSettings, first: bool = False
) -> GateDecision:
    """The verdict from the challenger's and baseline's evaluations (roles
    ``challenger``/``baseline``, scopes ``new``/``earlier``, each with its per-pair
    ``outcomes``); ``first``: no champion to gain over."""
    by_key = {(e.role, e.scope): e for e in evaluations}
    reasons: list[str] = []
    passes: list[str] = []
    checks: dict[str, Any] = {}
    challenger_new = _outcomes(by_key.get(("challenger", "new")))
    if not challenger_new:
        reasons.append("no held-out pairs of the new release to judge it on")
    elif len(challenger_new) < settings.min_pairs:
        reasons.append(
            f"too few held-out pairs of the new release to decide "
            f"({len(challenger_new)} < {settings.min_pairs})"
        )
    else:
        accuracy = proportion(
            sum(challenger_new.values()), len(challenger_new), settings.confidence
        )
        checks["accuracy_on_new"] = accuracy.to_json()
        said = (
            f"held-out accuracy on the new release {accuracy.estimate:.3f} "
            f"[{accuracy.low:.3f}, {accuracy.high:.3f}] (n={accuracy.n})"
        )
        if accuracy.low < settings.min_accuracy:
            reasons.append(f"{said} is not above the floor {settings.min_accuracy} with confidence")
        else:
            passes.append(f"{said} clears the floor {settings.min_accuracy}")
    gain = _paired(by_key, "new", settings.confidence)
    if gain is not None:
        checks["gain_on_new"] = gain
        said = _words(gain)
        if first:
            if gain["high"] < -settings.forgetting_margin:
                reasons.append(
                    f"worse than its starting critic on the new release: {said}, beyond "
                    f"-{settings.forgetting_margin}"
                )
        elif gain["difference"] < settings.min_gain:
            reasons.append(
                f"gain over the champion on the new release {said} "
                f"(McNemar p={gain['mcnemar_p']:.3g}) < {settings.min_gain:+}"
            )
        else:
            passes.append(f"gain over the champion {said}")
    elif not first and challenger_new:
        reasons.append("the champion has no held-out outcomes on the new release to compare")
    forgetting = _paired(by_key, "earlier", settings.confidence)
    if forgetting is not None:
        checks["forgetting"] = forgetting
        said = _words(forgetting)
        if forgetting["high"] < -settings.forgetting_margin:
            reasons.append(
                f"forgets earlier releases: {said}, all beyond -{settings.forgetting_margin}"
            )
        else:
            passes.append(f"earlier releases {said}, within -{settings.forgetting_margin}")
    passed = not reasons
    return GateDecision(
        passed=passed,
        why=("passed: " if passed else "held: ") + "; ".join(reasons or passes),
        reasons=tuple(reasons),
        checks=checks,
        mode=settings.mode,
    )


def _words(paired: dict[str, Any]) -> str:
    """``+0.100 [+0.063, +0.140]``: a stored paired difference as :class:`Interval` says it."""
    return str(Interval(paired["difference"], paired["low"], paired["high"], paired["pairs"]))


def _outcomes(record: EvaluationRecord | None) -> dict[str, bool]:
    return dict(record.outcomes or {}) if record is not None else {}


def _paired(
    by_key: dict[tuple[str, str], EvaluationRecord], scope: str, confidence: float
) -> dict[str, Any] | None:
    """Challenger minus baseline accuracy on the pairs both ranked in ``scope``."""
    challenger = _outcomes(by_key.get(("challenger", scope)))
    baseline = _outcomes(by_key.get(("baseline", scope)))
    shared = sorted(challenger.keys() & baseline.keys())
    if len(shared) < 2:
        return None
    a = np.array([baseline[k] for k in shared], dtype=float)
    b = np.array([challenger[k] for k in shared], dtype=float)
    interval = paired_mean_difference(a, b, confidence)
    return {
        "difference": interval.estimate,
        "low": interval.low,
        "high": interval.high,
        "pairs": len(shared),
        "challenger": float(b.mean()),
        "baseline": float(a.mean()),
        "mcnemar_p": mcnemar(a.astype(bool), b.astype(bool)),
    }
