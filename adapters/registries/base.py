"""What a model registry adapter is: ``poll(cursor) -> (new releases, new cursor)``.

The cursor is the adapter's own JSON-serialisable bookmark (a high-water mark, seen ids).
The daemon stores it after each successful poll and passes it back on the next one, even
across restarts: a poll that fails raises and leaves the stored cursor as it was, so no
release is skipped, and a release already behind the cursor is never returned again.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Collection
from datetime import datetime
from typing import Any, Protocol, runtime_checkable

from pydantic import BaseModel, Field

Cursor = dict[str, Any]
LoaderKind = str  # a generator name: "diffusers", "outputs", "http", or a plug-in's


class Loader(BaseModel):
    """How a generator adapter loads a release."""

    kind: LoaderKind
    ref: str = Field(description="Hub id, folder, model URI or API model name.")
    revision: str | None = None
    options: dict[str, Any] = Field(default_factory=dict)


class Release(BaseModel):
    """One new generator version found by a registry."""

    id: str = Field(description="Stable across polls, e.g. 'repo/name@sha'.")
    source: str = Field(description="The registry adapter that found it.")
    name: str = Field(description="The generator, e.g. the repo id, without the version.")
    appeared_at: datetime
    loader: Loader
    metadata: dict[str, Any] = Field(default_factory=dict)


@runtime_checkable
class Registry(Protocol):
    """A source of generator releases. One that holds connections also has ``close()``,
    which the daemon calls when it stops."""

    name: str

    def poll(self, cursor: Cursor | None) -> tuple[list[Release], Cursor]:
        """Releases that appeared since ``cursor`` (oldest first) and the cursor after them."""
        ...


def selected(name: str, include: Collection[str], exclude: Collection[str]) -> bool:
    """``include`` (exact names; empty: all) minus ``exclude`` (glob patterns)."""
    if include and name not in include:
        return False
    return not any(fnmatch.fnmatchcase(name, pattern) for pattern in exclude)
