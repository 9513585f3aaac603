"""``pip install eliq`` is the library; ``eliq[daemon]`` adds the service's dependencies.
The library's modules, imported and used to score, load none of them; the daemon's entry
point says what to install when they are missing."""

import subprocess
import sys
import tomllib
from pathlib import Path

import daemon

ROOT = Path(__file__).resolve().parents[1]
# what only the daemon uses (jinja2 is left out: transformers imports it when it is there)
DAEMON_ONLY = (*daemon.DEPENDENCIES, "sqlalchemy", "psycopg", "plotly", "swagger_ui_bundle")


def run(code: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=600, cwd=ROOT
    )


def test_the_library_imports_none_of_the_daemons_dependencies():
    code = f"""
import importlib, pkgutil, sys
import torch
import eliq
for module in pkgutil.walk_packages(eliq.__path__, "eliq."):
    importlib.import_module(module.name)
from eliq.critic import Critic, CriticConfig
critic = Critic.from_config(CriticConfig(crops=1, dim=32, decoder_layers=1), "cpu")
assert critic.score(torch.rand(3, 64, 64), "a cat")[0].alignment is not None
print(sorted(name for name in {DAEMON_ONLY!r} + ("daemon", "adapters") if name in sys.modules))
"""
    result = run(code)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.strip().splitlines()[-1] == "[]"


def test_the_daemons_dependencies_are_the_daemon_extra():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]

    def names(requirements):
        return {r.split(">")[0].split("<")[0].split("=")[0].split("[")[0] for r in requirements}

    base, extra = names(project["dependencies"]), names(project["optional-dependencies"]["daemon"])
    assert set(daemon.DEPENDENCIES.values()) <= extra
    assert not base & extra, base & extra
    assert project["scripts"]["eliq-daemon"] == "daemon:main"


def test_the_daemon_without_its_extra_says_what_to_install():
    blocked = ", ".join(f"{m!r}: None" for m in ("mlflow", "evidently"))
    result = run(f"import sys; sys.modules.update({{{blocked}}}); import daemon; daemon.main()")
    assert result.returncode == 1
    assert result.stderr.strip() == (
        "error: eliq-daemon needs the daemon's dependencies (mlflow, evidently missing): "
        "pip install 'eliq[daemon]'"
    )
