"""The default channel: the service log, and optionally a JSON-lines file."""

from __future__ import annotations

import json
import logging
from pathlib import Path

from adapters.alerts.base import Alert

log = logging.getLogger("eliq.alerts")
LEVELS = {"info": logging.INFO, "warning": logging.WARNING, "error": logging.ERROR,
          "critical": logging.CRITICAL}  # fmt: skip


class LogChannel:
    def __init__(self, path: str | Path | None = None, name: str = "log") -> None:
        self.name = name
        self.path = Path(path) if path else None

    def send(self, alert: Alert) -> None:
        state = "resolved" if alert.resolved else alert.severity
        log.log(LEVELS[alert.severity], "[%s] %s: %s", state, alert.title, alert.summary)
        if self.path is not None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with self.path.open("a", encoding="utf-8") as file:
                file.write(json.dumps(alert.model_dump(mode="json")) + "\n")
