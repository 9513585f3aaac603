"""The champion's lifecycle: a version promoted by the gate or by hand, the one before it
retired, and the registry's aliases and tags saying the same as the state."""

from __future__ import annotations

from adapters.alerts.base import Alert
from adapters.critic_stores import CHALLENGER, CHAMPION, store_key
from daemon.ports import Ports
from daemon.state.tables import CriticStatus, CriticVersion, utcnow


def promote(ports: Ports, version: CriticVersion) -> list[CriticVersion]:
    """Move the champion alias to ``version``; returns the rows to store (it and the
    champion it retired)."""
    critics = ports.critics
    critics.set_alias(CHAMPION, version.store_version)
    if CHALLENGER in critics.aliases().get(version.store_version, []):
        critics.delete_alias(CHALLENGER)
    retired = []
    for other in ports.store.critic_versions():
        if other.status == CriticStatus.champion and other.id != version.id:
            other.status = CriticStatus.retired
            retired.append(other)
    version.status = CriticStatus.champion
    return [*retired, version]


def promote_by_hand(ports: Ports, store_version: str, by: str = "hand") -> CriticVersion:
    """Make a held (or any) critic version the champion by hand: recorded on its gate
    (what the automatic gate said stays beside it) and announced like an automatic one."""
    version = next(
        (v for v in ports.store.critic_versions() if v.store_version == str(store_version)),
        None,
    )
    if version is None:
        raise KeyError(f"no critic version {store_version} in this daemon's state")
    automatic = version.gate.get("why", "no automatic decision")
    version.gate = {
        **version.gate,
        "manual": {"by": by, "at": utcnow().isoformat(), "overrode": automatic},
        "why": f"promoted by {by} (the gate had said: {automatic})",
    }
    version.decided_at = utcnow()
    ports.store.save(*promote(ports, version))
    ports.critics.tag_version(version.store_version, gate_tags(version))
    ports.alerter.send(
        decision_alert(
            version,
            f"promoted to champion by {by}",
            f"critic:{store_key(version.release_id)}:manual:{version.decided_at.isoformat()}",
        )
    )
    return version


def gate_tags(version: CriticVersion) -> dict[str, str]:
    """The gate's outcome on the MLflow version, so the registry alone says why."""
    gate = version.gate
    tags = {
        "eliq.gate.passed": str(bool(gate.get("passed"))).lower(),
        "eliq.gate.why": str(gate.get("why", "")),
        "eliq.status": str(version.status),
    }
    if "manual" in gate:
        tags["eliq.promoted_by"] = str(gate["manual"]["by"])
    return tags


def _origin(version: CriticVersion) -> str:
    if version.release_id is None:
        return "The critic the daemon started from"
    return f"Retuned on {version.release_id}"


def decision_alert(version: CriticVersion, outcome: str, dedup_key: str) -> Alert:
    """The announcement of a gate decision or a promotion by hand, with the gate's words."""
    return Alert(
        title=f"Critic v{version.store_version} {outcome}",
        summary=f"{_origin(version)}; gate: {version.gate.get('why', 'no decision')}",
        severity="info",
        kind="release",
        dedup_key=dedup_key,
        details={
            "release": version.release_id,
            "version": version.store_version,
            "gate": version.gate,
        },
    )
