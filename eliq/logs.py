"""Standard-library logging set up once for the command-line entry points."""

from __future__ import annotations

import logging

from rich.logging import RichHandler

from eliq.redaction import RedactingFilter


def setup_logging(level: str | int = "INFO") -> None:
    """Route eliq's loggers through one handler that cooperates with progress bars and
    masks credentials in every line (:mod:`eliq.redaction`)."""
    handler = RichHandler(rich_tracebacks=True, show_path=False)
    handler.addFilter(RedactingFilter())
    logging.basicConfig(
        level=level,
        format="%(name)s: %(message)s",
        datefmt="[%X]",
        handlers=[handler],
        force=True,
    )
