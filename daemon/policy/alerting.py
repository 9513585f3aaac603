"""Alerts to every configured channel, each delivered at most once per incident.

An alert's ``dedup_key`` names its incident; a key already delivered to a channel is not
sent there again (a re-run step, a restart), while a failed delivery is retried next time.
A channel that fails never stops the cycle: the failure is stored and logged.

Repeated breaches of one kind (the quality ranking between critics, cycle after cycle) are
one incident (:meth:`Alerter.breach`): the first opens it and is alerted, later ones are
counted on it, and the first check of that kind that passes closes it
(:meth:`Alerter.clear`) with a resolving alert, so the next breach is news again.
"""

from __future__ import annotations

import logging
import socket

from sqlalchemy.exc import IntegrityError

from adapters.alerts.base import Alert, AlertChannel
from daemon.settings import AlertSpec
from daemon.state.store import Store
from daemon.state.tables import AlertRecord, Incident, utcnow
from eliq.redaction import redact_url

log = logging.getLogger(__name__)
SEVERITIES = ["info", "warning", "error", "critical"]


class Alerter:
    def __init__(self, store: Store, channels: list[tuple[AlertSpec, AlertChannel]]) -> None:
        self.store = store
        self.channels = channels
        self.source = socket.gethostname()

    def close(self) -> None:
        """Close the channels that hold connections (the HTTP ones)."""
        for _, channel in self.channels:
            if hasattr(channel, "close"):
                channel.close()

    def send(self, alert: Alert) -> int:
        """Deliver ``alert`` where it is due; returns how many channels took it."""
        alert = alert.model_copy(  # an error quoted in an alert may quote a connection string
            update={
                "source": self.source,
                "title": redact_url(alert.title),
                "summary": redact_url(alert.summary),
            }
        )
        delivered = 0
        key = alert.dedup_key + (":resolved" if alert.resolved else "")  # one of each per channel
        for spec, channel in self.channels:
            if SEVERITIES.index(alert.severity) < SEVERITIES.index(spec.min_severity):
                continue
            name = f"{spec.kind}:{channel.name}"
            done = self.store.rows(AlertRecord, dedup_key=key, channel=name)
            if done and done[0].delivered:
                continue
            record = (
                done[0]
                if done
                else AlertRecord(
                    dedup_key=key,
                    channel=name,
                    title=alert.title,
                    severity=alert.severity,
                )
            )
            try:
                channel.send(alert)
                record.delivered, record.error = True, None
                delivered += 1
            except Exception as error:  # noqa: BLE001 - one bad channel must not stop others
                record.error = f"{type(error).__name__}: {error}"
                log.error("alert %r to %s failed: %s", alert.dedup_key, name, record.error)
            try:
                self.store.save(record)
            except IntegrityError:
                log.warning("alert %r to %s recorded twice", alert.dedup_key, name)
        return delivered

    def breach(self, topic: str, alert: Alert) -> bool:
        """One breach of ``topic``: alerted when it opens an incident, else counted on the
        open one. Returns whether this breach opened the incident."""
        incident = self._open_incident(topic)
        opened = incident is None
        if incident is None:
            incident = self.store.add(Incident(topic=topic))
        else:
            incident.breaches += 1
            incident.last_seen_at = utcnow()
            self.store.save(incident)
        alert = alert.model_copy(
            update={"dedup_key": incident.dedup_key, "details": {**alert.details, "topic": topic}}
        )
        self.send(alert)  # a re-send of an opened incident is a no-op (its key is delivered)
        if not opened:
            log.info("%s: breach %d of open incident %s", topic, incident.breaches, incident.id)
        return opened

    def clear(self, topic: str, summary: str) -> None:
        """A check of ``topic``'s kind passed: close its open incident, if any."""
        incident = self._open_incident(topic)
        if incident is None:
            return
        incident.closed_at = utcnow()
        self.store.save(incident)
        self.send(
            Alert(
                title=f"Resolved: {topic}",
                summary=summary,
                severity="warning",  # where the breach went, its resolution goes
                kind="drift",
                dedup_key=incident.dedup_key,
                resolved=True,
                details={"topic": topic, "breaches": incident.breaches},
            )
        )

    def _open_incident(self, topic: str) -> Incident | None:
        found = self.store.rows(Incident, topic=topic, closed_at=None)  # IS NULL
        return found[0] if found else None
