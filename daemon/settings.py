"""The daemon's settings: one YAML or TOML file plus ``ELIQ_*`` environment variables.

They extend the library's :class:`~eliq.config.EliqSettings` (data directory, pair factory,
image limits) with what only a long-running service needs: where its state and MLflow live,
which registries to poll and how often, how to retune, the promotion gate, drift thresholds
and alert channels. Every path the daemon writes on its embedded defaults sits under
``data_dir`` (``ELIQ_DATA_DIR``, default ``./data``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field

from eliq.config import EliqSettings
from eliq.train.settings import RETUNE_DEFAULTS

DEMO_REGISTRY = "demo"


class RegistrySpec(BaseModel):
    """One registry to poll: an adapter created by name with its settings."""

    name: str = Field(description="Unique name of this registry in the daemon's state.")
    kind: str = Field(description="Adapter name: huggingface, civitai, replicate, mlflow, local.")
    interval_s: float = Field(default=3600.0, gt=0, description="Seconds between polls.")
    settings: dict[str, Any] = Field(default_factory=dict)
    generator: dict[str, Any] = Field(
        default_factory=dict, description="Extra settings for the generator of its releases."
    )


class AlertSpec(BaseModel):
    kind: str = Field(description="Alert channel adapter: log, slack, webhook, pagerduty.")
    settings: dict[str, Any] = Field(default_factory=dict)
    min_severity: Literal["info", "warning", "error", "critical"] = "info"


class SamplingSettings(BaseModel):
    """How a release that renders images is sampled: the first prompts of the suite."""

    suite: Path | None = Field(default=None, description="Prompt suite; None: the bundled one.")
    prompts: int = Field(default=24, ge=1, description="Prompts rendered per release.")
    seed: int = Field(default=0, description="Image i is rendered with seed + i.")


class RetuneSettings(BaseModel):
    """Incremental retuning of the critic on each release's pairs."""

    initial_checkpoint: Path | None = Field(
        default=None, description="Start of the first release (e.g. artifacts/critic-reference)."
    )
    critic_config: Path | None = Field(
        default=None, description="CriticConfig JSON for a critic built from the backbones."
    )
    steps: int = Field(default=RETUNE_DEFAULTS.steps, ge=1)
    batch_pairs: int = Field(default=RETUNE_DEFAULTS.batch_pairs, ge=2)
    learning_rate: float = RETUNE_DEFAULTS.learning_rate
    time_budget_s: float | None = Field(
        default=300.0,
        description="Cut a retune short after this long (logged, and recorded on the critic "
        "version); None: always train every step.",
    )
    replay_releases: int = Field(default=8, ge=0, description="Earlier pair sets replayed.")
    held_out_fraction: float = Field(default=RETUNE_DEFAULTS.held_out_fraction, gt=0, lt=1)
    device: str = "auto"


class GateSettings(BaseModel):
    """When a challenger replaces the champion."""

    mode: Literal["auto", "manual"] = Field(
        default="auto", description="manual: every challenger waits for `eliq-daemon promote`."
    )
    forgetting_margin: float = Field(
        default=0.05,
        ge=0,
        description="Largest loss of held-out pair accuracy on earlier releases allowed.",
    )
    min_gain: float = Field(
        default=0.0,
        description="Held-out pair accuracy on the new release must beat the champion's by "
        "at least this (0: must not be worse); see daemon/gate.py for a first release.",
    )
    confidence: float = Field(
        default=0.95,
        ge=0.5,
        lt=1.0,
        description="A loss beyond forgetting_margin blocks promotion only when it also "
        "exceeds the held-out pairs' sampling noise at this one-sided confidence (0.5: "
        "compare the raw accuracies). The gain on the new release is never discounted.",
    )


class DriftSettings(BaseModel):
    anchor_images_per_release: int = Field(default=32, ge=1)
    anchor_folder: Path | None = Field(default=None, description="Extra anchor images.")
    p_value: float = Field(
        default=0.05, description="Two-sample Kolmogorov-Smirnov test: drift below this."
    )
    min_rank_correlation: float = Field(
        default=0.8, description="Champion vs challenger Spearman on the anchors: drift below."
    )


class DaemonSettings(EliqSettings):
    database_url: str | None = Field(
        default=None, description="SQLAlchemy URL; None: SQLite at data_dir/state.db."
    )
    mlflow_tracking_uri: str | None = Field(
        default=None, description="None: SQLite at data_dir/mlflow.db, artifacts in data_dir."
    )
    model_name: str = Field(default="eliq-critic", description="Registered MLflow model.")
    evidently_workspace: Path | None = Field(
        default=None, description="Evidently workspace folder; None: data_dir/evidently."
    )
    experiment: str = "eliq-critic"
    registries: list[RegistrySpec] | None = Field(
        default=None, description="None: the local demo registry under data_dir/registry."
    )
    alerts: list[AlertSpec] = Field(
        default_factory=lambda: [AlertSpec(kind="log")],
        description="Channels; a log channel writes data_dir/alerts.jsonl unless given a path.",
    )
    sampling: SamplingSettings = SamplingSettings()
    retune: RetuneSettings = RetuneSettings()
    gate: GateSettings = GateSettings()
    drift: DriftSettings = DriftSettings()
    api_host: str = Field(
        default="127.0.0.1", description="Where `run` serves the status API ('0.0.0.0': all)."
    )
    api_port: int | None = Field(
        default=8750, ge=0, le=65535, description="Status API port; None turns the API off."
    )
    process_interval_s: float = Field(default=60.0, gt=0, description="Pending releases.")
    watch_interval_s: float = Field(
        default=6 * 3600.0,
        gt=0,
        description="The periodic drift check: every release scored by the current champion, "
        "and the latest release compared with the earlier ones.",
    )
    housekeeping_interval_s: float = Field(default=24 * 3600.0, gt=0)
    max_attempts: int = Field(default=3, ge=1, description="Tries of a step before parking.")
    retry_backoff_s: float = Field(default=60.0, ge=0, description="Doubles with each try.")

    @property
    def state_url(self) -> str:
        return self.database_url or f"sqlite:///{(self.data_dir / 'state.db').resolve()}"

    @property
    def tracking_uri(self) -> str:
        return self.mlflow_tracking_uri or f"sqlite:///{(self.data_dir / 'mlflow.db').resolve()}"

    @property
    def evidently_path(self) -> Path:
        return self.evidently_workspace or self.data_dir / "evidently"

    @property
    def artifact_root(self) -> Path:
        return (self.data_dir / "mlartifacts").resolve()

    def registry_specs(self) -> list[RegistrySpec]:
        if self.registries is not None:
            return self.registries
        root = self.data_dir / "registry"
        return [
            RegistrySpec(
                name=DEMO_REGISTRY,
                kind="local",
                interval_s=60.0,
                settings={"root": str(root), "name": DEMO_REGISTRY},
            )
        ]
