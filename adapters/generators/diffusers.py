"""A diffusers pipeline as a generator: :class:`eliq.generation.DiffusersSampler`, loaded
from a release's hub id and revision, a local folder, or MLflow model artifacts
(``models:/name/version``, downloaded first), safetensors only and without remote code."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from eliq.generation import DiffusersSampler

MLFLOW_SCHEMES = ("models:/", "runs:/", "mlflow-artifacts:/")


def diffusers_generator(
    ref: str | Path, revision: str | None = None, **settings: Any
) -> DiffusersSampler:
    """``settings``: ``device``, ``dtype``, ``batch_size``, ``default_steps``,
    ``default_guidance``, ``size``."""
    settings.pop("mlflow_source", None)  # a loader option for other generators
    if str(ref).startswith(MLFLOW_SCHEMES):
        return DiffusersSampler.from_pretrained(_pipeline_folder(str(ref)), **settings)
    return DiffusersSampler.from_pretrained(ref, revision=revision, **settings)


def _pipeline_folder(uri: str) -> Path:
    """Download MLflow artifacts and find the pipeline folder (with model_index.json)."""
    from mlflow.artifacts import download_artifacts

    root = Path(download_artifacts(artifact_uri=uri))
    found = sorted(root.rglob("model_index.json"), key=lambda p: len(p.parts))
    if not found:
        raise FileNotFoundError(f"{uri}: no diffusers pipeline (model_index.json) in its artifacts")
    return found[0].parent
