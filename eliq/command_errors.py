"""Mistakes at the command line are one clear line, not a traceback.

A missing file, a bad value or an unknown name (a critic version, a release, a family)
is what a user can fix; the entry points print it on stderr as ``error: ...`` and exit
with status 1. ``ELIQ_DEBUG=1`` shows the traceback instead, for bug reports. Messages
pass through the credential mask (:mod:`eliq.redaction`) like every log line.
"""

from __future__ import annotations

import os
import sys

import typer

from eliq.redaction import redact_url

USER_ERRORS = (FileNotFoundError, NotADirectoryError, PermissionError, ValueError, KeyError)


def run_app(app: typer.Typer) -> None:
    """Run a Typer app as an entry point (see the module docstring)."""
    try:
        app()
    except USER_ERRORS as error:
        if os.environ.get("ELIQ_DEBUG") == "1":
            raise
        message = error.args[0] if isinstance(error, KeyError) and error.args else error
        print(f"error: {redact_url(str(message))}", file=sys.stderr)
        raise SystemExit(1) from None
