"""The embedded default registry: a local folder seeded with one demo release, built from
photographs that ship inside scikit-image, so a fresh machine has something to monitor."""

from __future__ import annotations

import logging
import shutil
import tempfile
from pathlib import Path

from eliq.demo import write_demo_crops

log = logging.getLogger(__name__)
DEMO_RELEASE = "demo-photos"


def seed_demo_registry(data_dir: Path) -> Path:
    """Write ``data_dir/registry/demo-photos`` once (a release of stored outputs: the demo
    photos' corner crops and ``manifest.csv``, enough held-out pairs for the gate to decide
    on); later runs leave the registry as they find it. Daemons started together each write
    a hidden scratch folder of their own, and the first rename wins."""
    registry = data_dir / "registry"
    release = registry / DEMO_RELEASE
    if not (release / "manifest.csv").is_file():
        registry.mkdir(parents=True, exist_ok=True)
        scratch = Path(tempfile.mkdtemp(prefix=f".{DEMO_RELEASE}-", dir=registry))
        try:
            write_demo_crops(scratch)
            scratch.rename(release)
            log.info("seeded the demo registry at %s", registry)
        except OSError:
            if not (release / "manifest.csv").is_file():
                raise
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
    return registry
