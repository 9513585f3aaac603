"""Scoring files in bulk: a folder or a manifest in, one JSON line per image out.

A bad image never stops the run: its line carries ``"error"`` instead of scores.
"""

from __future__ import annotations

import contextlib
import csv
import json
import math
import sys
from collections.abc import Iterator
from dataclasses import asdict
from pathlib import Path

import torch
from tqdm.auto import tqdm

from eliq.critic.critic import Critic
from eliq.csv_cells import guard
from eliq.devices import one_image_at_a_time
from eliq.loading import default_workers, load_inputs
from eliq.pairs.positives import IMAGE_SUFFIXES, positives_in_folder, read_positives


def read_inputs(source: Path) -> list[tuple[Path, str | None]]:
    """(image, prompt) items from a folder (no prompts), one image file, or a CSV/JSONL
    manifest."""
    source = Path(source)
    if source.is_file() and source.suffix.lower() in IMAGE_SUFFIXES:
        return [(source, None)]
    positives = positives_in_folder(source) if source.is_dir() else read_positives(source)
    return [(p.image, p.prompt) for p in positives]


def score_items(
    critic: Critic,
    items: list[tuple[Path, str | None]],
    batch_size: int = 16,
    workers: int | None = None,
    progress: bool = True,
) -> Iterator[dict]:
    """One record per item, in order: scores (raw and, where the checkpoint has a scale,
    0-100) and the critic version, or the reason the image could not be read.
    Images are decoded (and, where :func:`~eliq.devices.one_image_at_a_time`, cut into
    views) by ``workers`` processes (see :mod:`eliq.loading`) while the critic scores; the
    progress bar shows images/s."""
    workers = default_workers() if workers is None else workers
    in_workers = one_image_at_a_time(critic.device) and workers > 0
    views = (critic.config.view_size, critic.config.crops) if in_workers else None
    paths = [path for path, _ in items]
    with tqdm(total=len(items), desc="scoring", unit="image", disable=not progress) as bar:
        for batch in load_inputs(paths, batch_size, views, workers):
            good = [loaded for loaded in batch if loaded.error is None]
            scores = {}
            if good:
                tensors = [g.tensor for g in good]
                prompts = [items[g.index][1] for g in good]
                scored = (
                    critic.score_views(torch.stack(tensors), prompts)
                    if in_workers
                    else critic.score(tensors, prompts, batch_size=len(tensors))
                )
                scores = {g.index: score for g, score in zip(good, scored, strict=True)}
            for loaded in batch:
                path, prompt = items[loaded.index]
                record = {"image": str(path), "prompt": prompt, "critic_version": critic.version}
                if loaded.index in scores:
                    record |= asdict(scores[loaded.index])
                else:
                    record["error"] = loaded.error
                yield record
            bar.update(len(batch))


RECORD_COLUMNS = [
    "image",
    "prompt",
    "critic_version",
    "quality",
    "alignment",
    "quality_scaled",
    "alignment_scaled",
    "error",
]


def write_records(records: Iterator[dict], out: Path | str) -> tuple[int, int]:
    """Write records as they come, as JSON Lines, or as CSV when ``out`` ends in ``.csv``;
    ``-`` writes JSON Lines to stdout. Non-finite numbers are written as null (JSON has no
    NaN). Returns (scored, failed)."""
    scored = failed = 0
    to_stdout = str(out) == "-"
    if not to_stdout:
        Path(out).parent.mkdir(parents=True, exist_ok=True)
    as_csv = not to_stdout and Path(out).suffix.lower() == ".csv"
    with contextlib.ExitStack() as stack:
        file = (
            sys.stdout
            if to_stdout
            else stack.enter_context(Path(out).open("w", encoding="utf-8", newline=""))
        )
        writer = csv.DictWriter(file, RECORD_COLUMNS) if as_csv else None
        if writer is not None:
            writer.writeheader()
        for record in records:
            record = {k: _finite_or_none(v) for k, v in record.items()}
            if writer is not None:
                writer.writerow({k: guard(v) for k, v in record.items()})
            else:
                file.write(json.dumps(record, allow_nan=False) + "\n")
            if to_stdout:
                file.flush()
            if "error" in record:
                failed += 1
            else:
                scored += 1
    return scored, failed


def _finite_or_none(value):
    return None if isinstance(value, float) and not math.isfinite(value) else value
