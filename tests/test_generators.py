import base64
import io
import json

import numpy as np
import pytest
from PIL import Image
from werkzeug import Response

from adapters import create_generator, create_registry
from adapters.http import MalformedResponse
from eliq.generation import UnsafeCheckpointError
from eliq.pairs.positives import ManifestError
from tests.conftest import SHARED
from tests.tiny_diffusers import build_tiny_pipeline

FAST = {"retry": {"attempts": 3, "backoff_s": 0.01}, "timeout_s": 5}


def png_bytes(colour=(200, 30, 30), size=(32, 24)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, colour).save(buffer, format="PNG")
    return buffer.getvalue()


def test_diffusers_generator_renders_a_local_pipeline_and_refuses_pickles(tmp_path):
    folder = build_tiny_pipeline(tmp_path / "tiny-sd")
    generator = create_generator(
        "diffusers", ref=str(folder), device="cpu", default_steps=4, size=(64, 64)
    )
    prompts, seeds = ["a red apple", "a blue car"], [1, 2]
    first = list(generator.sample(prompts, seeds))
    repeat = list(generator.sample(prompts, seeds, steps=4))
    alone = list(generator.sample(prompts[:1], seeds[:1], steps=4))
    assert [(p, s) for p, s, _ in first] == list(zip(prompts, seeds, strict=True))
    assert first[0][2].size == (64, 64)
    for (_, _, a), (_, _, b) in zip(first, repeat, strict=True):  # same seeds and batch
        assert np.array_equal(np.asarray(a), np.asarray(b))
    # across batch shapes float kernels may round differently: the same image within a tolerance
    difference = np.abs(np.asarray(first[0][2], float) - np.asarray(alone[0][2], float))
    assert difference.mean() < 2.0 and difference.max() <= 32
    other = np.abs(np.asarray(first[1][2], float) - np.asarray(alone[0][2], float))
    assert other.mean() > 5 * max(difference.mean(), 0.1)  # another seed is another image
    pickled = build_tiny_pipeline(tmp_path / "pickled", safe=False)
    with pytest.raises(UnsafeCheckpointError):
        create_generator("diffusers", ref=str(pickled), device="cpu")


def test_outputs_generator_replays_one_release_of_a_split_manifest():
    releases, _ = create_registry(
        "local",
        root=SHARED / "datasets" / "agiqa3k",
        manifest="scores.csv",
        split_column="generator",
        image_column="name",
        images="images",
        order=["DALLE2_normal"],
    ).poll(None)
    loader = releases[0].loader
    generator = create_generator(loader.kind, ref=loader.ref, **loader.options)
    assert len(generator.positives) == releases[0].metadata["images"]
    assert all(p.key.startswith("DALLE2_normal") for p in generator.positives)
    prompt = generator.positives[0].prompt
    rows = list(generator.sample([prompt]))
    assert rows and all(p == prompt for p, _, _ in rows)
    assert rows[0][2].mode == "RGB"


def test_outputs_generator_skips_an_unreadable_image(tmp_path, caplog):
    (tmp_path / "good.png").write_bytes(png_bytes())
    (tmp_path / "bad.png").write_bytes(b"not a png")
    (tmp_path / "manifest.csv").write_text("image,prompt,seed\ngood.png,a cat,1\nbad.png,a dog,2\n")
    generator = create_generator("outputs", ref=tmp_path, manifest=tmp_path / "manifest.csv")
    rows = list(generator.sample())
    assert [(p, s) for p, s, _ in rows] == [("a cat", 1)]
    assert "bad.png" in caplog.text


def openai_server(httpserver, answers):
    requests = []

    def generate(request):
        requests.append(request)
        answer = answers.pop(0)
        return (
            answer
            if isinstance(answer, Response)
            else Response(json.dumps(answer), content_type="application/json")
        )

    httpserver.expect_request("/v1/images/generations", method="POST").respond_with_handler(
        generate
    )
    return requests


def test_http_image_api_with_b64_and_url_answers(httpserver, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    httpserver.expect_request("/files/1.png").respond_with_data(
        png_bytes((0, 0, 255)), content_type="image/png"
    )
    requests = openai_server(
        httpserver,
        [
            Response("overloaded", status=503),
            {"created": 1, "data": [{"b64_json": base64.b64encode(png_bytes()).decode()}]},
            {"created": 2, "data": [{"url": httpserver.url_for("/files/1.png")}]},
        ],
    )
    generator = create_generator(
        "http", endpoint=httpserver.url_for(""), ref="sd-test", size="32x24", http=FAST
    )
    rows = list(generator.sample(["a red square", "a blue square"], [7, 8]))
    assert [r[2].getpixel((0, 0)) for r in rows] == [(200, 30, 30), (0, 0, 255)]
    body = requests[1].get_json()
    assert body == {
        "model": "sd-test",
        "prompt": "a red square",
        "n": 1,
        "size": "32x24",
        "response_format": "b64_json",
        "seed": 7,
    }
    assert requests[1].headers["Authorization"] == "Bearer sk-test"


@pytest.mark.parametrize(
    "answer, message",
    [
        ({"data": []}, "no data"),
        ({"data": [{"b64_json": "***"}]}, "not base64"),
        ({"data": [{"b64_json": base64.b64encode(b"text").decode()}]}, "not a readable image"),
        ({"data": [{"revised_prompt": "x"}]}, "neither"),
        (Response('{"data": [', content_type="application/json"), "not JSON"),
    ],
)
def test_http_image_api_malformed_answers(httpserver, answer, message):
    openai_server(httpserver, [answer])
    generator = create_generator("http", endpoint=httpserver.url_for(""), ref="m", http=FAST)
    with pytest.raises(MalformedResponse, match=message):
        list(generator.sample(["a cat"], [1]))


def test_an_outputs_release_may_not_name_files_outside_its_folder(tmp_path):
    release = tmp_path / "release"
    release.mkdir()
    (tmp_path / "secret.png").write_bytes(png_bytes())
    (release / "manifest.csv").write_text("image,prompt\n../secret.png,a cat\n")
    with pytest.raises(ManifestError, match="lies outside"):
        create_generator("outputs", ref=release, manifest=release / "manifest.csv")


def test_a_hub_release_is_fetched_from_the_hub_never_from_a_local_folder(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    build_tiny_pipeline(tmp_path / "lab" / "tiny")  # a local folder named like the repo
    with pytest.raises(Exception) as offline:  # noqa: PT011 - the Hub's own offline error
        create_generator("diffusers", ref="lab/tiny", hub=True, device="cpu")
    assert "offline" in f"{type(offline.value).__name__} {offline.value}".lower()
    assert create_generator("diffusers", ref="lab/tiny", device="cpu")  # a folder, when asked
    for bad in ["/etc", "../../etc/x", "lab/../x", "lab", "a/b/c", "lab/tiny\n"]:
        with pytest.raises(ValueError, match="not a Hugging Face Hub model id"):
            create_generator("diffusers", ref=bad, hub=True, device="cpu")
