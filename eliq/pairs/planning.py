"""Which negatives a positive gets: pure planning, no image touched.

Families are taken in turn from the technical, aesthetic and alignment aspects (alignment
only when the positive has a prompt); each chosen family gets a ladder of distinct
severities. Every random choice is seeded from the build seed, the positive and the family,
never from the batch, so a plan is the same whatever order, batch size or device runs it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from eliq.config import PairSettings
from eliq.pairs.families import NegativeFamily, available_families
from eliq.pairs.positives import Positive
from eliq.prompts.record import PromptRecord
from eliq.seeding import derive_seed, numpy_rng

ASPECT_ORDER = ("technical", "aesthetic", "alignment")


@dataclass(frozen=True)
class PlannedNegative:
    """One negative to make: which family, how severe, and (for alignment) its prompt."""

    positive: Positive
    family: NegativeFamily
    severity: int
    seed: int
    negative_prompt: str | None = None
    detail: dict | None = None

    @property
    def pair_id(self) -> str:
        return f"{positive_digest(self.positive.key)}-{self.family.name}-{self.severity}"


def plan_negatives(
    settings: PairSettings,
    families: dict[str, NegativeFamily],
    positive: Positive,
    record: PromptRecord | None,
    donors: Sequence[PromptRecord],
) -> list[PlannedNegative]:
    """The negatives of one positive, drawn deterministically from the build seed."""
    seed = settings.seed
    rng = numpy_rng(seed, positive.key, "plan")
    carried = {"prompt": record is not None, "seed": positive.seed is not None}
    pools = {
        aspect: [
            f
            for f in families.values()
            if f.aspect == aspect and all(carried[need] for need in f.requires)
        ]
        for aspect in ASPECT_ORDER
    }
    pools = {aspect: pool for aspect, pool in pools.items() if pool}
    aspects = list(pools)
    if not aspects:
        return []
    start = int(rng.integers(len(aspects)))
    planned: list[PlannedNegative] = []
    turn = 0
    while len(planned) < settings.per_positive and any(pools.values()):
        aspect = aspects[(start + turn) % len(aspects)]
        turn += 1
        pool = pools[aspect]
        while pool:  # an edit can fail on a prompt without the slot it needs
            family = pool.pop(int(rng.integers(len(pool))))
            wanted = min(settings.ladder, family.levels, settings.per_positive - len(planned))
            drawn = _ladder(settings, positive, record, donors, family, rng, wanted)
            if drawn:
                planned.extend(drawn)
                break
    return planned


def _ladder(
    settings: PairSettings,
    positive: Positive,
    record: PromptRecord | None,
    donors: Sequence[PromptRecord],
    family: NegativeFamily,
    rng,
    wanted: int,
) -> list[PlannedNegative]:
    """Up to ``wanted`` distinct severities of one family, sharing one seed so that a
    higher severity is the lower one made worse (same noise, same edited slot first)."""
    levels = sorted(int(v) + 1 for v in rng.choice(family.levels, wanted, replace=False))
    family_seed = derive_seed(settings.seed, positive.key, family.name)
    if family.edit is None:
        return [PlannedNegative(positive, family, level, family_seed) for level in levels]
    drawn = []
    for level in levels:
        edited = family.edit(record, level, numpy_rng(family_seed), donors)
        if edited is not None:
            drawn.append(
                PlannedNegative(positive, family, level, family_seed, edited.text, edited.detail)
            )
    return drawn


def select_families(
    names: Sequence[str] | None, extra: Sequence[NegativeFamily]
) -> dict[str, NegativeFamily]:
    families = {**available_families(), **{f.name: f for f in extra}}
    if names is None:
        return families
    unknown = sorted(set(names) - set(families))
    if unknown:
        raise KeyError(f"unknown negative families {unknown}; known: {', '.join(families)}")
    return {name: families[name] for name in names}


def positive_digest(key: str) -> str:
    """A short, stable file-name stem for a positive (its key may hold slashes)."""
    return f"{derive_seed(key) % 16**10:010x}"
