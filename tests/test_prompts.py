import json
from collections import Counter

import pytest

from eliq.prompts import CATEGORIES, PromptRecord, Slot, load_suite


def test_bundled_suite_is_large_structured_and_covers_every_category(suite):
    assert len(suite) >= 400
    per_category = Counter(r.category for r in suite)
    assert set(per_category) == set(CATEGORIES)
    assert min(per_category.values()) >= 50
    assert len({r.text for r in suite}) == len(suite), "prompts repeat"
    kinds = Counter(s.kind for r in suite for s in r.slots)
    for kind in ("object", "count", "colour", "material", "size", "relation", "style"):
        assert kinds[kind] >= 20, f"too few {kind} slots"
    assert all(r.subjects for r in suite), "every prompt names at least one subject"


def test_records_refuse_spans_that_do_not_hold_their_value():
    with pytest.raises(ValueError, match="claims"):
        PromptRecord(
            id="x",
            text="a red car",
            slots=(Slot(kind="colour", start=0, end=3, value="red", entity=0),),
        )
    with pytest.raises(ValueError, match="object slots"):
        PromptRecord(
            id="x",
            text="a red car",
            slots=(Slot(kind="colour", start=2, end=5, value="red", entity=0),),
        )


def test_parser_finds_counts_attributes_relations_and_style(parser):
    record = parser.parse("two small red apples to the left of a wooden bowl, oil painting")
    slots = {(s.kind, s.value) for s in record.slots}
    assert {
        ("count", "two"),
        ("size", "small"),
        ("colour", "red"),
        ("object", "apples"),
        ("relation", "to the left of"),
        ("count", "a"),
        ("material", "wooden"),
        ("object", "bowl"),
        ("style", "oil painting"),
    } <= slots
    relation = next(record.of_kind("relation"))
    assert record.subjects[relation.subject] == "apples"
    assert record.subjects[relation.object] == "bowl"


def test_parser_handles_agiqa_style_prompts(parser):
    record = parser.parse(
        "a portrait of girl alchemist in blue dress, blurred detail, sci-fi style"
    )
    assert record.style == "sci-fi style"
    assert ("colour", "blue") in {(s.kind, s.value) for s in record.slots}
    assert "dress" in record.subjects


def test_parser_does_not_take_particles_for_relations(parser):
    record = parser.parse("the lamp turned on in an empty room")
    assert [s.value for s in record.of_kind("relation")] == ["in"]


def test_user_suite_mixes_marked_and_plain_lines(tmp_path, parser):
    path = tmp_path / "mine.jsonl"
    marked = {
        "id": "m1",
        "text": "a blue car",
        "category": "urban",
        "slots": [
            {"kind": "count", "start": 0, "end": 1, "value": "a", "entity": 0},
            {"kind": "colour", "start": 2, "end": 6, "value": "blue", "entity": 0},
            {"kind": "object", "start": 7, "end": 10, "value": "car", "entity": 0},
        ],
    }
    plain = {"text": "three green bottles on a shelf", "category": "objects"}
    path.write_text(json.dumps(marked) + "\n\n" + json.dumps(plain) + "\n")
    records = load_suite(path, parser=parser)
    assert [r.id for r in records][0] == "m1"
    assert records[1].category == "objects"
    assert ("count", "three") in {(s.kind, s.value) for s in records[1].slots}


def test_malformed_suite_lines_name_file_and_line(tmp_path):
    path = tmp_path / "bad.jsonl"
    path.write_text('{"text": "a cat"}\n{not json\n')
    with pytest.raises(ValueError, match=r"bad.jsonl:2"):
        load_suite(path)
    path.write_text(
        json.dumps(
            {
                "id": "a",
                "text": "a cat",
                "slots": [{"kind": "object", "start": 0, "end": 3, "value": "dog", "entity": 0}],
            }
        )
        + "\n"
    )
    with pytest.raises(ValueError, match=r"bad.jsonl:1"):
        load_suite(path)


def test_duplicate_ids_are_refused(tmp_path, parser):
    path = tmp_path / "dup.jsonl"
    path.write_text('{"id": "x", "text": "a cat"}\n{"id": "x", "text": "a dog"}\n')
    with pytest.raises(ValueError, match="duplicate"):
        load_suite(path, parser=parser)


def test_parser_never_fails_on_real_or_odd_prompts(parser):
    """Every AGIQA-3K prompt (text only) and some hostile strings parse to a valid record."""
    import csv

    from tests.conftest import SHARED

    with (SHARED / "datasets" / "agiqa3k" / "scores.csv").open() as f:
        prompts = sorted({row["prompt"] for row in csv.DictReader(f)})
    odd = [
        "",
        "   ",
        ",,,",
        "🙂 a cat 🙂",
        "12 34",
        "a" * 2000,
        "the the the on on on",
        "red red red",
        "a photo, photo, photo style",
    ]
    records = parser.parse_many(prompts + odd)
    assert len(records) == len(prompts) + len(odd)
    assert sum(1 for r in records if r.subjects) > 0.9 * len(prompts)
