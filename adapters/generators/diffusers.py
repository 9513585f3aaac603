"""A diffusers pipeline as a generator: :class:`eliq.generation.DiffusersSampler`, loaded
from a release's hub id and revision, a local folder, or MLflow model artifacts
(``models:/name/version``, downloaded first), safetensors only and without remote code.

A release found on the Hub (``hub=True``) is always fetched from the Hub into its cache,
configs, tokenizers and safetensors weights only: registry metadata names a repository,
never a path on this machine (diffusers alone would load a local folder of the same name).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from eliq.generation import DiffusersSampler

MLFLOW_SCHEMES = ("models:/", "runs:/", "mlflow-artifacts:/")
HUB_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,95}/[A-Za-z0-9][A-Za-z0-9_.-]{0,95}")
HUB_FILES = ["*.json", "*.txt", "*.model", "*.safetensors"]  # never a pickle


def diffusers_generator(
    ref: str | Path, revision: str | None = None, hub: bool = False, **settings: Any
) -> DiffusersSampler:
    """``settings``: ``device``, ``dtype``, ``batch_size``, ``default_steps``,
    ``default_guidance``, ``size``."""
    settings.pop("mlflow_source", None)  # a loader option for other generators
    if hub:
        return DiffusersSampler.from_pretrained(hub_snapshot(str(ref), revision), **settings)
    if str(ref).startswith(MLFLOW_SCHEMES):
        return DiffusersSampler.from_pretrained(_pipeline_folder(str(ref)), **settings)
    return DiffusersSampler.from_pretrained(ref, revision=revision, **settings)


def hub_snapshot(repo_id: str, revision: str | None) -> Path:
    """The Hub repository ``repo_id`` at ``revision``, downloaded (or found) in the cache."""
    if not HUB_ID.fullmatch(repo_id) or ".." in repo_id:
        raise ValueError(f"{repo_id!r} is not a Hugging Face Hub model id (owner/name)")
    from huggingface_hub import snapshot_download

    return Path(snapshot_download(repo_id, revision=revision, allow_patterns=HUB_FILES))


def _pipeline_folder(uri: str) -> Path:
    """Download MLflow artifacts and find the pipeline folder (with model_index.json)."""
    from mlflow.artifacts import download_artifacts

    root = Path(download_artifacts(artifact_uri=uri))
    found = sorted(root.rglob("model_index.json"), key=lambda p: len(p.parts))
    if not found:
        raise FileNotFoundError(f"{uri}: no diffusers pipeline (model_index.json) in its artifacts")
    return found[0].parent
