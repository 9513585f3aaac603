"""A diffusers pipeline as a generator: :class:`eliq.generation.DiffusersSampler`, loaded
from a release's hub id and revision, a local folder, or MLflow model artifacts
(``models:/name/version``, downloaded first), safetensors only and without remote code.

A release found on the Hub (``hub=True``) is always fetched from the Hub into its cache,
configs, tokenizers and safetensors weights only: registry metadata names a repository,
never a path on this machine (diffusers alone would load a local folder of the same name).

A single-file checkpoint (``single_file=True``, as Civitai hosts them) is downloaded from
its URL into ``download_dir`` (the release's folder; the token of ``token_env`` goes to
that URL's origin only) and mapped onto the component configs of ``config``: a diffusers
folder or hub id of the same architecture, by default the reference model of its
``base_model`` (``SINGLE_FILE_BASES``).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx

from adapters.http import HttpClient
from eliq.generation import DiffusersSampler, UnsafeCheckpointError
from eliq.hub_ids import is_repo_id

MLFLOW_SCHEMES = ("models:/", "runs:/", "mlflow-artifacts:/")
HUB_FILES = ["*.json", "*.txt", "*.model", "*.safetensors"]  # never a pickle


# Civitai's base models -> (pipeline class, hub id of a diffusers model with its configs)
SINGLE_FILE_BASES = {
    "SD 1.5": ("StableDiffusionPipeline", "stable-diffusion-v1-5/stable-diffusion-v1-5"),
    "SD 2.1": ("StableDiffusionPipeline", "stabilityai/stable-diffusion-2-1"),
    "SDXL 1.0": ("StableDiffusionXLPipeline", "stabilityai/stable-diffusion-xl-base-1.0"),
    "Pony": ("StableDiffusionXLPipeline", "stabilityai/stable-diffusion-xl-base-1.0"),
    "Illustrious": ("StableDiffusionXLPipeline", "stabilityai/stable-diffusion-xl-base-1.0"),
}


def diffusers_generator(
    ref: str | Path, revision: str | None = None, hub: bool = False, **settings: Any
) -> DiffusersSampler:
    """``settings``: ``device``, ``dtype``, ``batch_size``, ``default_steps``,
    ``default_guidance``, ``size``; for a single file also ``download_dir``, ``file``,
    ``base_model``, ``config``, ``pipeline``, ``token_env`` and ``http``."""
    settings.pop("mlflow_source", None)  # a loader option for other generators
    if settings.pop("single_file", False):
        return _single_file(str(ref), revision, **settings)
    if hub:
        return DiffusersSampler.from_pretrained(hub_snapshot(str(ref), revision), **settings)
    if str(ref).startswith(MLFLOW_SCHEMES):
        return DiffusersSampler.from_pretrained(_pipeline_folder(str(ref)), **settings)
    return DiffusersSampler.from_pretrained(ref, revision=revision, **settings)


def _single_file(
    url: str,
    revision: str | None,
    download_dir: str | Path | None = None,
    file: str | None = None,
    base_model: str | None = None,
    config: str | None = None,
    pipeline: str | None = None,
    token_env: str | None = None,
    http: dict | None = None,
    **settings: Any,
) -> DiffusersSampler:
    if download_dir is None:
        raise ValueError("a single-file checkpoint needs a download_dir to be fetched into")
    name = Path(file or f"{revision or 'checkpoint'}.safetensors").name
    if not name.endswith(".safetensors"):
        raise UnsafeCheckpointError(f"{url}: {name} is not safetensors; eliq never unpickles")
    default_pipeline, default_config = SINGLE_FILE_BASES.get(base_model or "", (None, None))
    if config is not None:  # the user's config names its own architecture
        default_pipeline = _pipeline_class(config) or default_pipeline
    config = config or default_config
    if config is None:
        raise ValueError(
            f"no diffusers config for base model {base_model!r}: set the generator's "
            f"'config' (a diffusers folder or hub id); known: {sorted(SINGLE_FILE_BASES)}"
        )
    origin = httpx.URL(url).copy_with(path="/", query=None, fragment=None)
    with HttpClient.create(str(origin), http, token_env) as client:
        target = client.download(url, Path(download_dir) / name)  # kept: fetched once
    return DiffusersSampler.from_single_file(
        target, config, pipeline or default_pipeline or "StableDiffusionPipeline", **settings
    )


def _pipeline_class(config: str) -> str | None:
    """The pipeline class a local diffusers folder was saved from, if it says."""
    index = Path(config) / "model_index.json"
    return json.loads(index.read_text()).get("_class_name") if index.is_file() else None


def hub_snapshot(repo_id: str, revision: str | None) -> Path:
    """The Hub repository ``repo_id`` at ``revision``, downloaded (or found) in the cache."""
    if not is_repo_id(repo_id):
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
