"""The daemon's retune settings nest the library's TrainSettings, and one ``device`` serves
every step; a key of an earlier layout is refused with where it lives now."""

import pytest
import yaml
from pydantic import ValidationError

from daemon.settings import DaemonSettings
from eliq.config import SettingsError, load_settings
from eliq.train.settings import RETUNE_DEFAULTS


def test_the_retune_trains_with_the_librarys_settings_and_the_daemons_device():
    settings = DaemonSettings()
    assert settings.device == "auto"
    train = settings.retune.train
    assert train.model_dump(exclude={"time_budget_s"}) == RETUNE_DEFAULTS.model_dump(
        exclude={"time_budget_s"}
    )
    assert train.time_budget_s == 300.0


def test_what_a_config_leaves_out_keeps_the_retunes_default_not_the_librarys():
    train = DaemonSettings(retune={"train": {"steps": 7}}).retune.train
    assert (train.steps, train.batch_pairs, train.held_out_fraction) == (7, 24, 0.2)
    assert train.time_budget_s == 300.0


def test_a_key_of_an_earlier_layout_is_refused_with_where_it_lives_now(tmp_path):
    config = tmp_path / "daemon.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "retune": {"steps": 30, "device": "cpu", "replay_releases": 2},
                "sampling": {"cpu_threads": 2},
            }
        )
    )
    with pytest.raises(SettingsError) as refused:
        load_settings(config, DaemonSettings)
    message = str(refused.value)
    for moved in (
        "retune.steps is now retune.train.steps",
        "retune.device is now device",
        "sampling.cpu_threads is now executor.cpu_threads",
    ):
        assert moved in message


def test_an_environment_variable_of_an_earlier_layout_is_refused(monkeypatch):
    monkeypatch.setenv("ELIQ_RETUNE__STEPS", "30")
    with pytest.raises(ValidationError, match="retune.steps is now retune.train.steps"):
        DaemonSettings()


def test_settings_round_trip_through_their_own_dump(tmp_path):
    settings = DaemonSettings(device="cpu", retune={"train": {"steps": 7}})
    assert settings.retune.train.device == "cpu"  # the retune trains where everything runs
    config = tmp_path / "daemon.yaml"
    config.write_text(yaml.safe_dump(settings.model_dump(mode="json")))
    assert load_settings(config, DaemonSettings) == settings


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"retune": {"train": {"held_out_fraction": 0.0}}}, "held_out_fraction must be > 0"),
        (
            {"device": "cpu", "retune": {"train": {"device": "cuda"}}},
            "retune.train.device is 'cuda' but device is 'cpu'",
        ),
    ],
)
def test_settings_the_daemon_cannot_work_with_are_refused(values, message):
    with pytest.raises(ValidationError, match=message):
        DaemonSettings(**values)


def daemon_command(*arguments, env=None):
    """``eliq-daemon ARGUMENTS`` in its own process: exit status and stderr."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    daemon = str(Path(sys.executable).with_name("eliq-daemon"))
    done = subprocess.run(
        [daemon, *arguments],
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        timeout=300,
    )
    return done.returncode, done.stderr


def daemon_main(monkeypatch, capsys, *arguments):
    """``eliq-daemon ARGUMENTS`` through its entry point, in this process: exit status and
    stderr (for mistakes refused before the daemon does anything)."""
    import sys

    from daemon.cli import main

    monkeypatch.setattr(sys, "argv", ["eliq-daemon", *arguments])
    with pytest.raises(SystemExit) as exited:
        main()
    return exited.value.code, capsys.readouterr().err


@pytest.mark.parametrize(
    ("text", "said"),
    [
        ("gate: {min_acuracy: 0.99}", ["gate.min_acuracy: not a setting (a typo?)"]),
        ("retry_backof_s: 5", ["retry_backof_s: not a setting (a typo?)"]),
        ("gate: {min_gain: .nan}", ["gate.min_gain: Input should be a finite number"]),
        (
            "retune: {train: {learning_rate: .nan, steps: 1e400}}\nretry_backoff_s: 1e300",
            [
                "retune.train.learning_rate: Input should be a finite number",
                "retune.train.steps:",
                "retry_backoff_s: Input should be less than or equal to 86400",
            ],
        ),
        ("- a\n- b", ["settings are a mapping of keys to values, not a list"]),
        ("a: !!python/object/apply:os.system ['touch pwned']", ["not YAML that eliq reads"]),
        ("database_url: 'not a url'", ["database_url: not a SQLAlchemy database URL"]),
    ],
)
def test_a_settings_mistake_is_one_line_naming_its_key(tmp_path, monkeypatch, capsys, text, said):
    config = tmp_path / "daemon.yaml"
    config.write_text(text)
    monkeypatch.setenv("ELIQ_DATA_DIR", str(tmp_path / "data"))
    status, stderr = daemon_main(monkeypatch, capsys, "status", "--config", str(config))
    assert status == 1 and "Traceback" not in stderr, stderr
    lines = stderr.strip().splitlines()
    assert len(lines) == len(said), stderr
    assert all(str(config) in line for line in lines), stderr
    for words in said:
        assert any(words in line for line in lines), stderr
    assert not (tmp_path / "pwned").exists() and not (tmp_path / "data").exists()


def test_an_unreachable_database_is_one_line_without_its_password(tmp_path):
    from tests.daemon_helpers import free_port

    url = f"postgresql+psycopg://eliq:hunter2@127.0.0.1:{free_port()}/eliq"
    status, stderr = daemon_command(
        "once",
        env={
            "ELIQ_DATA_DIR": str(tmp_path / "data"),
            "ELIQ_DATABASE_URL": url,
            "ELIQ_REGISTRIES": "[]",
        },
    )
    assert status == 1 and "Traceback" not in stderr
    (line,) = [said for said in stderr.splitlines() if said.startswith("error:")]
    assert line.startswith("error: the daemon's database did not answer: ") and "refused" in line
    assert "hunter2" not in stderr


def test_library_sections_refuse_unknown_keys_too():
    from eliq.config import PairSettings
    from eliq.train import TrainSettings

    with pytest.raises(ValidationError, match="extra_forbidden"):
        PairSettings(per_positiv=3)
    with pytest.raises(ValidationError, match="finite"):
        TrainSettings(learning_rate=float("inf"))
