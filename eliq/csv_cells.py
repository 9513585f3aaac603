"""Text cells of the CSV files eliq writes, guarded against formula injection.

A spreadsheet runs a cell that starts with ``=``, ``+``, ``-`` or ``@`` (and some with a
tab or carriage return) as a formula, so a prompt like ``=HYPERLINK("http://…")`` would
become a live link in an operator's spreadsheet. As spreadsheet exports do (OWASP's advice
on CSV injection), such a cell is written with a leading ``'``; eliq takes it off when it
reads its own files back.
"""

from __future__ import annotations

from typing import Any

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def guard(value: Any) -> Any:
    """``value`` as a cell no spreadsheet runs (a text that already looks guarded is
    guarded once more, so that :func:`unguard` gives every text back as it was)."""
    if isinstance(value, str) and value.lstrip("'").startswith(FORMULA_STARTS):
        return "'" + value
    return value


def unguard(value: Any) -> Any:
    """A cell as it was before :func:`guard`."""
    if (
        isinstance(value, str)
        and value.startswith("'")
        and value.lstrip("'").startswith(FORMULA_STARTS)
    ):
        return value[1:]
    return value
