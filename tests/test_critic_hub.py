"""A critic pushed to a hub and loaded back by repository id, pinned to a commit: against a
hub on localhost that speaks the Hugging Face Hub's API (:mod:`tests.local_hub`), through
``huggingface_hub`` itself, in fresh processes that read the hub's address and token from
the environment as a user's would."""

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.local_hub import LocalHub

TOKEN = "hf_local_0123456789secret"
PUSH_AND_LOAD = """
import json
from eliq.critic import Critic, CriticConfig
config = CriticConfig(crops=1, dim=32, decoder_layers=1)
first, second = (Critic.from_config(config, "cpu", seed=seed) for seed in (0, 1))
pinned = first.push_to_hub("team/critic")
second.push_to_hub("team/critic")
latest = Critic.from_pretrained("team/critic", "cpu")
old = Critic.from_pretrained("team/critic", "cpu", revision=pinned)
print(json.dumps({"pinned": pinned, "first": first.version, "second": second.version,
                  "latest": latest.version, "old": old.version}))
"""
OFFLINE = """
import json, sys
from eliq.critic import Critic
print(Critic.from_pretrained("team/critic", "cpu", revision=sys.argv[1]).version)
try:
    Critic.from_pretrained("team/elsewhere", "cpu")
except FileNotFoundError as error:
    print(error)
"""


@pytest.fixture
def hub(httpserver):
    local = LocalHub(TOKEN)
    httpserver.expect_request(re.compile(".*")).respond_with_handler(local)
    return local, httpserver.url_for("").rstrip("/")


def run(code, tmp_path, endpoint, *arguments, offline=False):
    env = {
        **os.environ,
        "HF_ENDPOINT": endpoint,
        "HF_HOME": str(tmp_path / "hf"),
        "HF_TOKEN": TOKEN,
        "HF_HUB_OFFLINE": "1" if offline else "0",
        "HF_HUB_DISABLE_XET": "1",
    }
    return subprocess.run(
        [sys.executable, "-c", code, *arguments],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )


def test_push_then_load_by_repo_id_pinned_to_a_commit_and_offline_from_the_cache(hub, tmp_path):
    local, endpoint = hub
    pushed = run(PUSH_AND_LOAD, tmp_path, endpoint)
    assert pushed.returncode == 0, pushed.stderr[-3000:]
    seen = json.loads(pushed.stdout.strip().splitlines()[-1])
    assert seen["first"] != seen["second"]
    assert seen["latest"] == seen["second"]  # main is the newest commit
    assert seen["old"] == seen["first"]  # a revision pins the commit it names
    ((sha, tree), _) = local.repos["team/critic"]
    assert sha == seen["pinned"]
    assert set(tree) == {"config.json", "model.safetensors"}  # the checkpoint, nothing else
    assert TOKEN not in pushed.stdout + pushed.stderr

    offline = run(OFFLINE, tmp_path, endpoint, seen["pinned"], offline=True)
    assert offline.returncode == 0, offline.stderr[-3000:]
    version, missing = offline.stdout.strip().splitlines()[-2:]
    assert version == seen["first"]  # from the cache, with the hub out of reach
    assert "'team/elsewhere' at main is not in the local hub cache" in missing


def test_a_revision_pins_only_hub_critics(tmp_path):
    from eliq.critic import Critic

    with pytest.raises(ValueError, match="revision pins a critic on the hub"):
        Critic.from_pretrained(str(tmp_path), "cpu", revision="abc")


VLM_FROM_THE_HUB = """
import json, sys
from huggingface_hub import HfApi
from eliq.critic import Critic, CriticConfig, LoraSettings
from eliq.testing import build_tiny_vlm
api = HfApi()
api.create_repo("team/tiny-vlm")
commits = [
    api.upload_folder(
        repo_id="team/tiny-vlm", folder_path=build_tiny_vlm(f"{sys.argv[1]}/{seed}", seed=seed)
    ).oid
    for seed in (0, 1)
]
def config(**pin):
    return CriticConfig(vision_backbone="team/tiny-vlm", text_backbone="joint", crops=1,
                        dim=32, vision_lora=LoraSettings(enabled=False), **pin)
latest = Critic.from_config(config(), "cpu", seed=0)
pinned = Critic.from_config(config(backbone_revision=commits[0]), "cpu", seed=0)
pinned.save_pretrained(f"{sys.argv[1]}/critic")
again = Critic.from_pretrained(f"{sys.argv[1]}/critic", "cpu")
image = sys.argv[2]
print(json.dumps({
    "commits": commits,
    "latest": latest.config.backbone_revision,
    "pinned": pinned.config.backbone_revision,
    "again": again.config.backbone_revision,
    "same_scores": again.score(image, "a photo") == pinned.score(image, "a photo"),
}))
"""


def test_a_vlm_backbone_loads_from_the_hub_pinned_to_a_commit(hub, tmp_path):
    """A multimodal LLM by hub id: the newest commit unless the config pins one, the commit
    recorded in the critic's checkpoint and loaded again from it."""
    from eliq.demo import write_demo_positives

    local, endpoint = hub
    image = next(write_demo_positives(tmp_path / "photos").parent.glob("*.png"))
    loaded = run(VLM_FROM_THE_HUB, tmp_path, endpoint, str(tmp_path), str(image))
    assert loaded.returncode == 0, loaded.stderr[-3000:]
    seen = json.loads(loaded.stdout.strip().splitlines()[-1])
    first, second = seen["commits"]
    assert seen["latest"] == second and seen["pinned"] == first
    assert seen["again"] == first and seen["same_scores"]
    assert not any("trust_remote_code" in r or ".py" in r for r in local.requests)


def test_a_missing_folder_is_an_error_not_a_hub_download(hub, tmp_path):
    """``--checkpoint artifacts/critic-reference`` where ``artifacts/`` exists but the critic
    does not: an error naming the folder, and not one request (nor the token) to the hub."""
    from tests.conftest import photo_path

    local, endpoint = hub
    (tmp_path / "artifacts").mkdir()
    env = {
        **os.environ,
        "HF_ENDPOINT": endpoint,
        "HF_HOME": str(tmp_path / "hf"),
        "HF_TOKEN": TOKEN,
        "HF_HUB_OFFLINE": "0",
    }
    for name in ("artifacts/critic-reference", "./critic", "/nowhere/critic"):
        scored = subprocess.run(
            [
                str(Path(sys.executable).with_name("eliq")),
                "score",
                str(photo_path("coffee.png")),
                "--checkpoint",
                name,
                "--out",
                str(tmp_path / "scores.jsonl"),
            ],
            env=env,
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=600,
        )
        assert scored.returncode != 0
        assert f"no checkpoint folder '{name}'" in scored.stderr + scored.stdout, scored.stderr
        assert "Traceback" not in scored.stderr
    assert local.requests == []
    assert not (tmp_path / "scores.jsonl").exists()


HOSTILE_LOAD = """
import sys
from eliq.critic import Critic
try:
    print("loaded", Critic.from_pretrained("team/critic", "cpu").version)
except FileNotFoundError as error:
    print("refused", error)
"""


@pytest.mark.parametrize("padding", [0, 4 << 20])
def test_a_hostile_hub_writes_nothing_outside_the_cache(httpserver, tmp_path, padding):
    """A server whose ETag climbs out of the cache, and (``padding``) that sends megabytes
    more than its listing announced: nothing lands outside the cache, and an oversized
    file is refused at the announced size."""
    from werkzeug import Response

    from eliq.critic import Critic, CriticConfig

    saved = Critic.from_config(CriticConfig(crops=1, dim=32, decoder_layers=1), "cpu", seed=0)
    folder = tmp_path / "critic"
    saved.save_pretrained(folder)
    local = LocalHub(TOKEN)
    tree = {p.name: p.read_bytes() for p in folder.iterdir() if p.is_file()}
    local.repos["team/critic"] = [("c" * 40, tree)]

    def hostile(request):
        answer = local(request)
        if "/resolve/" in request.path and answer.status_code == 200:
            body = answer.get_data() + b"\0" * padding
            return Response(
                body,
                headers={
                    "X-Repo-Commit": "c" * 40,
                    "ETag": f'"../../../../../../{tmp_path.name}-escaped"',
                },
            )
        return answer

    httpserver.expect_request(re.compile(".*")).respond_with_handler(hostile)
    home = tmp_path / "home"
    loaded = run(HOSTILE_LOAD, home, httpserver.url_for("").rstrip("/"))
    assert loaded.returncode == 0, loaded.stderr[-3000:]
    said = loaded.stdout.strip().splitlines()[-1]
    if padding:
        assert said.startswith("refused") and "more than the" in said, said
        assert not list((home / "hf").rglob("model.safetensors"))  # no partial file kept
        assert not list((home / "hf").rglob(".part-*"))
    else:
        assert said == f"loaded {saved.version}"
    escaped = [p for p in tmp_path.parent.rglob(f"*{tmp_path.name}-escaped*")]
    assert escaped == []
    written = {p.relative_to(home / "hf") for p in (home / "hf").rglob("*") if p.is_file()}
    assert all(str(p).startswith("hub/") for p in written), written
