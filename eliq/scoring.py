"""Scoring files in bulk: a folder or a manifest in, one JSON line per image out.

A bad image never stops the run: its line carries ``"error"`` instead of scores.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from eliq.critic.critic import Critic
from eliq.imageio import ImageLoadError, load_image
from eliq.pairs.positives import positives_in_folder, read_positives


def read_inputs(source: Path) -> list[tuple[Path, str | None]]:
    """(image, prompt) items from a folder (no prompts) or a CSV/JSONL manifest."""
    source = Path(source)
    positives = positives_in_folder(source) if source.is_dir() else read_positives(source)
    return [(p.image, p.prompt) for p in positives]


def score_items(
    critic: Critic, items: list[tuple[Path, str | None]], batch_size: int = 16
) -> Iterator[dict]:
    """One record per item, in order: scores, or the reason the image could not be read."""
    with ThreadPoolExecutor(4) as pool:
        for start in range(0, len(items), batch_size):
            chunk = items[start : start + batch_size]
            loaded = list(pool.map(_try_load, [path for path, _ in chunk]))
            good = [i for i, image in enumerate(loaded) if not isinstance(image, ImageLoadError)]
            scores = critic.score(
                [loaded[i] for i in good], [chunk[i][1] for i in good], batch_size
            )
            by_index = dict(zip(good, scores, strict=True))
            for index, (path, prompt) in enumerate(chunk):
                record = {"image": str(path), "prompt": prompt}
                if index in by_index:
                    record |= {
                        "quality": by_index[index].quality,
                        "alignment": by_index[index].alignment,
                    }
                else:
                    record["error"] = loaded[index].reason
                yield record


def _try_load(path: Path):
    try:
        return load_image(path)
    except ImageLoadError as error:
        return error


def write_jsonl(records: Iterator[dict], out: Path) -> tuple[int, int]:
    """Write records as they come; returns (scored, failed)."""
    scored = failed = 0
    out.parent.mkdir(parents=True, exist_ok=True)
    with out.open("w", encoding="utf-8") as f:
        for record in records:
            f.write(json.dumps(record) + "\n")
            if "error" in record:
                failed += 1
            else:
                scored += 1
    return scored, failed
