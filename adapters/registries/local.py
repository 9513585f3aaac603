"""A local folder as a registry: a shared drive, a mounted bucket, or a replayed history.

Two layouts:

* **one release per sub-folder** (default): a folder holding ``model_index.json`` is a
  diffusers pipeline; a folder holding ``manifest.csv`` or ``manifest.jsonl`` (``image``,
  ``prompt``, optional ``seed``) is a release of pre-generated outputs. A folder whose
  contents change (a new ``model_index.json`` or manifest) is a new release. Names starting
  with ``.`` or ``_`` are skipped: copy a release in under such a name, then rename it, so a
  half-copied release is never picked up.
* **one manifest split into releases** (``manifest`` and ``split_column`` set): each value
  of the column is a release of outputs, released in ``order`` (default: first appearance),
  ``per_poll`` at a time. ``../shared/datasets/agiqa3k`` with ``split_column="generator"``
  replays AGIQA-3K as a release history. Only the image and split columns are read.

The cursor lists the releases already returned (with their content digest).
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from pathlib import Path

from adapters.registries.base import Cursor, Loader, Release
from eliq.pairs.positives import split_manifest

MANIFESTS = ("manifest.csv", "manifest.jsonl")


class LocalFolderRegistry:
    def __init__(
        self,
        root: str | Path,
        manifest: str | None = None,
        split_column: str | None = None,
        order: list[str] | None = None,
        per_poll: int | None = None,
        image_column: str = "image",
        prompt_column: str = "prompt",
        images: str | None = None,
        name: str = "local",
    ) -> None:
        self.root = Path(root)
        self.name = name
        self.manifest = self.root / manifest if manifest else None
        self.split_column = split_column
        if (self.manifest is None) != (split_column is None):
            raise ValueError("give both manifest and split_column, or neither")
        self.order = order
        self.per_poll = per_poll
        self.columns = {"image": image_column, "prompt": prompt_column}
        self.images = self.root / images if images else self.root

    def poll(self, cursor: Cursor | None) -> tuple[list[Release], Cursor]:
        if not self.root.is_dir():
            raise FileNotFoundError(f"local registry folder {self.root} does not exist")
        seen: dict[str, str] = dict((cursor or {}).get("seen", {}))
        candidates = self._split_releases() if self.manifest else self._folder_releases()
        new = [r for r in candidates if seen.get(r.name) != r.metadata["digest"]]
        if self.per_poll is not None:
            new = new[: self.per_poll]
        for release in new:
            seen[release.name] = release.metadata["digest"]
        return new, {"seen": seen}

    def _folder_releases(self) -> list[Release]:
        releases = []
        for folder in sorted(self.root.iterdir()):
            if not folder.is_dir() or folder.name.startswith((".", "_")):
                continue
            if (folder / "model_index.json").is_file():
                marker, loader = (
                    folder / "model_index.json",
                    Loader(kind="diffusers", ref=str(folder)),
                )
            else:
                marker = next((folder / m for m in MANIFESTS if (folder / m).is_file()), None)
                if marker is None:
                    continue  # not a release (yet)
                loader = Loader(kind="outputs", ref=str(folder), options={"manifest": str(marker)})
            digest = hashlib.sha256(marker.read_bytes()).hexdigest()[:16]
            releases.append(
                Release(
                    id=f"{folder.name}@{digest}",
                    source=self.name,
                    name=folder.name,
                    appeared_at=datetime.fromtimestamp(marker.stat().st_mtime, UTC),
                    loader=loader,
                    metadata={"digest": digest, "path": str(folder)},
                )
            )
        return sorted(releases, key=lambda r: (r.appeared_at, r.name))

    def _split_releases(self) -> list[Release]:
        groups = split_manifest(self.manifest, self.columns["image"], self.split_column)
        values = list(groups)
        if self.order is not None:
            unknown = sorted(set(self.order) - set(values))
            if unknown:
                raise ValueError(f"{self.manifest}: no rows with {self.split_column} in {unknown}")
            values = list(self.order)
        appeared = datetime.fromtimestamp(self.manifest.stat().st_mtime, UTC)
        releases = []
        for value in values:
            digest = hashlib.sha256("\n".join(groups[value]).encode()).hexdigest()[:16]
            releases.append(
                Release(
                    id=f"{self.root.name}:{value}@{digest}",
                    source=self.name,
                    name=value,
                    appeared_at=appeared,
                    loader=Loader(
                        kind="outputs",
                        ref=str(self.images),
                        options={
                            "manifest": str(self.manifest),
                            "split_column": self.split_column,
                            "value": value,
                            **{f"{k}_column": v for k, v in self.columns.items()},
                        },
                    ),
                    metadata={"digest": digest, "images": len(groups[value])},
                )
            )
        return releases
