import json

import pytest

from adapters import create_generator, create_registry
from tests.tiny_diffusers import build_tiny_pipeline


@pytest.fixture
def tracking(tmp_path):
    import mlflow

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    client = mlflow.MlflowClient(tracking_uri=uri, registry_uri=uri)
    client.create_registered_model("team-gen", tags={"eliq.generator": "true"})
    client.create_registered_model("not-a-generator")
    return uri, client


def test_new_model_versions_are_releases_and_render(tracking, tmp_path, monkeypatch):
    uri, client = tracking
    pipeline = build_tiny_pipeline(tmp_path / "pipeline")
    client.create_model_version("team-gen", source=str(pipeline), tags={"team": "vision"})
    client.create_model_version("not-a-generator", source=str(tmp_path))
    registry = create_registry("mlflow", tracking_uri=uri, registry_uri=uri)
    first, cursor = registry.poll(None)
    assert [r.id for r in first] == ["mlflow:team-gen/1"]
    assert first[0].loader.kind == "diffusers" and first[0].loader.ref == "models:/team-gen/1"
    assert first[0].metadata["tags"] == {"team": "vision"}

    client.create_model_version("team-gen", source=str(pipeline))
    restarted = create_registry("mlflow", models=["team-gen"], tracking_uri=uri, registry_uri=uri)
    second, cursor = restarted.poll(json.loads(json.dumps(cursor)))
    assert [r.id for r in second] == ["mlflow:team-gen/2"]
    assert restarted.poll(cursor)[0] == []

    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)  # where the generator downloads from
    monkeypatch.setenv("MLFLOW_REGISTRY_URI", uri)
    loader = second[0].loader
    generator = create_generator(
        loader.kind, ref=loader.ref, device="cpu", default_steps=3, size=(64, 64)
    )
    ((prompt, seed, image),) = list(generator.sample(["a red apple"], [3]))
    assert image.size == (64, 64)
