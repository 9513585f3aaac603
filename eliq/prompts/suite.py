"""The prompt suite: the fixed prompts every generator release is sampled on.

A suite file is JSON Lines, one record per line: ``text`` is required; ``id``, ``category``
and ``slots`` (see :mod:`eliq.prompts.record`) are optional. A line without slots is parsed
with spaCy, so a user can extend the suite with plain prompts. The bundled suite holds 421
hand-written prompts over seven categories, every slot marked.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from importlib import resources
from pathlib import Path

from pydantic import ValidationError

from eliq.prompts.parser import PromptParser, prompt_key
from eliq.prompts.record import PromptRecord


def bundled_suite_path() -> Path:
    return Path(str(resources.files("eliq.prompts") / "data" / "suite.jsonl"))


def load_suite(
    paths: Path | Iterable[Path] | None = None, parser: PromptParser | None = None
) -> list[PromptRecord]:
    """Records from one or more suite files (the bundled suite by default), in file order.

    Ids must be unique across all files; a malformed line raises ``ValueError`` naming
    the file and line.
    """
    if paths is None:
        paths = [bundled_suite_path()]
    elif isinstance(paths, Path):
        paths = [paths]
    records: list[PromptRecord] = []
    unparsed: list[tuple[str, str, str | None]] = []
    for path in paths:
        for number, line in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), 1):
            if not line.strip():
                continue
            where = f"{path}:{number}"
            try:
                raw = json.loads(line)
                if "slots" in raw:
                    raw.setdefault("id", prompt_key(raw["text"]))
                    records.append(PromptRecord.model_validate(raw))
                else:
                    text = raw["text"]
                    unparsed.append((raw.get("id") or prompt_key(text), text, raw.get("category")))
            except (json.JSONDecodeError, KeyError, TypeError, ValidationError) as exc:
                raise ValueError(f"{where}: not a valid prompt record ({exc})") from exc
    if unparsed:
        parser = parser or PromptParser()
        ids, texts, categories = zip(*unparsed, strict=True)
        records.extend(parser.parse_many(texts, ids, categories))
    duplicates = _duplicates(r.id for r in records)
    if duplicates:
        raise ValueError(f"duplicate prompt ids in the suite: {sorted(duplicates)[:5]}")
    return records


def _duplicates(ids: Iterable[str]) -> set[str]:
    seen: set[str] = set()
    repeated: set[str] = set()
    for prompt_id in ids:
        (repeated if prompt_id in seen else seen).add(prompt_id)
    return repeated
