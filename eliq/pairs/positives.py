"""Positives: (image, prompt) pairs read from a folder and a CSV or JSON Lines manifest.

Only three columns are ever read: the image, the prompt and an optional generation seed
(named ``image``, ``prompt`` and ``seed`` unless :class:`ManifestColumns` says otherwise).
A manifest that also carries human opinion scores (MOS) is accepted, but those columns are
never loaded, so nothing downstream can learn from them.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from eliq.prompts.record import prompt_or_none, require_text


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
    confine: bool = False,
) -> list[Positive]:
    """Positives listed in ``manifest``; image paths are relative to ``images_dir``
    (default: the manifest's folder). Rows without an image are refused; duplicates too.
    ``confine``: every image must lie inside ``images_dir`` (links resolved), for manifests
    that come from elsewhere (a registry's release)."""
    manifest = Path(manifest)
    images_dir = Path(images_dir) if images_dir is not None else manifest.parent
    rows = read_manifest(manifest, columns.names())
    if rows and all(columns.image not in row for _, row in rows):
        raise ManifestError(
            f"{manifest}: no {columns.image!r} column among the columns eliq reads "
            f"({', '.join(columns.names())})"
        )
    inside = images_dir.resolve() if confine else None
    positives: list[Positive] = []
    seen: set[str] = set()
    for line, row in rows:
        image = row.get(columns.image)
        if not isinstance(image, str) or not image.strip():
            raise ManifestError(f"{manifest}:{line}: no image")
        if "\x00" in image or not _is_text(image):
            raise ManifestError(f"{manifest}:{line}: the image path is not valid text")
        if image in seen:
            raise ManifestError(f"{manifest}:{line}: image {image!r} is listed twice")
        seen.add(image)
        path = images_dir / image
        if inside is not None and not path.resolve().is_relative_to(inside):
            raise ManifestError(f"{manifest}:{line}: image {image!r} lies outside {images_dir}")
        try:
            prompt = prompt_or_none(row.get(columns.prompt))
        except TypeError:
            raise ManifestError(f"{manifest}:{line}: the prompt is not text") from None
        except ValueError as error:
            raise ManifestError(f"{manifest}:{line}: {error}") from None
        positives.append(
            Positive(
                key=image,
                image=path,
                prompt=prompt,
                seed=_seed(row.get(columns.seed), manifest, line),
            )
        )
    return positives


def read_manifest(manifest: Path, wanted: Sequence[str]) -> list[tuple[int, dict[str, Any]]]:
    """The ``wanted`` fields of each row of a CSV or JSON Lines manifest, with the line the
    row ends on. Other columns are never read. A CSV row with more or fewer fields than its
    header is refused (a stray comma would otherwise shift every later column)."""
    manifest = Path(manifest)
    if not manifest.is_file():
        raise ManifestError(f"{manifest}: no such manifest")
    suffix = manifest.suffix.lower()
    try:
        if suffix == ".csv":
            return _read_csv(manifest, wanted)
        if suffix in {".jsonl", ".ndjson"}:
            return _read_jsonl(manifest, wanted)
    except UnicodeDecodeError as exc:
        raise ManifestError(f"{manifest}: not UTF-8 text ({exc.reason})") from exc
    raise ManifestError(f"{manifest}: manifests must be .csv or .jsonl")


def _read_csv(manifest: Path, wanted: Sequence[str]) -> list[tuple[int, dict[str, Any]]]:
    rows = []
    with manifest.open(newline="", encoding="utf-8-sig") as file:
        reader = csv.reader(file, strict=True)
        try:
            header = next(reader, None)
            if header is None:
                return []
            duplicated = sorted({name for name in header if header.count(name) > 1})
            if duplicated:
                raise ManifestError(f"{manifest}:1: columns {duplicated} appear twice")
            positions = {name: i for i, name in enumerate(header) if name in wanted}
            for fields in reader:
                if not fields:
                    continue  # a blank line
                if len(fields) != len(header):
                    raise ManifestError(
                        f"{manifest}:{reader.line_num}: {len(fields)} fields where the header "
                        f"has {len(header)} (an unquoted comma?)"
                    )
                rows.append((reader.line_num, {n: fields[i] for n, i in positions.items()}))
        except csv.Error as exc:
            raise ManifestError(f"{manifest}:{reader.line_num}: unreadable CSV ({exc})") from exc
    return rows


def _read_jsonl(manifest: Path, wanted: Sequence[str]) -> list[tuple[int, dict[str, Any]]]:
    rows = []
    for number, line in enumerate(manifest.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except (json.JSONDecodeError, RecursionError) as exc:
            reason = exc.msg if isinstance(exc, json.JSONDecodeError) else "nested too deeply"
            raise ManifestError(f"{manifest}:{number}: not JSON ({reason})") from exc
        if not isinstance(record, dict):
            raise ManifestError(f"{manifest}:{number}: not a JSON object")
        rows.append((number, {column: record[column] for column in wanted if column in record}))
    return rows


def _is_text(value: str) -> bool:
    try:
        require_text(value)
    except ValueError:
        return False
    return True


def _seed(value: Any, manifest: Path, line: int) -> int | None:
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise ManifestError(f"{manifest}:{line}: seed {value!r} is not an integer")
    try:
        return int(value)
    except ValueError:
        raise ManifestError(f"{manifest}:{line}: seed {value!r} is not an integer") from None


def split_manifest(manifest: Path, image_column: str, split_column: str) -> dict[str, list[str]]:
    """Image paths of ``manifest`` per value of ``split_column``, in order of first appearance.
    Reads only those two columns."""
    groups: dict[str, list[str]] = {}
    for line, row in read_manifest(manifest, (image_column, split_column)):
        value = row.get(split_column)
        if value is None or (isinstance(value, str) and not value.strip()):
            raise ManifestError(f"{manifest}:{line}: no {split_column!r} value")
        groups.setdefault(str(value), []).append(str(row.get(image_column, "")))
    return groups
