"""Credentials out of anything shown: logs, the status page, ``status --json``, errors.

One rule for every URL the project prints, whatever its scheme: the password of its
userinfo (``postgresql://user:PASSWORD@host/db``) and the values of query parameters that
name a secret (``?password=``, ``?token=``, ``?api_key=`` ...) become ``***``. The same rule
applies to URLs inside free text, so a driver's error message that quotes its connection
string is masked too.
"""

from __future__ import annotations

import logging
import re

MASK = "***"
_USERINFO = re.compile(r"(?P<head>\b[A-Za-z][A-Za-z0-9+.\-]*://[^\s/@:]*):(?P<secret>[^\s/@]*)@")
_SECRET_QUERY = re.compile(
    r"(?P<head>[?&;](?:[A-Za-z0-9_\-]*(?:password|passwd|pwd|token|secret|api[_-]?key|"
    r"access[_-]?key|signature|sig|auth)[A-Za-z0-9_\-]*)=)(?P<secret>[^&;#\s]*)",
    re.IGNORECASE,
)


def redact_url(text: str) -> str:
    """``text`` (a URL, or words holding URLs) with every credential replaced by ``***``."""
    text = _USERINFO.sub(lambda m: f"{m['head']}:{MASK}@", text)
    return _SECRET_QUERY.sub(lambda m: f"{m['head']}{MASK}" if m["secret"] else m[0], text)


class RedactingFilter(logging.Filter):
    """Masks credentials in a record's message and arguments before any handler sees it."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        masked = redact_url(message)
        if masked != message:
            record.msg, record.args = masked, None
        if record.exc_info and record.exc_info[1] is not None:
            error = record.exc_info[1]
            text = str(error)
            if redact_url(text) != text:  # the traceback would quote it: keep the type only
                record.msg = f"{masked} ({type(error).__name__}: {redact_url(text)})"
                record.args, record.exc_info, record.exc_text = None, None, None
        return True
