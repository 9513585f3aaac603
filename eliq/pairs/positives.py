"""Positives: (image, prompt) pairs read from a folder and a CSV or JSON Lines manifest.

Only three columns are ever read: the image, the prompt and an optional generation seed
(named ``image``, ``prompt`` and ``seed`` unless :class:`ManifestColumns` says otherwise).
A manifest that also carries human opinion scores (MOS) is accepted, but those columns are
never loaded, so nothing downstream can learn from them.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import pandas as pd


@dataclass(frozen=True)
class ManifestColumns:
    """Which manifest columns hold the image path, the prompt and the generation seed."""

    image: str = "image"
    prompt: str = "prompt"
    seed: str = "seed"

    def names(self) -> tuple[str, str, str]:
        return (self.image, self.prompt, self.seed)


@dataclass(frozen=True)
class Positive:
    """A generated image and the prompt it was made from (None for a plain photo)."""

    key: str
    image: Path
    prompt: str | None = None
    seed: int | None = None


IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".webp", ".bmp", ".gif", ".tif", ".tiff"})


def image_files(folder: Path) -> list[Path]:
    """Every image file below ``folder`` (by extension), in a stable order."""
    return sorted(p for p in Path(folder).rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)


def positives_in_folder(folder: Path) -> list[Positive]:
    """Photos without prompts: each image file of ``folder`` is a positive."""
    folder = Path(folder)
    return [Positive(key=str(p.relative_to(folder)), image=p) for p in image_files(folder)]


class ManifestError(ValueError):
    """A manifest that cannot be read; the message names the file and the problem."""


def read_positives(
    manifest: Path,
    images_dir: Path | None = None,
    columns: ManifestColumns = ManifestColumns(),
) -> list[Positive]:
    """Positives listed in ``manifest``; image paths are relative to ``images_dir``
    (default: the manifest's folder). Rows without an image are refused; duplicates too."""
    manifest = Path(manifest)
    images_dir = Path(images_dir) if images_dir is not None else manifest.parent
    table = _read_table(manifest, columns)
    if columns.image not in table.columns:
        raise ManifestError(
            f"{manifest}: no {columns.image!r} column among the columns eliq reads "
            f"({', '.join(columns.names())})"
        )
    table = table.rename(
        columns={columns.image: "image", columns.prompt: "prompt", columns.seed: "seed"}
    )
    positives: list[Positive] = []
    seen: set[str] = set()
    for row_number, row in enumerate(table.itertuples(index=False), start=2):
        image = getattr(row, "image", None)
        if not isinstance(image, str) or not image.strip():
            raise ManifestError(f"{manifest}: row {row_number} has no image")
        if image in seen:
            raise ManifestError(f"{manifest}: image {image!r} is listed twice")
        seen.add(image)
        prompt = getattr(row, "prompt", None)
        seed = getattr(row, "seed", None)
        positives.append(
            Positive(
                key=image,
                image=images_dir / image,
                prompt=prompt.strip() if isinstance(prompt, str) and prompt.strip() else None,
                seed=int(seed) if seed is not None and not pd.isna(seed) else None,
            )
        )
    return positives


def _read_table(manifest: Path, columns: ManifestColumns) -> pd.DataFrame:
    wanted = columns.names()
    if not manifest.is_file():
        raise ManifestError(f"{manifest}: no such manifest")
    suffix = manifest.suffix.lower()
    try:
        if suffix == ".csv":
            return pd.read_csv(
                manifest,
                usecols=lambda column: column in wanted,
                dtype={columns.image: str, columns.prompt: str},
                keep_default_na=False,
                na_values={columns.seed: [""]},
            )
        if suffix in {".jsonl", ".ndjson"}:
            return pd.DataFrame(_read_jsonl(manifest, wanted))
    except (pd.errors.ParserError, UnicodeDecodeError, ValueError) as exc:
        raise ManifestError(f"{manifest}: unreadable ({exc})") from exc
    raise ManifestError(f"{manifest}: manifests must be .csv or .jsonl")


def _read_jsonl(manifest: Path, wanted: tuple[str, ...]) -> list[dict]:
    rows = []
    for number, line in enumerate(manifest.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            raise ManifestError(f"{manifest}:{number}: not JSON ({exc.msg})") from exc
        if not isinstance(record, dict):
            raise ManifestError(f"{manifest}:{number}: not a JSON object")
        rows.append({column: record[column] for column in wanted if column in record})
    return rows
