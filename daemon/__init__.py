"""eliq-daemon: the continual-learning monitoring service around the eliq critic
(state, the release cycle, MLflow registration, drift, alerts, scheduling).

The library (``pip install eliq``) scores and trains without any of this; the daemon's
dependencies come with ``pip install 'eliq[daemon]'``, and :func:`main` says so when they
are missing instead of failing on the first import.
"""

from __future__ import annotations

import importlib.util
import sys

DEPENDENCIES = {  # module: distribution, as the ``daemon`` extra lists them
    "mlflow": "mlflow",
    "sqlmodel": "sqlmodel",
    "alembic": "alembic",
    "apscheduler": "apscheduler",
    "evidently": "evidently",
    "fastapi": "fastapi",
    "uvicorn": "uvicorn",
    "prometheus_client": "prometheus-client",
}


def missing_dependencies() -> list[str]:
    """The daemon's distributions that cannot be imported here."""
    return [dist for module, dist in DEPENDENCIES.items() if not _importable(module)]


def _importable(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except ValueError:  # None in sys.modules: Python's way of blocking an import
        return False


def main() -> None:
    """The ``eliq-daemon`` entry point: first, whether the daemon can run here at all."""
    missing = missing_dependencies()
    if missing:
        sys.stderr.write(
            f"error: eliq-daemon needs the daemon's dependencies ({', '.join(missing)} "
            "missing): pip install 'eliq[daemon]'\n"
        )
        raise SystemExit(1)
    from daemon.cli import main as run

    run()
