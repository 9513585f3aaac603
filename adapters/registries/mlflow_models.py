"""An MLflow model registry as a registry of generators: teams that register their own
text-to-image models get each new model version treated as a release.

Settings: ``models`` (registered model names to watch) or, without it, every registered
model tagged ``eliq.generator=true``; ``tracking_uri`` / ``registry_uri`` (default: MLflow's
own resolution, e.g. ``MLFLOW_TRACKING_URI``). Version numbers only grow, so the cursor is
the last version returned per model. A version's loader names the generator that renders
it: its ``eliq.loader`` tag (default ``diffusers``), with the version's artifacts as ``ref``
(``models:/<name>/<version>``) for the generator to download.
"""

from __future__ import annotations

from datetime import UTC, datetime

from adapters.registries.base import Cursor, Loader, Release

GENERATOR_TAG = "eliq.generator"
LOADER_TAG = "eliq.loader"


class MlflowRegistry:
    def __init__(
        self,
        models: list[str] | None = None,
        tracking_uri: str | None = None,
        registry_uri: str | None = None,
        name: str = "mlflow",
    ) -> None:
        from mlflow import MlflowClient

        self.client = MlflowClient(tracking_uri=tracking_uri, registry_uri=registry_uri)
        self.models = models
        self.name = name

    def poll(self, cursor: Cursor | None) -> tuple[list[Release], Cursor]:
        last: dict[str, int] = {k: int(v) for k, v in (cursor or {}).get("versions", {}).items()}
        releases: list[Release] = []
        for model in self._watched():
            versions = self.client.search_model_versions(f"name = '{_quoted(model)}'")
            for version in sorted(versions, key=lambda v: int(v.version)):
                number = int(version.version)
                if number <= last.get(model, 0):
                    continue
                releases.append(self._release(model, version))
                last[model] = number
        releases.sort(key=lambda r: (r.appeared_at, r.id))
        return releases, {"versions": last}

    def _watched(self) -> list[str]:
        if self.models is not None:
            return list(self.models)
        found = self.client.search_registered_models(f"tags.`{GENERATOR_TAG}` = 'true'")
        return sorted(m.name for m in found)

    def _release(self, model: str, version) -> Release:
        tags = dict(version.tags or {})
        return Release(
            id=f"mlflow:{model}/{version.version}",
            source=self.name,
            name=model,
            appeared_at=datetime.fromtimestamp(version.creation_timestamp / 1000, UTC),
            loader=Loader(
                kind=tags.get(LOADER_TAG, "diffusers"),
                ref=f"models:/{model}/{version.version}",
                revision=str(version.version),
                options={"mlflow_source": version.source},
            ),
            metadata={
                "run_id": version.run_id,
                "description": version.description,
                "tags": tags,
                "aliases": list(getattr(version, "aliases", []) or []),
            },
        )


def _quoted(name: str) -> str:
    return name.replace("'", "\\'")
