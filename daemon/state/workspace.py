"""Where a release's files live: one folder per release under ``data_dir/releases``.

Every step reads and writes its release's files through a :class:`ReleaseWorkspace`, so the
layout is written down once::

    samples/            the rendered (or stored) images and manifest.csv
    pairs/              the pair set, with held_out.json: the positives held out, chosen once
    critic/             the retuned critic (and its resumable training state)
    drift/<kind>/       each drift check's scores, decisions and report
    scores/             the watch job's scores of the release, one file per critic version
    weights/            a single-file checkpoint downloaded for sampling
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class ReleaseWorkspace:
    root: Path

    @classmethod
    def of(cls, data_dir: Path, release_id: str) -> ReleaseWorkspace:
        """A file-system-safe folder per release, stable across restarts."""
        readable = re.sub(r"[^A-Za-z0-9._-]+", "_", release_id)[:60]
        digest = hashlib.sha256(release_id.encode()).hexdigest()[:10]
        return cls(Path(data_dir) / "releases" / f"{readable}-{digest}")

    @property
    def samples(self) -> Path:
        return self.root / "samples"

    @property
    def pairs(self) -> Path:
        return self.root / "pairs"

    @property
    def critic(self) -> Path:
        return self.root / "critic"

    @property
    def weights(self) -> Path:
        return self.root / "weights"

    def drift(self, kind: str) -> Path:
        return self.root / "drift" / kind

    def scores(self, critic_version: str) -> Path:
        return self.root / "scores" / f"critic-v{critic_version}.parquet"
