"""Standard-library logging set up once for the command-line entry points."""

from __future__ import annotations

import logging

from rich.console import Console
from rich.logging import RichHandler

from eliq.redaction import RedactingFilter


def setup_logging(level: str | int = "INFO") -> None:
    """Route eliq's loggers through one handler on stderr (stdout may be the output, as in
    ``eliq score --out -``) that cooperates with progress bars and masks credentials in
    every line (:mod:`eliq.redaction`)."""
    handler = RichHandler(console=Console(stderr=True), rich_tracebacks=True, show_path=False)
    handler.addFilter(RedactingFilter())
    logging.basicConfig(
        level=level,
        format="%(name)s: %(message)s",
        datefmt="[%X]",
        handlers=[handler],
        force=True,
    )
