"""Named plug-ins, built in or from third-party packages (entry points).

One :class:`Plugins` table per kind of thing: negative families (``eliq.negatives``),
registries (``eliq.registries``), generators (``eliq.generators``), alert channels
(``eliq.alerts``), critic stores (``eliq.critic_stores``). A package adds its own by
declaring an entry point in the kind's group, e.g. in its ``pyproject.toml``::

    [project.entry-points."eliq.registries"]
    my-registry = "my_package.registry:MyRegistry"

The entry point's name is the plug-in's name; its object is what the table holds (a
factory for adapters, a :class:`~eliq.pairs.families.NegativeFamily` for families).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from importlib.metadata import entry_points
from typing import Generic, TypeVar

log = logging.getLogger(__name__)
T = TypeVar("T")


class Plugins(Generic[T]):
    """Plug-ins of one kind by name; entry points load on first lookup."""

    def __init__(self, kind: str, group: str) -> None:
        self.kind = kind
        self.group = group
        self._entries: dict[str, T] = {}
        self._entry_points_loaded = False

    def add(self, name: str, entry: T) -> T:
        if self._entries.get(name, entry) is not entry:
            raise ValueError(f"a {self.kind} named {name!r} is already registered")
        self._entries[name] = entry
        return entry

    def register(self, name: str) -> Callable[[T], T]:
        """Decorator form of :meth:`add`: ``@REGISTRIES.register("huggingface")``."""
        return lambda entry: self.add(name, entry)

    def all(self) -> dict[str, T]:
        """Every plug-in by name, built-in and from entry points."""
        self._load_entry_points()
        return dict(sorted(self._entries.items()))

    def get(self, name: str) -> T:
        entries = self.all()
        if name not in entries:
            raise KeyError(f"unknown {self.kind} {name!r}; known: {', '.join(entries)}")
        return entries[name]

    def _load_entry_points(self) -> None:
        if self._entry_points_loaded:
            return
        self._entry_points_loaded = True
        for entry in entry_points(group=self.group):
            if entry.name in self._entries:
                log.warning("%s %r from %s ignored: name taken", self.kind, entry.name, entry.value)
                continue
            try:
                self._entries[entry.name] = entry.load()
            except Exception:  # a broken plug-in must not take the built-ins down with it
                log.exception("could not load %s %r from %s", self.kind, entry.name, entry.value)
