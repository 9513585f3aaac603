"""The critic as ``mlflow models serve`` serves it, attacked from its port: MLflow's own
scoring app over the pyfunc model, a tiny real critic behind it. By default it reads no
server path, says nothing of which paths exist, never opens a FIFO and never returns a
stack trace; reading paths is an opt-in limited to configured folders. A bad row is an
error on that row, not a failed request, and the JSON never holds ``NaN``."""

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

from adapters.critic_stores.mlflow import PYFUNC, SIGNATURE, input_example
from adapters.critic_stores.mlflow_pyfunc import IMAGE_ROOTS_ENV
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
        input_example=input_example(),  # validated by MLflow: it loads the model and scores it
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


def predictions(answer) -> list[dict]:
    assert answer.status_code == 200, answer.text
    assert "NaN" not in answer.text and "Infinity" not in answer.text
    return json.loads(answer.text)["predictions"]  # strict JSON: a NaN would fail here


def test_by_default_it_scores_bytes_and_reads_no_server_path(model_folder, monkeypatch, tmp_path):
    client = serve(model_folder, monkeypatch)
    (row,) = predictions(
        invoke(client, [png_base64(path=photo_path("coffee.png"))], ["a cup of coffee"])
    )
    assert isinstance(row["quality"], float) and isinstance(row["alignment"], float)
    assert row["error"] is None

    (tmp_path / "folder").mkdir()
    os.mkfifo(tmp_path / "fifo")
    for existing in [photo_path("coffee.png"), tmp_path / "folder", tmp_path / "fifo"]:
        twin = existing.with_name("missing" + existing.name)  # same characters, no file
        rows = [predictions(invoke(client, [str(path)]))[0] for path in (existing, twin)]
        for row in rows:
            assert row["quality"] is None and row["alignment"] is None
            assert "Traceback" not in row["error"]
        # what comes back depends on the string alone, never on what the server's disk holds
        assert rows[0]["error"] == rows[1]["error"], rows


def test_a_bad_row_is_an_error_on_that_row_and_the_others_are_scored(model_folder, monkeypatch):
    client = serve(model_folder, monkeypatch)
    strip = png_base64(size=(1024, 1))
    corrupt = base64.b64encode(b"\x89PNG\r\n\x1a\n not really").decode()
    images = [png_base64(), strip, corrupt, png_base64(), png_base64()]
    prompts = ["a purple square", "a strip", "noise", "bad \ud800 prompt", None]
    rows = predictions(invoke(client, images, prompts))
    assert len(rows) == 5
    assert rows[1]["error"].startswith("image: 1024x1 pixels: aspect ratio 1024:1 exceeds")
    assert rows[2]["error"].startswith("image: ")
    assert rows[3]["error"] == "prompt is not valid text: surrogates not allowed at position 4"
    for bad in rows[1:4]:
        assert set(bad) >= {"quality", "alignment", "quality_scaled", "alignment_scaled"}
        assert all(bad[key] is None for key in ("quality", "alignment", "quality_scaled"))
    good = [rows[0], rows[4]]
    assert all(row["error"] is None and isinstance(row["quality"], float) for row in good)
    assert isinstance(rows[0]["alignment"], float)
    assert rows[4]["alignment"] is None and rows[4]["alignment_scaled"] is None  # no prompt
    # scored in one batch, a good row scores as it does alone
    (alone,) = predictions(invoke(client, [images[0]], [prompts[0]]))
    assert abs(alone["quality"] - rows[0]["quality"]) < 1e-5


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

    assert predictions(invoke(client, [str(inside)]))[0]["error"] is None
    for refused, reason in [
        (outside / "secret.png", "not base64-encoded image bytes nor a path"),
        (allowed / "link.png", "not base64-encoded image bytes nor a path"),  # resolves outside
        (allowed, "not a regular file"),
        (allowed / "missing.png", "no readable file"),
    ]:
        (row,) = predictions(invoke(client, [str(refused)]))
        assert reason in row["error"] and row["quality"] is None, refused

    answers = []
    worker = threading.Thread(
        target=lambda: answers.append(invoke(client, [str(allowed) + "/fifo.png"]))
    )
    worker.start()
    worker.join(timeout=120)  # before the fix, opening the FIFO blocked the worker for good
    assert not worker.is_alive(), "the served model blocked on a FIFO"
    assert "not a regular file" in predictions(answers[0])[0]["error"]


def test_a_prompt_that_is_not_text_is_an_error_on_its_row(model_folder, monkeypatch):
    """Its docstring promised a row error; a number used to be scored as no prompt."""
    client = serve(model_folder, monkeypatch)
    rows = predictions(invoke(client, [png_base64()] * 3, ["a purple square", 12345, None]))
    assert rows[0]["error"] is None and isinstance(rows[0]["alignment"], float)
    assert rows[1]["error"] == "prompt: a int, not text" and rows[1]["quality"] is None
    assert rows[2]["error"] is None and rows[2]["alignment"] is None  # no prompt: no alignment
