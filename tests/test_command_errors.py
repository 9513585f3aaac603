"""A user's mistake at the command line is one line on stderr and a non-zero exit."""

import os
import subprocess
import sys

import pytest

ENTRY = {
    "eliq": "from eliq.cli import main",
    "eliq-daemon": "from daemon.cli import main",
}


def run(tmp_path, program, *arguments, debug=False):
    code = f"import sys; {ENTRY[program]}; sys.argv = [{program!r}, *sys.argv[1:]]; main()"
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "ELIQ_DEBUG": "1" if debug else "0"}
    return subprocess.run(
        [sys.executable, "-c", code, *arguments],
        cwd=tmp_path,  # outside the repository
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


@pytest.mark.parametrize(
    ("program", "arguments", "message"),
    [
        (
            "eliq",
            ["eval", "leave-generators-out", "--out", "x", "--root", "nowhere", "--photos", "none"],
            "no AGIQA-3K folder at nowhere",
        ),
        ("eliq", ["pairs", "build", "--images", ".", "--out", "p", "--families", "nope"], "nope"),
        ("eliq", ["score", ".", "--out", "s.jsonl", "--checkpoint", "nope"], "known: reference"),
        ("eliq-daemon", ["promote", "99"], "no critic version 99"),
        ("eliq-daemon", ["retry", "nope"], "no release 'nope'"),
    ],
)
def test_a_mistake_is_one_line_and_a_failure(tmp_path, program, arguments, message):
    result = run(tmp_path, program, *arguments)
    assert result.returncode == 1
    errors = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1 and message in errors[0], result.stderr
    assert "Traceback" not in result.stderr


def test_eliq_debug_shows_the_traceback(tmp_path):
    arguments = ["eval", "leave-generators-out", "--out", "x", "--root", "nowhere"]
    result = run(tmp_path, "eliq", *arguments, "--photos", "none", debug=True)
    assert result.returncode == 1 and "Traceback" in result.stderr


def test_help_reads_as_prose_not_as_source():
    """Every command's --help: no reStructuredText roles or double backticks."""
    from typer.main import get_command

    from daemon.cli import app as daemon_app
    from eliq.cli import app as eliq_app

    def commands(group, path=()):
        for name, command in getattr(group, "commands", {}).items():
            yield (*path, name), command
            yield from commands(command, (*path, name))

    for app in (eliq_app, daemon_app):
        root = get_command(app)
        for path, command in [((), root), *commands(root)]:
            text = " ".join(
                [command.help or "", *(getattr(p, "help", None) or "" for p in command.params)]
            )
            assert "``" not in text and ":mod:" not in text and ":func:" not in text, path


def test_help_reflows_docstrings_instead_of_breaking_where_the_source_does():
    from typer.testing import CliRunner

    from daemon.cli import app

    shown = CliRunner().invoke(app, ["--help"], env={"COLUMNS": "200"}).output
    assert "finishes first), with the status API on the api_host setting" in shown
