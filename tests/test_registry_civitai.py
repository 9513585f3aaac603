import json
import time

import numpy as np
import pytest
from pytest_httpserver import HTTPServer
from werkzeug import Response

from adapters import create_generator, create_registry
from adapters.http import MalformedResponse
from daemon.composition import build_cycle
from daemon.settings import RegistrySpec
from daemon.state.tables import ReleaseState
from eliq.generation import UnsafeCheckpointError
from tests.daemon_helpers import fast_settings
from tests.tiny_diffusers import build_tiny_pipeline, save_single_file


class FakeCivitai:
    """``/api/v1/models`` shaped like Civitai's: ``items`` newest model first, each with its
    ``modelVersions``; ``metadata.nextCursor`` pagination; fields eliq does not read."""

    def __init__(self):
        self.models, self.requests, self.failures = [], [], []
        self.download_base = "https://civitai.example"

    def add(self, model_id, versions, safe=True):
        self.models.insert(
            0,
            {  # Newest first
                "id": model_id,
                "name": f"model {model_id}",
                "type": "Checkpoint",
                "nsfw": False,
                "tags": ["anime"],
                "creator": {"username": "someone", "image": None},
                "stats": {"downloadCount": 5, "rating": 4.9},
                "modelVersions": [
                    {
                        "id": vid,
                        "modelId": model_id,
                        "name": f"v{vid}",
                        "createdAt": f"2026-11-{day:02d}T10:00:00.000Z",
                        "publishedAt": f"2026-11-{day:02d}T12:00:00.000Z",
                        "baseModel": "SDXL 1.0",
                        "trainedWords": [],
                        "files": [
                            {
                                "name": f"m{vid}." + ("safetensors" if safe else "ckpt"),
                                "type": "Model",
                                "metadata": {"format": "SafeTensor" if safe else "PickleTensor"},
                                "downloadUrl": f"{self.download_base}/api/download/models/{vid}",
                            }
                        ],
                    }
                    for vid, day in versions
                ],
            },
        )

    def __call__(self, request):
        self.requests.append(request)
        if self.failures:
            failure = self.failures.pop(0)
            return failure if isinstance(failure, Response) else failure(request)
        limit = int(request.args.get("limit", 100))
        start = int(request.args.get("cursor", 0))
        page = self.models[start : start + limit]
        following = start + limit if start + limit < len(self.models) else None
        metadata = {"nextCursor": str(following)} if following else {}
        return Response(
            json.dumps({"items": page, "metadata": metadata}), content_type="application/json"
        )


@pytest.fixture
def civitai(httpserver):
    fake = FakeCivitai()
    httpserver.expect_request("/api/v1/models").respond_with_handler(fake)
    fake.url = httpserver.url_for("").rstrip("/")
    return fake


def registry(fake, **settings):
    return create_registry(
        "civitai", endpoint=fake.url, page_size=2, lookback_days=3650,
        http={"retry": {"attempts": 2, "backoff_s": 0.01}}, **settings,
    )  # fmt: skip


def test_each_model_version_is_a_release_across_pages_and_restarts(civitai):
    civitai.add(1, [(11, 1)])
    civitai.add(2, [(21, 2), (22, 3)])
    civitai.add(3, [(31, 4)], safe=False)
    first, cursor = registry(civitai, base_models=["SDXL 1.0"]).poll(None)
    assert [r.id for r in first] == ["civitai:1@11", "civitai:2@21", "civitai:2@22", "civitai:3@31"]
    assert first[0].loader.ref.endswith("/models/11") and first[0].loader.options["single_file"]
    assert first[3].metadata["pickle_only"] and not first[0].metadata["pickle_only"]
    query = civitai.requests[0].args
    assert query["sort"] == "Newest" and query["types"] == "Checkpoint"
    assert query["baseModels"] == "SDXL 1.0"
    assert any(r.args.get("cursor") == "2" for r in civitai.requests)

    civitai.add(4, [(41, 5)])
    second, cursor = registry(civitai).poll(json.loads(json.dumps(cursor)))
    assert [r.id for r in second] == ["civitai:4@41"]
    assert registry(civitai).poll(cursor)[0] == []


def test_malformed_pages_raise(civitai):
    civitai.failures.append(Response('{"items": {}}', content_type="application/json"))
    with pytest.raises(MalformedResponse, match="items"):
        registry(civitai).poll(None)
    civitai.failures.append(Response('{"items": [{"id": "x"}]}', content_type="application/json"))
    with pytest.raises(MalformedResponse, match="not understood"):
        registry(civitai).poll(None)


@pytest.mark.parametrize(
    "failure",
    [
        Response("slow down", status=429, headers={"Retry-After": "0"}),
        Response("bad gateway", status=502),
    ],
)
def test_rate_limits_and_server_errors_are_retried(civitai, failure):
    civitai.add(1, [(11, 1)])
    civitai.failures.append(failure)
    releases, _ = registry(civitai).poll(None)
    assert [r.id for r in releases] == ["civitai:1@11"]
    assert len(civitai.requests) == 2


def test_a_truncated_page_raises(civitai):
    civitai.failures.append(Response('{"items": [{"id": 1, "na', content_type="application/json"))
    with pytest.raises(MalformedResponse, match="not JSON"):
        registry(civitai).poll(None)


def test_a_timeout_is_retried(civitai):
    civitai.add(1, [(11, 1)])

    def late(request):
        time.sleep(4.0)  # the client gives up first (at 1.5 s, ample when loaded), retries
        return Response("[]")

    civitai.failures.append(late)
    made = create_registry(
        "civitai", endpoint=civitai.url, lookback_days=3650,
        http={"timeout_s": 1.5, "retry": {"attempts": 4, "backoff_s": 0.2}},
    )  # fmt: skip
    assert [r.id for r in made.poll(None)[0]] == ["civitai:1@11"]


def test_a_single_file_release_is_downloaded_into_its_folder_and_sampled(
    civitai, httpserver, tmp_path, monkeypatch
):
    """The whole way of a Civitai checkpoint: listed, downloaded from its URL (which
    redirects to a file server elsewhere, as Civitai's does), mapped onto a diffusers config
    and rendered; the token reaches Civitai's origin only."""
    monkeypatch.setenv("CIVITAI_API_TOKEN", "civ-secret")
    tiny = build_tiny_pipeline(tmp_path / "tiny")
    checkpoint = save_single_file(tiny, tmp_path / "served.safetensors")
    cdn = HTTPServer(host="127.0.0.1", port=0)
    cdn.start()
    seen = {}
    try:
        cdn.expect_request("/files/m11.safetensors").respond_with_handler(
            lambda request: (
                seen.setdefault("cdn", request.headers.get("Authorization"))
                or Response(checkpoint.read_bytes(), content_type="application/octet-stream")
            )
        )
        httpserver.expect_request("/api/download/models/11").respond_with_handler(
            lambda request: (
                seen.setdefault("origin", request.headers.get("Authorization"))
                and Response(
                    status=302, headers={"Location": cdn.url_for("/files/m11.safetensors")}
                )
            )
        )
        civitai.download_base = civitai.url
        civitai.add(1, [(11, 1)])
        civitai.add(2, [(21, 2)], safe=False)
        releases = registry(civitai).poll(None)[0]
        weights = tmp_path / "release" / "weights"
        render = {"device": "cpu", "default_steps": 2, "size": (64, 64)}
        loader = releases[0].loader
        generator = create_generator(
            loader.kind, ref=loader.ref, revision=loader.revision, config=str(tiny),
            download_dir=weights, **loader.options, **render,
        )  # fmt: skip
        ((prompt, seed, image),) = generator.sample(["a red apple"], [3])
        assert (prompt, seed, image.size) == ("a red apple", 3, (64, 64))
        assert (weights / "m11.safetensors").read_bytes() == checkpoint.read_bytes()
        assert seen == {"origin": "Bearer civ-secret", "cdn": None}
        folder = create_generator("diffusers", ref=str(tiny), **render)
        ((_, _, expected),) = folder.sample(["a red apple"], [3])
        difference = np.abs(np.asarray(image, float) - np.asarray(expected, float))
        assert difference.mean() < 1.0  # the same weights, whichever file they came from

        pickled = releases[1].loader
        with pytest.raises(UnsafeCheckpointError, match="not safetensors"):
            create_generator(
                pickled.kind, ref=pickled.ref, revision=pickled.revision, config=str(tiny),
                download_dir=weights, **pickled.options, **render,
            )  # fmt: skip
        assert not (weights / "m21.ckpt").exists()
    finally:
        cdn.clear()
        cdn.stop()


def test_the_daemon_samples_a_civitai_release_with_its_checkpoint_in_the_release_folder(
    civitai, httpserver, tmp_path
):
    tiny = build_tiny_pipeline(tmp_path / "tiny")
    checkpoint = save_single_file(tiny, tmp_path / "served.safetensors")
    httpserver.expect_request("/api/download/models/11").respond_with_data(
        checkpoint.read_bytes(), content_type="application/octet-stream"
    )
    civitai.download_base = civitai.url
    civitai.add(1, [(11, 1)])
    spec = RegistrySpec(
        name="civitai",
        kind="civitai",
        settings={"endpoint": civitai.url, "lookback_days": 3650, "token_env": None},
        generator={"config": str(tiny), "device": "cpu", "default_steps": 2, "size": [64, 64]},
    )
    settings = fast_settings(tmp_path, tmp_path, registries=[spec])
    settings.sampling.prompts = 2
    cycle = build_cycle(settings)
    assert cycle.discover("civitai") == 1
    (release,) = cycle.pipeline.pending()
    assert cycle.pipeline.advance(release), cycle.ports.store.release(release.id).last_error
    sampled = cycle.ports.store.release(release.id)
    assert sampled.state == ReleaseState.sampled
    folder = cycle.ports.workspace(sampled).root
    assert (folder / "weights" / "m11.safetensors").stat().st_size == checkpoint.stat().st_size
    assert len(list((folder / "samples").glob("*.png"))) == 2
