"""The cycle: releases found in the registries, each taken through its steps.

``discover`` polls one registry and stores its new releases with the cursor after them;
:attr:`Cycle.pipeline` runs each release through :data:`daemon.cycle.steps.STEPS`, in discovery
order. Both work on the :class:`~daemon.ports.Ports` they are given
(:func:`daemon.composition.build_cycle`).
"""

from __future__ import annotations

import logging

from adapters.registries.base import Registry, Release
from daemon.cycle.pipeline import Pipeline
from daemon.cycle.steps import STEPS
from daemon.ports import Ports
from daemon.settings import RegistrySpec
from daemon.state.tables import ReleaseRecord

log = logging.getLogger(__name__)


class Cycle:
    """The registries, each with its settings and its adapter (built once, by the
    composition root), the ports, and the pipeline; :meth:`close` lets go of every
    connection they hold."""

    def __init__(self, ports: Ports, registries: dict[str, tuple[RegistrySpec, Registry]]) -> None:
        self.ports = ports
        self.registries = registries
        self.pipeline = Pipeline(ports, STEPS)

    def discover(self, registry: str) -> int:
        """Poll one registry; store what it found and its new cursor together."""
        spec, adapter = self.registries[registry]
        found, cursor = adapter.poll(self.ports.store.cursor(registry))
        rows = [_release_row(spec, release) for release in found]
        added = self.ports.store.record_poll(registry, rows, cursor)
        if added:
            log.info("%s: %d new release(s): %s", registry, added, [r.id for r in rows])
        return added

    def close(self) -> None:
        """Close the registries' and alert channels' connections and the executor."""
        for _, adapter in self.registries.values():
            if hasattr(adapter, "close"):  # one that holds connections (see Registry)
                adapter.close()
        self.ports.alerter.close()
        self.ports.executor.close()


def _release_row(spec: RegistrySpec, release: Release) -> ReleaseRecord:
    return ReleaseRecord(
        id=release.id,
        registry_name=spec.name,
        source=release.source,
        name=release.name,
        appeared_at=release.appeared_at,
        sequence=0,
        loader=release.loader.model_dump(mode="json"),
        meta=release.model_dump(mode="json")["metadata"],
    )
