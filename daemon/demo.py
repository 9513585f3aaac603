"""The embedded default registry: a local folder seeded with one demo release, built from
photographs that ship inside scikit-image, so a fresh machine has something to monitor."""

from __future__ import annotations

import logging
from pathlib import Path

from eliq.demo import write_demo_positives

log = logging.getLogger(__name__)
DEMO_RELEASE = "demo-photos"


def seed_demo_registry(data_dir: Path) -> Path:
    """Write ``data_dir/registry/demo-photos`` once (a release of stored outputs: images and
    ``manifest.csv``); later runs leave the registry as they find it."""
    registry = data_dir / "registry"
    release = registry / DEMO_RELEASE
    if not (release / "manifest.csv").is_file():
        scratch = registry / f".{DEMO_RELEASE}"  # hidden from the registry until complete
        write_demo_positives(scratch)
        scratch.rename(release)
        log.info("seeded the demo registry at %s", registry)
    return registry
