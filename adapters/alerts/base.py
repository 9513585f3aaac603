"""What an alert channel is: ``send(alert)``, raising when delivery failed for good."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Literal, Protocol, runtime_checkable

from pydantic import BaseModel, Field

Severity = Literal["info", "warning", "error", "critical"]


class Alert(BaseModel):
    """One thing people should know, e.g. critic drift or a release parked after failures."""

    title: str
    summary: str
    severity: Severity = "warning"
    source: str = Field(default="eliq", description="The daemon instance or host.")
    kind: str = Field(default="eliq", description="What raised it: 'drift', 'release', ...")
    dedup_key: str = Field(description="Same key, same incident: receivers merge repeats.")
    resolved: bool = Field(default=False, description="True closes the incident of dedup_key.")
    details: dict[str, Any] = Field(default_factory=dict)
    links: dict[str, str] = Field(default_factory=dict, description="Label -> URL.")
    created_at: datetime = Field(default_factory=lambda: datetime.now(UTC))


@runtime_checkable
class AlertChannel(Protocol):
    name: str

    def send(self, alert: Alert) -> None: ...
