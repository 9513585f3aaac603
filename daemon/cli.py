"""``eliq-daemon``: the continual-learning monitoring service.

    eliq-daemon run              serve: poll registries, process releases, until SIGTERM
    eliq-daemon once             one full pass (cron, a Kubernetes CronJob), then exit
    eliq-daemon status [--json]  releases, their states, critic versions and aliases
    eliq-daemon promote VERSION  make a held critic version the champion (manual gate)
    eliq-daemon retry RELEASE    put a parked release back at its failed step
    eliq-daemon reregister       rebuild a lost MLflow registry from the release folders
    eliq-daemon replay ROOT ...  feed a local release history through the cycle

Settings: ``--config FILE`` (YAML or TOML) or ``ELIQ_CONFIG``, and ``ELIQ_*`` variables.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table
from sqlalchemy.exc import OperationalError, SQLAlchemyError

from daemon.settings import DaemonSettings, RegistrySpec
from eliq.command_errors import run_app
from eliq.config import load_settings
from eliq.logs import setup_logging
from eliq.redaction import redact_url

app = typer.Typer(
    help="eliq-daemon: keep the critic current.",
    no_args_is_help=True,
    rich_markup_mode="markdown",  # docstrings reflow as paragraphs, not at their line breaks
)
console = Console()
ConfigOption = Annotated[
    Path | None, typer.Option("--config", help="YAML or TOML settings file.", exists=True)
]


def _settings(config: Path | None, **overrides) -> DaemonSettings:
    settings = load_settings(config, DaemonSettings, **overrides)
    setup_logging(settings.log_level)
    return settings


@app.command()
def run(
    config: ConfigOption = None,
    api_port: Annotated[
        int | None,
        typer.Option("--api-port", help="Status API port (default ELIQ_API_PORT, or 8750)."),
    ] = None,
) -> None:
    """Serve until SIGTERM or SIGINT (the step in flight finishes first), with the status
    API on the api_host setting (127.0.0.1 by default)."""
    from daemon.service import Service

    overrides = {} if api_port is None else {"api_port": api_port}
    service = Service(_settings(config, **overrides))
    service.handle_signals()
    raise typer.Exit(service.run())


@app.command()
def once(config: ConfigOption = None) -> None:
    """Poll every registry once and process everything pending, then exit."""
    from daemon.service import Service

    service = Service(_settings(config))
    service.handle_signals()
    raise typer.Exit(service.once())


@app.command()
def status(
    config: ConfigOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> None:
    """Releases with their states, and critic versions with their aliases."""
    from daemon.serve.status import collect_status
    from daemon.state.database import StateNotReady

    settings = _settings(config)
    try:
        payload = collect_status(settings)
    except StateNotReady as error:
        console.print(f"[yellow]{escape(str(error))}[/yellow]")
        raise typer.Exit(1) from None
    except SQLAlchemyError as error:
        console.print(
            f"[red]cannot read the daemon's state at {escape(redact_url(settings.state_url))}: "
            f"{escape(redact_url(str(error.orig or error)))}[/red]"
        )
        raise typer.Exit(1) from None
    if as_json:
        typer.echo(json.dumps(payload, indent=2, default=str))
        return
    releases = Table("release", "generator", "state", "attempts", "error", title="releases")
    for r in payload["releases"]:
        cells = (r["id"], r["name"], r["state"], str(r["attempts"]), r["last_error"] or "")
        releases.add_row(*map(escape, cells))  # data, never Rich markup
    console.print(releases)
    versions = Table("version", "release", "status", "aliases", "gate", title="critic versions")
    for v in payload["critic_versions"]:
        gate = v["gate"]
        verdict = gate.get("why") or ("" if not gate else "passed" if gate["passed"] else "failed")
        origin = v["release_id"] or "(started from)"
        cells = (str(v["store_version"]), origin, v["status"], ", ".join(v["aliases"]))
        versions.add_row(*map(escape, (*cells, verdict)))
    console.print(versions)
    console.print(escape(f"MLflow: {payload['mlflow_tracking_uri']}  state: {payload['database']}"))
    if "note" in payload:
        console.print(escape(payload["note"]))
    for problem in payload["registry_problems"]:
        console.print(f"[red]MLflow and the state disagree: {escape(problem)}[/red]")
    if payload["registry_problems"]:
        console.print("the way back: `eliq-daemon reregister` (see its --help)")
        raise typer.Exit(1)


@app.command()
def promote(
    version: str,
    config: ConfigOption = None,
    by: Annotated[str | None, typer.Option(help="Who promotes (recorded); default: you.")] = None,
) -> None:
    """Make critic VERSION (an MLflow version number) the champion; recorded on its gate
    and announced on the alert channels like an automatic promotion."""
    import getpass

    from daemon.composition import build_ports
    from daemon.policy.promotion import promote_by_hand

    promoted = promote_by_hand(build_ports(_settings(config)), version, by or getpass.getuser())
    console.print(
        escape(f"critic v{promoted.store_version} ({promoted.release_id}) is the champion")
    )


@app.command()
def reregister(config: ConfigOption = None) -> None:
    """Register every critic version of the state again from its release folder (with its
    evaluations and the champion and challenger aliases): the way back after the MLflow
    store was lost. Move a corrupt store aside first; versions still there are kept."""
    from daemon.composition import build_ports, leader_lock
    from daemon.policy.registration import registry_problems
    from daemon.policy.registration import reregister as register_again
    from daemon.state.lock import LockHeld

    ports = build_ports(_settings(config))
    lock = leader_lock(ports.store)
    try:
        lock.acquire()  # never beside a daemon that registers versions as it goes
    except LockHeld as held:
        console.print(f"[red]{escape(str(held))}: stop that daemon, then reregister[/red]")
        raise typer.Exit(1) from None
    try:
        versions = register_again(ports)
    finally:
        lock.release()
    console.print(f"{len(versions)} critic version(s) registered in MLflow again")
    problems = registry_problems(ports)
    for problem in problems:
        console.print(f"[red]{escape(problem)}[/red]")
    raise typer.Exit(1 if problems else 0)


@app.command()
def retry(release: str, config: ConfigOption = None) -> None:
    """Put a parked RELEASE back at the step that failed."""
    from daemon.composition import build_cycle

    build_cycle(_settings(config)).pipeline.retry(release)
    console.print(escape(f"{release} will be retried"))


@app.command()
def replay(
    root: Annotated[Path, typer.Argument(help="Folder holding the manifest and images.")],
    manifest: Annotated[str, typer.Option(help="Manifest file under ROOT.")] = "manifest.csv",
    split_column: Annotated[str, typer.Option(help="Column naming each row's release.")] = (
        "generator"
    ),
    order: Annotated[
        list[str] | None, typer.Option("--order", help="Releases in this order (repeatable).")
    ] = None,
    image_column: Annotated[str, typer.Option()] = "image",
    prompt_column: Annotated[str, typer.Option()] = "prompt",
    images: Annotated[str | None, typer.Option(help="Image folder under ROOT.")] = None,
    config: ConfigOption = None,
) -> None:
    """Feed a release history (one manifest split by a column) through the cycle: every
    release is discovered in order and processed as if each had just appeared."""
    from daemon.service import Service

    spec = RegistrySpec(
        name="replay",
        kind="local",
        settings={
            "root": str(root),
            "manifest": manifest,
            "split_column": split_column,
            "order": order,
            "image_column": image_column,
            "prompt_column": prompt_column,
            "images": images,
            "name": "replay",
        },
    )
    service = Service(_settings(config, registries=[spec]))
    service.handle_signals()
    raise typer.Exit(service.once())


def main() -> None:
    """The ``eliq-daemon`` entry point: a user's mistake is one line, not a traceback, and
    so is a database that does not answer."""
    try:
        run_app(app)
    except OperationalError as error:
        if os.environ.get("ELIQ_DEBUG") == "1":
            raise
        reason = str(error.orig or error).strip().splitlines()[0]
        print(f"error: the daemon's database did not answer: {redact_url(reason)}", file=sys.stderr)
        raise SystemExit(1) from None
