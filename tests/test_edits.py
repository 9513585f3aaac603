"""Alignment edits change exactly the slots they claim, on every prompt of the suite."""

import numpy as np
import pytest

from eliq.prompts.edits import SLOT_EDIT_FAMILIES, edit_prompt
from eliq.prompts.lexicon import RELATION_CONTRASTS, count_of, singular


def skeleton(record):
    """The text with every slot span blanked: what no edit may touch."""
    out, last = [], 0
    for slot in sorted(record.slots, key=lambda s: s.start):
        out.append(record.text[last : slot.start])
        out.append("{}")
        last = slot.end
    return "".join(out) + record.text[last:]


def identity(slot):
    return (slot.kind, slot.entity, slot.subject, slot.object)


@pytest.mark.parametrize("family", [f for f in SLOT_EDIT_FAMILIES if f != "drop_concept"])
def test_replacing_edits_touch_only_their_slots(family, suite):
    rng = np.random.default_rng(0)
    applied = 0
    for record in suite:
        for severity in (1, 2, 3):
            edit = edit_prompt(family, record, severity, rng, donors=suite)
            if edit is None:
                continue
            applied += 1
            new = edit.record
            assert skeleton(new) == skeleton(record), (record.text, new.text)
            assert len(edit.changed) == severity
            before = {identity(s): s for s in record.slots}
            after = {identity(s): s for s in new.slots}
            assert before.keys() == after.keys()
            claimed = {identity(s) for s in edit.changed}
            edited_entities = {s.entity for s in edit.changed}
            for key, old in before.items():
                new_slot = after[key]
                if key in claimed:
                    if family == "change_count":
                        assert count_of(new_slot.value) != count_of(old.value)
                    else:
                        assert new_slot.value.lower() != old.value.lower()
                    if family == "change_relation":
                        assert new_slot.value in RELATION_CONTRASTS[old.value.lower()]
                elif old.kind == "count" and old.entity in edited_entities:
                    # the article may change to agree ("a red" -> "an orange") but not the count
                    assert count_of(new_slot.value) == count_of(old.value)
                elif old.kind == "object" and family == "change_count":
                    assert singular(new_slot.value) == singular(old.value)  # re-inflected only
                else:
                    assert new_slot.value == old.value, (family, record.text, new.text)
    assert applied > 100, f"{family} applied to only {applied} prompts"


def test_drop_concept_names_concepts_the_image_lacks(suite):
    rng = np.random.default_rng(1)
    for record in suite[::7]:
        for severity in (1, 2, 3):
            edit = edit_prompt("drop_concept", record, severity, rng, donors=suite)
            assert edit is not None
            new = edit.record
            old_entities = set(record.entities())
            kept = [s for s in new.slots if s.entity in old_entities or s.entity is None]
            assert [(s.kind, s.value) for s in kept] == [(s.kind, s.value) for s in record.slots]
            added = [s for s in new.slots if s.entity not in old_entities and s.entity is not None]
            added_objects = [singular(s.value) for s in added if s.kind == "object"]
            assert len(added_objects) == severity
            assert not set(added_objects) & {singular(o) for o in record.subjects}
            assert {s.entity for s in edit.changed} == {s.entity for s in added}


def test_edits_are_deterministic_and_nested_across_severities(suite):
    record = suite[0]
    first = edit_prompt("change_attribute", record, 1, np.random.default_rng(5))
    again = edit_prompt("change_attribute", record, 1, np.random.default_rng(5))
    second = edit_prompt("change_attribute", record, 2, np.random.default_rng(5))
    assert first.record == again.record
    nested = {(s.kind, s.entity, s.value) for s in second.changed}
    assert (first.changed[0].kind, first.changed[0].entity, first.changed[0].value) in nested


def test_articles_follow_the_edited_word(suite, parser):
    record = parser.parse("a red apple on a table")
    for seed in range(40):
        text = edit_prompt("change_attribute", record, 1, np.random.default_rng(seed)).record.text
        first = text.split()[1]
        assert text.startswith("an " if first[0] in "aeiou" else "a "), text
