"""Adapters between eliq and the outside world, each created by name from configuration:

* registries find new generator releases: ``create_registry(name, **settings)``;
* generators sample a release on prompts: ``create_generator(name, **settings)``;
* alert channels tell people: ``create_alert_channel(name, **settings)``;
* critic stores register and promote critic versions: ``create_critic_store(name, **settings)``.

Third-party packages add their own through the entry-point groups ``eliq.registries``,
``eliq.generators``, ``eliq.alerts`` and ``eliq.critic_stores`` (see :mod:`eliq.plugins`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from adapters.critic_stores import CriticStore
from adapters.registries.base import Registry
from eliq.plugins import Plugins

REGISTRIES: Plugins[Callable[..., Registry]] = Plugins("registry", "eliq.registries")
GENERATORS: Plugins[Callable[..., Any]] = Plugins("generator", "eliq.generators")
ALERT_CHANNELS: Plugins[Callable[..., Any]] = Plugins("alert channel", "eliq.alerts")
CRITIC_STORES: Plugins[Callable[..., CriticStore]] = Plugins("critic store", "eliq.critic_stores")


def create_registry(name: str, /, **settings: Any) -> Registry:
    return REGISTRIES.get(name)(**settings)


def create_generator(name: str, /, **settings: Any) -> Any:
    return GENERATORS.get(name)(**settings)


def create_alert_channel(name: str, /, **settings: Any) -> Any:
    return ALERT_CHANNELS.get(name)(**settings)


def create_critic_store(name: str, /, **settings: Any) -> CriticStore:
    return CRITIC_STORES.get(name)(**settings)


def _mlflow_critic_store(**settings: Any) -> CriticStore:
    """MLflow's model registry (imported when chosen: the library does not need MLflow)."""
    from adapters.critic_stores.mlflow import MlflowCriticStore

    return MlflowCriticStore(**settings)


def _register_built_ins() -> None:
    from adapters.alerts.log import LogChannel
    from adapters.alerts.pagerduty import PagerDutyChannel
    from adapters.alerts.slack import SlackChannel
    from adapters.alerts.webhook import WebhookChannel
    from adapters.generators.diffusers import diffusers_generator
    from adapters.generators.http_api import HttpImageGenerator
    from adapters.generators.outputs import OutputsGenerator
    from adapters.registries.civitai import CivitaiRegistry
    from adapters.registries.huggingface import HuggingFaceRegistry
    from adapters.registries.local import LocalFolderRegistry
    from adapters.registries.mlflow_models import MlflowRegistry
    from adapters.registries.replicate import ReplicateRegistry

    CRITIC_STORES.register("mlflow")(_mlflow_critic_store)
    REGISTRIES.register("huggingface")(HuggingFaceRegistry)
    REGISTRIES.register("local")(LocalFolderRegistry)
    REGISTRIES.register("civitai")(CivitaiRegistry)
    REGISTRIES.register("replicate")(ReplicateRegistry)
    REGISTRIES.register("mlflow")(MlflowRegistry)
    GENERATORS.register("diffusers")(diffusers_generator)
    GENERATORS.register("http")(HttpImageGenerator)
    GENERATORS.register("outputs")(OutputsGenerator)
    for name, channel in {
        "log": LogChannel,
        "slack": SlackChannel,
        "webhook": WebhookChannel,
        "pagerduty": PagerDutyChannel,
    }.items():
        ALERT_CHANNELS.register(name)(channel)


_register_built_ins()
