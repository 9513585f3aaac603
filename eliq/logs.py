"""Standard-library logging set up once for the command-line entry points."""

from __future__ import annotations

import logging

from rich.logging import RichHandler


def setup_logging(level: str | int = "INFO") -> None:
    """Route eliq's loggers through one handler that cooperates with progress bars."""
    logging.basicConfig(
        level=level,
        format="%(name)s: %(message)s",
        datefmt="[%X]",
        handlers=[RichHandler(rich_tracebacks=True, show_path=False)],
        force=True,
    )
