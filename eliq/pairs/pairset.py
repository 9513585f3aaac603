"""A pair set on disk: lossless images plus a Parquet manifest that training streams.

Layout::

    pairset.json              what built it (settings, eliq version) and, once complete, counts
    errors.jsonl              one line per positive that could not be used, with the reason
    images/positives/*.png    each positive as decoded (and size-limited) for its negatives
    images/negatives/*.png    image negatives; alignment negatives reuse the positive image
    manifest/part-*.parquet   one row per pair (columns: :data:`PAIR_SCHEMA`)

Parts are written atomically after their images, so an interrupted build loses at most the
batch in flight, and a rebuild with the same settings resumes where it stopped.
"""

from __future__ import annotations

import json
import os
from collections import Counter
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq

FORMAT_VERSION = 1
PAIR_SCHEMA = pa.schema(
    [
        ("pair_id", pa.string()),
        ("positive_id", pa.string()),
        ("positive", pa.string()),
        ("negative", pa.string()),
        ("positive_prompt", pa.string()),
        ("negative_prompt", pa.string()),
        ("aspect", pa.string()),
        ("family", pa.string()),
        ("kind", pa.string()),
        ("severity", pa.int16()),
        ("seed", pa.int64()),
        ("provenance", pa.string()),
    ]
)


@dataclass(frozen=True)
class PairRecord:
    """One row of the manifest; image paths are relative to the pair set's root."""

    pair_id: str
    positive_id: str
    positive: str
    negative: str
    positive_prompt: str | None
    negative_prompt: str | None
    aspect: str
    family: str
    kind: str
    severity: int
    seed: int
    provenance: str


class PairSetError(RuntimeError):
    pass


class PairSetWriter:
    """Writes a pair set part by part; reopening with the same build settings resumes."""

    def __init__(self, root: Path, build: dict) -> None:
        self.root = Path(root)
        self.positives_dir = self.root / "images" / "positives"
        self.negatives_dir = self.root / "images" / "negatives"
        self.manifest_dir = self.root / "manifest"
        for folder in (self.positives_dir, self.negatives_dir, self.manifest_dir):
            folder.mkdir(parents=True, exist_ok=True)
        info_path = self.root / "pairset.json"
        if info_path.exists():
            existing = json.loads(info_path.read_text())
            if existing.get("build") != build:
                raise PairSetError(
                    f"{self.root} holds a pair set built with other settings; "
                    "use a new output folder"
                )
        else:
            _write_json(info_path, {"format": FORMAT_VERSION, "build": build})
        self._build = build

    def done_positives(self) -> set[str]:
        """Positives already written (and those that failed) by an earlier, interrupted run."""
        done = set()
        if any(self.manifest_dir.glob("part-*.parquet")):
            done |= set(
                _dataset(self.manifest_dir).to_table(["positive_id"])["positive_id"].to_pylist()
            )
        errors = self.root / "errors.jsonl"
        if errors.exists():
            done |= {json.loads(line)["positive_id"] for line in errors.read_text().splitlines()}
        return done

    def write_part(self, records: list[PairRecord], errors: list[dict]) -> None:
        if errors:
            with (self.root / "errors.jsonl").open("a", encoding="utf-8") as f:
                for error in errors:
                    f.write(json.dumps(error) + "\n")
        if not records:
            return
        index = len(list(self.manifest_dir.glob("part-*.parquet")))
        table = pa.Table.from_pylist([asdict(r) for r in records], schema=PAIR_SCHEMA)
        final = self.manifest_dir / f"part-{index:05d}.parquet"
        temporary = final.with_suffix(".tmp")
        pq.write_table(table, temporary)
        os.replace(temporary, final)

    def finish(self) -> PairSet:
        info = {
            "format": FORMAT_VERSION,
            "build": self._build,
            "complete": True,
            "summary": PairSet(self.root).summary(),
        }
        _write_json(self.root / "pairset.json", info)
        return PairSet(self.root)


class PairSet:
    """Read access to a pair set written by :class:`PairSetWriter`."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        if not (self.root / "pairset.json").is_file():
            raise PairSetError(f"{self.root} is not a pair set (no pairset.json)")
        self.info = json.loads((self.root / "pairset.json").read_text())

    def dataset(self) -> ds.Dataset:
        return _dataset(self.root / "manifest")

    def table(self, columns: list[str] | None = None) -> pa.Table:
        return self.dataset().to_table(columns)

    def __len__(self) -> int:
        return self.dataset().count_rows()

    def iter_batches(self, batch_size: int = 256) -> Iterator[list[dict]]:
        """Stream the manifest without loading all of it."""
        for batch in self.dataset().to_batches(batch_size=batch_size):
            yield batch.to_pylist()

    def path(self, relative: str) -> Path:
        return self.root / relative

    def errors(self) -> list[dict]:
        errors = self.root / "errors.jsonl"
        if not errors.exists():
            return []
        return [json.loads(line) for line in errors.read_text().splitlines()]

    def summary(self) -> dict:
        """Pair counts per aspect and per family within it, plus the failed positives."""
        table = self.table(["aspect", "family", "positive_id"])
        per_family = Counter(
            zip(table["aspect"].to_pylist(), table["family"].to_pylist(), strict=True)
        )
        per_aspect: dict[str, dict[str, int]] = {}
        for (aspect, family), count in sorted(per_family.items()):
            per_aspect.setdefault(aspect, {})[family] = count
        return {
            "pairs": table.num_rows,
            "positives": len(set(table["positive_id"].to_pylist())),
            "failed_positives": len(self.errors()),
            "per_aspect": {aspect: sum(f.values()) for aspect, f in per_aspect.items()},
            "per_family": per_aspect,
        }


def _dataset(folder: Path) -> ds.Dataset:
    return ds.dataset(sorted(folder.glob("part-*.parquet")), schema=PAIR_SCHEMA, format="parquet")


def _write_json(path: Path, payload: dict) -> None:
    temporary = path.with_suffix(".tmp")
    temporary.write_text(json.dumps(payload, indent=2, sort_keys=True))
    os.replace(temporary, path)
