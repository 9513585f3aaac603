"""A prompt as a record: its text plus typed slots that point into it.

Every slot is a character span of ``text`` with a kind (the object of an entity, its count,
colour, material or size; a spatial relation between two entities; the style). Alignment
negatives edit one slot precisely by replacing its span, so the rest of the text stays
byte-identical. A record is validated on construction: spans lie inside the text, hold the
value they claim and do not overlap, and every entity has exactly one object slot.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Literal

from pydantic import BaseModel, ConfigDict, model_validator

SlotKind = Literal["object", "count", "colour", "material", "size", "relation", "style"]
ATTRIBUTE_KINDS: tuple[SlotKind, ...] = ("colour", "material", "size")
ENTITY_KINDS: tuple[SlotKind, ...] = ("object", "count", *ATTRIBUTE_KINDS)


def require_text(text: str, what: str = "prompt") -> str:
    """``text`` if it is valid Unicode text; a lone surrogate (which JSON's ``\\ud800`` can
    smuggle in) is a ValueError saying where, not a tokenizer's TypeError deep inside."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as error:
        raise ValueError(
            f"{what} is not valid text: {error.reason} at position {error.start}"
        ) from None
    return text


def prompt_or_none(prompt: object, where: str = "prompt") -> str | None:
    """What a prompt is, decided in one place: text, stripped; None for no prompt (None, a
    blank string, a missing value of a table: NaN). Anything else is refused, naming
    ``where``."""
    if prompt is None or (isinstance(prompt, float) and math.isnan(prompt)):
        return None
    if not isinstance(prompt, str):
        raise TypeError(f"{where} is a {type(prompt).__name__}, not text")
    require_text(prompt, where)
    return prompt.strip() or None


CATEGORIES: dict[str, str] = {
    "indoor": "indoor scenes",
    "urban": "urban scenes",
    "natural": "natural scenes",
    "people": "people & activities",
    "objects": "objects & artifacts",
    "food": "food",
    "events": "events",
}


class Slot(BaseModel):
    """One editable part of a prompt: ``text[start:end] == value``."""

    model_config = ConfigDict(frozen=True)

    kind: SlotKind
    start: int
    end: int
    value: str
    entity: int | None = None
    """The entity an object, count or attribute slot belongs to."""
    subject: int | None = None
    """For a relation: the entity it starts from (``subject`` is ``predicate`` ``object``)."""
    object: int | None = None

    def shifted(self, offset: int) -> Slot:
        return self.model_copy(update={"start": self.start + offset, "end": self.end + offset})


class PromptRecord(BaseModel):
    """A text-to-image prompt with its subjects, attributes, counts, relations and style."""

    model_config = ConfigDict(frozen=True)

    id: str
    text: str
    category: str | None = None
    slots: tuple[Slot, ...] = ()

    @model_validator(mode="after")
    def _check_slots(self) -> PromptRecord:
        previous_end = 0
        for slot in sorted(self.slots, key=lambda s: s.start):
            if not 0 <= slot.start < slot.end <= len(self.text):
                raise ValueError(f"{self.id}: slot {slot.kind} span outside the text")
            if self.text[slot.start : slot.end] != slot.value:
                raise ValueError(
                    f"{self.id}: slot {slot.kind} claims {slot.value!r} but the text holds "
                    f"{self.text[slot.start : slot.end]!r}"
                )
            if slot.start < previous_end:
                raise ValueError(f"{self.id}: slot {slot.kind} {slot.value!r} overlaps another")
            previous_end = slot.end
            if slot.kind in ENTITY_KINDS and slot.entity is None:
                raise ValueError(f"{self.id}: {slot.kind} slot {slot.value!r} has no entity")
            if slot.kind == "relation" and (slot.subject is None or slot.object is None):
                raise ValueError(f"{self.id}: relation {slot.value!r} lacks subject or object")
        entities = self.entities()
        for index in entities:
            objects = [s for s in self.slots if s.entity == index and s.kind == "object"]
            if len(objects) != 1:
                raise ValueError(f"{self.id}: entity {index} has {len(objects)} object slots")
        for slot in self.slots:
            if slot.kind == "relation" and not {slot.subject, slot.object} <= set(entities):
                raise ValueError(f"{self.id}: relation {slot.value!r} names a missing entity")
        return self

    def entities(self) -> list[int]:
        return sorted({s.entity for s in self.slots if s.entity is not None})

    def entity_slots(self, entity: int) -> list[Slot]:
        return sorted((s for s in self.slots if s.entity == entity), key=lambda s: s.start)

    def of_kind(self, *kinds: SlotKind) -> Iterator[Slot]:
        return (s for s in self.slots if s.kind in kinds)

    @property
    def subjects(self) -> list[str]:
        """The object nouns, in entity order."""
        return [s.value for s in sorted(self.of_kind("object"), key=lambda s: s.entity or 0)]

    @property
    def style(self) -> str | None:
        return next((s.value for s in self.of_kind("style")), None)
