"""Adapters created by name, built-in or from third-party packages (entry points).

Each kind of adapter (registries, generators, alert channels) has one :class:`Plugins`
table. A package adds its own adapter by declaring an entry point in the kind's group, e.g.
in its ``pyproject.toml``::

    [project.entry-points."eliq.registries"]
    my-registry = "my_package.registry:MyRegistry"

after which ``adapters.create_registry("my-registry", **settings)`` builds it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from importlib.metadata import entry_points
from typing import Any, Generic, TypeVar

log = logging.getLogger(__name__)
T = TypeVar("T")


class Plugins(Generic[T]):
    """Factories of one kind of adapter by name; entry points load on first use."""

    def __init__(self, kind: str, group: str) -> None:
        self.kind = kind
        self.group = group
        self._factories: dict[str, Callable[..., T]] = {}
        self._entry_points_loaded = False

    def register(self, name: str) -> Callable[[Callable[..., T]], Callable[..., T]]:
        """Decorator: ``@registries.register("huggingface")`` on a class or function."""

        def wrap(factory: Callable[..., T]) -> Callable[..., T]:
            if self._factories.get(name, factory) is not factory:
                raise ValueError(f"a {self.kind} named {name!r} is already registered")
            self._factories[name] = factory
            return factory

        return wrap

    def names(self) -> list[str]:
        self._load_entry_points()
        return sorted(self._factories)

    def create(self, name: str, **settings: Any) -> T:
        """Build the adapter ``name`` from its settings."""
        self._load_entry_points()
        if name not in self._factories:
            raise KeyError(f"unknown {self.kind} {name!r}; known: {', '.join(self.names())}")
        return self._factories[name](**settings)

    def _load_entry_points(self) -> None:
        if self._entry_points_loaded:
            return
        self._entry_points_loaded = True
        for entry in entry_points(group=self.group):
            if entry.name in self._factories:
                log.warning(
                    "%s %r from %s ignored: the name is taken", self.kind, entry.name, entry.value
                )
                continue
            try:
                self._factories[entry.name] = entry.load()
            except Exception:  # a broken plug-in must not take the built-ins down with it
                log.exception("could not load %s %r from %s", self.kind, entry.name, entry.value)
