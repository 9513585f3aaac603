"""The critic as ``mlflow models serve`` serves it, attacked from its port: MLflow's own
scoring app over the pyfunc model, a tiny real critic behind it. By default it reads no
server path, says nothing of which paths exist, never opens a FIFO and never returns a
stack trace; reading paths is an opt-in limited to configured folders."""

import base64
import io
import json
import os
import threading

import mlflow
import pytest
from fastapi.testclient import TestClient
from mlflow.pyfunc import scoring_server
from PIL import Image

from daemon.critic_pyfunc import IMAGE_ROOTS_ENV
from daemon.critic_registry import PYFUNC, SIGNATURE
from eliq.critic import Critic, CriticConfig
from tests.conftest import photo_path


@pytest.fixture(scope="module")
def model_folder(tmp_path_factory):
    root = tmp_path_factory.mktemp("served")
    Critic.from_config(CriticConfig(crops=2, dim=32, decoder_layers=1), "cpu").save_pretrained(
        root / "checkpoint"
    )
    mlflow.pyfunc.save_model(
        root / "model",
        python_model=str(PYFUNC),
        artifacts={"checkpoint": str(root / "checkpoint")},
        signature=SIGNATURE,
    )
    return root / "model"


def serve(model_folder, monkeypatch, roots: str | None = None) -> TestClient:
    if roots is None:
        monkeypatch.delenv(IMAGE_ROOTS_ENV, raising=False)
    else:
        monkeypatch.setenv(IMAGE_ROOTS_ENV, roots)
    monkeypatch.setenv("ELIQ_DEVICE", "cpu")
    return TestClient(scoring_server.init(mlflow.pyfunc.load_model(str(model_folder))))


def invoke(client: TestClient, images, prompts=None):
    records = [
        {"image": image} | ({} if prompts is None else {"prompt": prompts[i]})
        for i, image in enumerate(images)
    ]
    body = json.dumps({"dataframe_records": records})  # ASCII: a lone surrogate as \ud800
    return client.post("/invocations", content=body, headers={"Content-Type": "application/json"})


def png_base64(size=(64, 48), path=None) -> str:
    if path is not None:
        return base64.b64encode(path.read_bytes()).decode()
    buffer = io.BytesIO()
    Image.new("RGB", size, (120, 40, 200)).save(buffer, format="PNG")
    return base64.b64encode(buffer.getvalue()).decode()


def test_by_default_it_scores_bytes_and_reads_no_server_path(model_folder, monkeypatch, tmp_path):
    client = serve(model_folder, monkeypatch)
    scored = invoke(client, [png_base64(path=photo_path("coffee.png"))], ["a cup of coffee"])
    assert scored.status_code == 200, scored.text
    (row,) = scored.json()["predictions"]
    assert isinstance(row["quality"], float) and isinstance(row["alignment"], float)

    (tmp_path / "folder").mkdir()
    os.mkfifo(tmp_path / "fifo")
    for existing in [photo_path("coffee.png"), tmp_path / "folder", tmp_path / "fifo"]:
        twin = existing.with_name("missing" + existing.name)  # same characters, no file
        answers = [invoke(client, [str(path)]) for path in (existing, twin)]
        for answer in answers:
            assert answer.status_code == 400
            assert "stack_trace" not in answer.json() and "Traceback" not in answer.text
        # what comes back depends on the string alone, never on what the server's disk holds
        messages = [a.json()["message"].split("Error: ")[-1] for a in answers]
        assert messages[0] == messages[1], messages


def test_a_bad_image_is_a_400_naming_its_row_without_a_trace(model_folder, monkeypatch):
    client = serve(model_folder, monkeypatch)
    strip = png_base64(size=(1024, 1))
    answer = invoke(client, [png_base64(), strip])
    assert answer.status_code == 400
    assert "image 1: 1024x1 pixels: aspect ratio 1024:1" in answer.json()["message"]
    corrupt = base64.b64encode(b"\x89PNG\r\n\x1a\n not really").decode()
    answer = invoke(client, [corrupt])
    assert answer.status_code == 400 and "image 0:" in answer.json()["message"]
    assert "stack_trace" not in answer.json()
    answer = invoke(client, [png_base64()], ["bad \ud800 prompt"])
    assert answer.status_code == 400 and "stack_trace" not in answer.json()


def test_paths_are_an_opt_in_limited_to_regular_files_in_the_configured_folders(
    model_folder, monkeypatch, tmp_path
):
    allowed, outside = tmp_path / "allowed", tmp_path / "outside"
    allowed.mkdir()
    outside.mkdir()
    inside = allowed / "coffee.png"
    inside.write_bytes(photo_path("coffee.png").read_bytes())
    (outside / "secret.png").write_bytes(photo_path("chelsea.png").read_bytes())
    (allowed / "link.png").symlink_to(outside / "secret.png")
    os.mkfifo(allowed / "fifo.png")
    client = serve(model_folder, monkeypatch, roots=str(allowed))

    assert invoke(client, [str(inside)]).status_code == 200
    for refused, reason in [
        (outside / "secret.png", "not base64-encoded image bytes nor a path"),
        (allowed / "link.png", "not base64-encoded image bytes nor a path"),  # resolves outside
        (allowed, "not a regular file"),
        (allowed / "missing.png", "no readable file"),
    ]:
        answer = invoke(client, [str(refused)])
        assert answer.status_code == 400 and reason in answer.json()["message"], refused

    answers = []
    worker = threading.Thread(
        target=lambda: answers.append(invoke(client, [str(allowed) + "/fifo.png"]))
    )
    worker.start()
    worker.join(timeout=120)  # before the fix, opening the FIFO blocked the worker for good
    assert not worker.is_alive(), "the served model blocked on a FIFO"
    assert answers[0].status_code == 400 and "not a regular file" in answers[0].json()["message"]
