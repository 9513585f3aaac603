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

from pydantic import Field, field_validator, model_validator
from pydantic_settings import SettingsConfigDict
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from daemon.policy.drift import DriftSettings
from daemon.policy.gate import GateSettings
from eliq.config import EliqSettings, StrictModel, refuse_moved_keys
from eliq.train.settings import RETUNE_DEFAULTS, TrainSettings

DEMO_REGISTRY = "demo"
MOVED_KEYS = {  # a key of an earlier layout: where it lives now
    (None, "mlflow_tracking_uri"): "critic_store.settings.tracking_uri",
    (None, "model_name"): "critic_store.settings.model_name",
    (None, "experiment"): "critic_store.settings.experiment",
    ("sampling", "cpu_threads"): "executor.cpu_threads",
    ("retune", "device"): "device",
    ("retune", "critic_config"): "retune.recipe (a recipe file: its critic section)",
    **{("retune", k): f"retune.train.{k}" for k in TrainSettings.model_fields if k != "device"},
}


class RegistrySpec(StrictModel):
    """One registry to poll: an adapter created by name with its settings."""

    name: str = Field(description="Unique name of this registry in the daemon's state.")
    kind: str = Field(description="Adapter name: huggingface, civitai, replicate, mlflow, local.")
    interval_s: float = Field(default=3600.0, gt=0, description="Seconds between polls.")
    settings: dict[str, Any] = Field(default_factory=dict)
    generator: dict[str, Any] = Field(
        default_factory=dict, description="Extra settings for the generator of its releases."
    )


class AlertSpec(StrictModel):
    kind: str = Field(description="Alert channel adapter: log, slack, webhook, pagerduty.")
    settings: dict[str, Any] = Field(default_factory=dict)
    min_severity: Literal["info", "warning", "error", "critical"] = "info"


class SamplingSettings(StrictModel):
    """How a release that renders images is sampled: the first prompts of the suite."""

    suite: Path | None = Field(default=None, description="Prompt suite; None: the bundled one.")
    prompts: int = Field(default=24, ge=1, description="Prompts rendered per release.")
    seed: int = Field(default=0, description="Image i is rendered with seed + i.")
    shard_prompts: int = Field(
        default=8,
        ge=1,
        description="Prompts per unit of work the executor runs; a multiple of the "
        "generator's batch size keeps the images the same as unsharded.",
    )


class ExecutorSettings(StrictModel):
    """Where the heavy steps run (sampling, pair building, the retune, the watch's scoring):
    in the daemon (``local``) or on Ray (``ray``; no ``address`` starts a Ray instance on
    this machine with ``workers`` CPUs)."""

    kind: Literal["local", "ray"] = "local"
    address: str | None = Field(
        default=None, description="Ray cluster: 'auto', 'ray://head:10001'; None: start one."
    )
    workers: int = Field(default=2, ge=1, description="CPUs of a Ray instance started here.")
    gpus_per_worker: float = Field(default=0.0, ge=0, description="GPUs per Ray task.")
    connect_timeout_s: float = Field(
        default=30.0,
        gt=0,
        allow_inf_nan=False,
        description="How long a Ray cluster at `address` may take to answer before the step "
        "fails (and is retried with backoff, then parked).",
    )
    storage_path: str | None = Field(
        default=None,
        description="Where Ray Train keeps its run folders: a folder every node sees or a "
        "cloud URI ('s3://bucket/eliq'); None: 'ray' under the data directory.",
    )
    cpu_threads: int = Field(
        default=1,
        ge=1,
        description="Torch CPU threads per sampling and pair-building task, fixed so that a "
        "release's samples and pairs are the same bytes on any machine and executor; the "
        "executor runs tasks side by side.",
    )


def _retune_training() -> TrainSettings:
    return RETUNE_DEFAULTS.model_copy(update={"time_budget_s": 300.0})


class CriticStoreSpec(StrictModel):
    """Where critic versions are registered and promoted: a store created by name (``mlflow``
    built in; plug-ins through the ``eliq.critic_stores`` entry points) with its settings.
    MLflow's: ``tracking_uri`` (default: SQLite at data_dir/mlflow.db, artifacts in
    data_dir), ``model_name`` (``eliq-critic``), ``experiment`` (``eliq-critic``)."""

    kind: str = Field(default="mlflow", description="The store: mlflow, or a plug-in's name.")
    settings: dict[str, Any] = Field(default_factory=dict, description="The store's settings.")


class RetuneSettings(StrictModel):
    """Incremental retuning of the critic on each release's pairs: where it starts, what it
    replays, and how it trains (``train``: the library's own :class:`TrainSettings`, whose
    ``seed`` and ``held_out_fraction`` also choose the pairs that evaluation holds out)."""

    initial_checkpoint: Path | None = Field(
        default=None, description="Start of the first release (e.g. artifacts/critic-reference)."
    )
    recipe: Path | None = Field(
        default=None,
        description="Without an initial checkpoint: a recipe file whose `critic` section is "
        "built from the backbones (any family: e.g. a multimodal LLM with text_backbone "
        "'joint'); its `train` section is not read, `train` below is.",
    )
    replay_releases: int = Field(default=8, ge=0, description="Earlier pair sets replayed.")
    train: TrainSettings = Field(
        default_factory=_retune_training,
        description="120 steps of 24 pairs, 20% of positives held out, the decorrelation "
        "penalty at 1.0 (as the reference recipe trains), cut short after 300 s "
        "(time_budget_s: null always trains every step); device: the daemon's `device`.",
    )

    @model_validator(mode="before")
    @classmethod
    def _train_over_the_retune_defaults(cls, data: Any) -> Any:
        """What ``train`` leaves out keeps the retune's default, not TrainSettings' own."""
        if isinstance(data, dict) and isinstance(data.get("train"), dict):
            return data | {"train": _retune_training().model_dump() | data["train"]}
        return data

    @model_validator(mode="after")
    def _evaluation_holds_pairs_out(self) -> RetuneSettings:
        if self.train.held_out_fraction <= 0:
            raise ValueError(
                "retune.train.held_out_fraction must be > 0: the gate tests a challenger on "
                "the pairs its retune held out"
            )
        return self


class DaemonSettings(EliqSettings):
    model_config = SettingsConfigDict(**(EliqSettings.model_config | {"extra": "forbid"}))

    database_url: str | None = Field(
        default=None, description="SQLAlchemy URL; None: SQLite at data_dir/state.db."
    )
    critic_store: CriticStoreSpec = CriticStoreSpec()
    evidently_workspace: Path | None = Field(
        default=None, description="Evidently workspace folder; None: data_dir/evidently."
    )
    registries: list[RegistrySpec] | None = Field(
        default=None, description="None: the local demo registry under data_dir/registry."
    )
    alerts: list[AlertSpec] = Field(
        default_factory=lambda: [AlertSpec(kind="log")],
        description="Channels; a log channel writes data_dir/alerts.jsonl unless given a path.",
    )
    sampling: SamplingSettings = SamplingSettings()
    executor: ExecutorSettings = ExecutorSettings()
    device: str = Field(
        default="auto",
        description="Where critics train and score in every step: auto (CUDA when present), "
        "cpu, cuda, cuda:1, ...",
    )
    retune: RetuneSettings = RetuneSettings()
    gate: GateSettings = GateSettings()
    drift: DriftSettings = DriftSettings()
    api_host: str = Field(
        default="127.0.0.1", description="Where `run` serves the status API ('0.0.0.0': all)."
    )
    api_port: int | None = Field(
        default=8750, ge=0, le=65535, description="Status API port; None turns the API off."
    )
    public_url: str | None = Field(
        default=None,
        description="The status API's address as people reach it (links in alerts); None: "
        "http://api_host:api_port.",
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
    retry_backoff_s: float = Field(
        default=60.0, ge=0, le=86400, description="Doubles with each try, up to a day."
    )

    @field_validator("database_url")
    @classmethod
    def _a_database_url(cls, url: str | None) -> str | None:
        if url is None:
            return url
        try:
            make_url(url)
        except ArgumentError:
            raise ValueError(
                "not a SQLAlchemy database URL (e.g. postgresql+psycopg://user@host:5432/eliq)"
            ) from None
        return url

    @model_validator(mode="before")
    @classmethod
    def _no_moved_keys(cls, data: Any) -> Any:
        return refuse_moved_keys(data, MOVED_KEYS)

    @model_validator(mode="before")
    @classmethod
    def _one_device(cls, data: Any) -> Any:
        """``device`` is the one device setting: ``retune.train.device``, as a dump of these
        settings writes it, is taken as it and refused when it names another."""
        retune = data.get("retune") if isinstance(data, dict) else None
        if not isinstance(retune, dict) or not isinstance(retune.get("train"), dict):
            return data
        train = dict(retune["train"])
        if "device" not in train:
            return data
        device = train.pop("device")
        data = dict(data) | {"retune": dict(retune) | {"train": train}}
        if data.setdefault("device", device) != device:
            raise ValueError(
                f"retune.train.device is {device!r} but device is {data['device']!r}: "
                "one device serves every step, set `device` alone"
            )
        return data

    @model_validator(mode="after")
    def _the_retune_trains_on_the_device(self) -> DaemonSettings:
        train = self.retune.train.model_copy(update={"device": self.device})
        self.retune = self.retune.model_copy(update={"train": train})
        return self

    @property
    def state_url(self) -> str:
        return self.database_url or f"sqlite:///{(self.data_dir / 'state.db').resolve()}"

    @property
    def tracking_uri(self) -> str:
        """The MLflow store's tracking URI (its settings', else SQLite in the data dir)."""
        given = self.critic_store.settings.get("tracking_uri")
        return given or f"sqlite:///{(self.data_dir / 'mlflow.db').resolve()}"

    @property
    def model_name(self) -> str:
        """The MLflow store's registered model."""
        return self.critic_store.settings.get("model_name", "eliq-critic")

    def critic_store_settings(self) -> dict[str, Any]:
        """What the critic store is created with: its settings, and for MLflow the
        embedded defaults (a SQLite store and artifacts under the data dir; a tracking
        server keeps artifacts where it is configured to)."""
        settings = dict(self.critic_store.settings)
        if self.critic_store.kind != "mlflow":
            return settings
        settings |= {"tracking_uri": self.tracking_uri, "model_name": self.model_name}
        settings.setdefault("experiment", "eliq-critic")
        served = self.tracking_uri.startswith(("http://", "https://", "databricks"))
        if not served:
            settings.setdefault("artifact_root", str(self.artifact_root))
        return settings

    @property
    def base_url(self) -> str:
        if self.public_url:
            return self.public_url.rstrip("/")
        host = "127.0.0.1" if self.api_host in ("0.0.0.0", "::") else self.api_host
        return f"http://{host}:{self.api_port or 8750}"

    @property
    def evidently_path(self) -> Path:
        return self.evidently_workspace or self.data_dir / "evidently"

    @property
    def artifact_root(self) -> Path:
        return (self.data_dir / "mlartifacts").resolve()

    def registry_specs(self) -> list[RegistrySpec]:
        """The registries to poll; none configured: the demo registry under data_dir."""
        demo = {"root": str(self.data_dir / "registry"), "name": DEMO_REGISTRY}
        default = [RegistrySpec(name=DEMO_REGISTRY, kind="local", interval_s=60.0, settings=demo)]
        return self.registries if self.registries is not None else default
