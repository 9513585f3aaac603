"""Slot edits: change one part of a prompt and leave every other character as it was.

Each edit family yields a prompt that an image rendered from the original no longer matches:

* ``swap_object`` replaces an object with another of the same kind (cat -> fox);
* ``change_attribute`` replaces a colour, material or size with one from another group;
* ``change_count`` changes how many of an entity there are, re-inflecting its noun;
* ``change_relation`` replaces a spatial predicate with one that contradicts it;
* ``drop_concept`` names a concept the image lacks: a generator that drops part of a prompt
  makes exactly this error, and since the image is kept, the edit adds the concept to the text.

``severity`` is the number of slots edited, so severity 2 is at least as wrong as severity 1.
The only text that changes besides the claimed slots is an indefinite article ("a" -> "an")
that must agree with the word after it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from eliq.prompts.lexicon import (
    ATTRIBUTE_GROUPS,
    ATTRIBUTE_INDEX,
    OBJECT_GROUP,
    OBJECT_GROUPS,
    RELATION_CONTRASTS,
    count_of,
    count_phrase,
    is_plural,
    plural,
    singular,
)
from eliq.prompts.record import ATTRIBUTE_KINDS, PromptRecord, Slot

SLOT_EDIT_FAMILIES = (
    "swap_object",
    "change_attribute",
    "change_count",
    "change_relation",
    "drop_concept",
)


@dataclass(frozen=True)
class PromptEdit:
    """An edited prompt and the slots (of the edited record) the edit changed or added."""

    family: str
    record: PromptRecord
    changed: tuple[Slot, ...]
    before: tuple[str, ...]


def edit_prompt(
    family: str,
    record: PromptRecord,
    severity: int,
    rng: np.random.Generator,
    donors: Sequence[PromptRecord] = (),
) -> PromptEdit | None:
    """Apply ``family`` to ``severity`` distinct slots; None if the prompt has too few."""
    step = _STEPS[family]
    current, changed_keys, before = record, [], []
    for _ in range(severity):
        result = step(current, rng, changed_keys, donors)
        if result is None:
            return None
        current, key, old = result
        changed_keys.append(key)
        before.append(old)
    changed = tuple(s for s in current.slots if _key(s) in changed_keys)
    return PromptEdit(family, current, changed, tuple(before))


# --- one step of each family: (record, rng, keys already edited, donors) -> result ---------

_Step = tuple[PromptRecord, tuple, str]


def _swap_object(record, rng, done, donors) -> _Step | None:
    present = {singular(s.value.lower()) for s in record.of_kind("object")}
    candidates = [s for s in record.of_kind("object") if _key(s) not in done]
    if not candidates:
        return None
    slot = candidates[rng.integers(len(candidates))]
    group = OBJECT_GROUP.get(singular(slot.value.lower()))
    if group is None:
        group = sorted(OBJECT_GROUPS)[rng.integers(len(OBJECT_GROUPS))]
    choices = [n for n in OBJECT_GROUPS[group] if n not in present]
    noun = choices[rng.integers(len(choices))]
    new = plural(noun) if is_plural(slot.value) else noun
    edited = _fix_article(_replace(record, slot, new), slot.entity)
    return edited, _key(slot), slot.value


def _change_attribute(record, rng, done, donors) -> _Step | None:
    candidates = [s for s in record.of_kind(*ATTRIBUTE_KINDS) if _key(s) not in done]
    if not candidates:
        return None
    slot = candidates[rng.integers(len(candidates))]
    groups = ATTRIBUTE_GROUPS[slot.kind]
    own = ATTRIBUTE_INDEX[slot.kind].get(slot.value.lower())
    others = [g for i, g in enumerate(groups) if i != own]
    group = others[rng.integers(len(others))]
    edited = _replace(record, slot, group[rng.integers(len(group))])
    return _fix_article(edited, slot.entity), _key(slot), slot.value


def _change_count(record, rng, done, donors) -> _Step | None:
    candidates = [s for s in record.of_kind("count") if _key(s) not in done and count_of(s.value)]
    if not candidates:
        return None
    slot = candidates[rng.integers(len(candidates))]
    old = count_of(slot.value)
    options = [n for n in range(1, 6) if n != old]
    count = options[rng.integers(len(options))]
    obj = next(s for s in record.entity_slots(slot.entity) if s.kind == "object")
    noun = singular(obj.value) if count == 1 else plural(obj.value)
    edited = _replace(record, obj, noun) if noun != obj.value else record
    slot = _find(edited, _key(slot))
    next_word = edited.text[slot.end :].split()[0] if edited.text[slot.end :].split() else noun
    phrase = count_phrase(count, next_word)
    return _replace(edited, slot, _match_case(phrase, slot.value)), _key(slot), slot.value


def _change_relation(record, rng, done, donors) -> _Step | None:
    candidates = [
        s
        for s in record.of_kind("relation")
        if _key(s) not in done and s.value.lower() in RELATION_CONTRASTS
    ]
    if not candidates:
        return None
    slot = candidates[rng.integers(len(candidates))]
    contrasts = RELATION_CONTRASTS[slot.value.lower()]
    new = contrasts[rng.integers(len(contrasts))]
    return _replace(record, slot, new), _key(slot), slot.value


def _drop_concept(record, rng, done, donors) -> _Step | None:
    present = {singular(s.value.lower()) for s in record.of_kind("object")}
    concept = _foreign_concept(present, donors, rng)
    if concept is None:
        return None
    donor, entity = concept
    donor_slots = donor.entity_slots(entity)
    phrase_start = donor_slots[0].start
    phrase = donor.text[phrase_start : donor_slots[-1].end]
    entities = record.entities()
    new_entity = (max(entities) + 1) if entities else 0
    if entities:
        anchor = max((s.end for s in record.of_kind("object")), default=len(record.text))
        joiner = " and "
    else:
        anchor, joiner = len(record.text), ", with "
    insert_at = anchor + len(joiner)
    added = tuple(
        s.model_copy(
            update={
                "start": s.start - phrase_start + insert_at,
                "end": s.end - phrase_start + insert_at,
                "entity": new_entity,
            }
        )
        for s in donor_slots
    )
    text = record.text[:anchor] + joiner + phrase + record.text[anchor:]
    shift = len(joiner) + len(phrase)
    kept = tuple(s.shifted(shift) if s.start >= anchor else s for s in record.slots)
    edited = record.model_copy(update={"text": text, "slots": kept + added})
    return PromptRecord.model_validate(edited.model_dump()), ("object", new_entity), ""


def _foreign_concept(
    present: set[str], donors: Sequence[PromptRecord], rng: np.random.Generator
) -> tuple[PromptRecord, int] | None:
    """A random (donor, entity) whose object the prompt does not already name."""
    for index in rng.permutation(len(donors)):
        donor = donors[index]
        entities = [
            e
            for e in donor.entities()
            if singular(_object_of(donor, e).value.lower()) not in present
        ]
        if entities:
            return donor, entities[rng.integers(len(entities))]
    return None


_STEPS: dict[str, Callable[..., _Step | None]] = {
    "swap_object": _swap_object,
    "change_attribute": _change_attribute,
    "change_count": _change_count,
    "change_relation": _change_relation,
    "drop_concept": _drop_concept,
}


# --- span surgery --------------------------------------------------------------------------


def _key(slot: Slot) -> tuple:
    if slot.kind == "relation":
        return ("relation", slot.subject, slot.object)
    return (slot.kind, slot.entity)


def _find(record: PromptRecord, key: tuple) -> Slot:
    return next(s for s in record.slots if _key(s) == key)


def _object_of(record: PromptRecord, entity: int) -> Slot:
    return next(s for s in record.entity_slots(entity) if s.kind == "object")


def _replace(record: PromptRecord, slot: Slot, value: str) -> PromptRecord:
    """``record`` with ``slot``'s span replaced by ``value``; later spans shift."""
    shift = len(value) - len(slot.value)
    text = record.text[: slot.start] + value + record.text[slot.end :]
    slots = []
    for s in record.slots:
        if s == slot:
            s = s.model_copy(update={"value": value, "end": s.end + shift})
        elif s.start >= slot.end:
            s = s.shifted(shift)
        slots.append(s)
    return PromptRecord(id=record.id, text=text, category=record.category, slots=tuple(slots))


def _fix_article(record: PromptRecord, entity: int | None) -> PromptRecord:
    """Make an entity's 'a'/'an' agree with the word that now follows it."""
    count = next((s for s in record.entity_slots(entity) if s.kind == "count"), None)
    if count is None or count.value.lower() not in {"a", "an"}:
        return record
    following = record.text[count.end :].split()
    if not following:
        return record
    article = _match_case(count_phrase(1, following[0]), count.value)
    return _replace(record, count, article) if article != count.value else record


def _match_case(word: str, like: str) -> str:
    return word[:1].upper() + word[1:] if like[:1].isupper() else word
