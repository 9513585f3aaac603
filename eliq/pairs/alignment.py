"""Alignment negatives: the image is kept and the prompt no longer describes it.

Slot edits change one kind of slot (see :mod:`eliq.prompts.edits`; severity = slots
edited). Cross-prompt mismatches pair the image with another positive's prompt: severity 1
is a hard mismatch (same category, or a shared object), severity 2 an easy one.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import partial

import numpy as np

from eliq.pairs.families import NegativeFamily, PromptNegative, register
from eliq.prompts.edits import SLOT_EDIT_FAMILIES, edit_prompt
from eliq.prompts.lexicon import singular
from eliq.prompts.record import PromptRecord

SLOT_EDIT_DESCRIPTIONS = {
    "swap_object": "an object replaced by another of the same kind",
    "change_attribute": "a colour, material or size replaced",
    "change_count": "how many of an entity there are changed",
    "change_relation": "a spatial relation replaced by a contradicting one",
    "drop_concept": "the prompt names a concept the image lacks",
}


def _slot_edit(
    family: str,
    record: PromptRecord,
    severity: int,
    rng: np.random.Generator,
    donors: Sequence[PromptRecord],
) -> PromptNegative | None:
    edit = edit_prompt(family, record, severity, rng, donors)
    if edit is None:
        return None
    return PromptNegative(
        edit.record.text,
        {
            "slots": [s.kind for s in edit.changed],
            "before": list(edit.before),
            "after": [s.value for s in edit.changed],
        },
    )


def _objects(record: PromptRecord) -> set[str]:
    return {singular(s.value.lower()) for s in record.of_kind("object")}


def is_related(a: PromptRecord, b: PromptRecord) -> bool:
    """Same category when both have one, else at least one shared object."""
    if a.category and b.category:
        return a.category == b.category
    return bool(_objects(a) & _objects(b))


def cross_prompt(
    record: PromptRecord,
    severity: int,
    rng: np.random.Generator,
    donors: Sequence[PromptRecord],
) -> PromptNegative | None:
    """Another positive's prompt: related (hard) at severity 1, unrelated (easy) at 2."""
    others = [d for d in donors if d.text != record.text]
    want_related = severity == 1
    candidates = [d for d in others if is_related(record, d) == want_related]
    if not candidates:
        return None
    donor = candidates[rng.integers(len(candidates))]
    return PromptNegative(
        donor.text, {"donor": donor.id, "hardness": "hard" if want_related else "easy"}
    )


for _name in SLOT_EDIT_FAMILIES:
    register(
        NegativeFamily(
            _name,
            "alignment",
            "slot_edit",
            SLOT_EDIT_DESCRIPTIONS[_name],
            levels=3,
            edit=partial(_slot_edit, _name),
            requires=("prompt",),
        )
    )
register(
    NegativeFamily(
        "cross_prompt",
        "alignment",
        "cross_prompt",
        "another positive's prompt, related (hard) or unrelated (easy)",
        levels=2,
        edit=cross_prompt,
        requires=("prompt",),
    )
)
