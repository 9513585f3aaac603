"""AGIQA-3K replayed as a release history through the daemon's real cycle, label-free.

    python bench/evolving.py [--per-release N] [--out DIR] [--config daemon.yaml]
                             [--repeats R]

Each generator group becomes one release, in the order the generators appeared (AttnGAN,
GLIDE, DALL-E 2, then the SD1.5 variants). The daemon sees only image names, prompts and the
generator column (a manifest written without any score column); human scores are read here,
afterwards, to evaluate. Prints one Markdown table, a row per critic version: SRCC against
``mos_quality`` and ``mos_align`` on the next release (prequential: images the critic has
not seen) and on all releases so far, then the wall time of each cycle step.

A single step's wall time on a shared machine is noisy, so the evaluate step, whose cost
must not grow with the history, is then timed again: the daemon's state (SQLite) is copied
just before each release's evaluate step, and ``--repeats`` interleaved rounds run that step
again on a copy of each release's snapshot (release 1, 2, ..., 7, then again). A second
table gives each release's median and range, and the last line the ratio of release 7's
median to release 2's.
"""

from __future__ import annotations

import argparse
import logging
import os
import platform
import shutil
import sqlite3
import statistics
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from daemon.composition import build_ports  # noqa: E402
from daemon.cycle.context import ReleaseContext  # noqa: E402
from daemon.cycle.steps.evaluate import evaluate  # noqa: E402
from daemon.service import Service  # noqa: E402
from daemon.settings import DaemonSettings, RegistrySpec  # noqa: E402
from daemon.state.tables import JobRun, ReleaseState, Step  # noqa: E402
from eliq.config import load_settings  # noqa: E402
from eliq.critic import Critic  # noqa: E402
from eliq.evaluation import AGIQA_AXES, correlation, read_agiqa3k, score_table  # noqa: E402

ORDER = [
    "AttnGAN_normal",
    "glide_normal",
    "DALLE2_normal",
    "sd1.5_normal",
    "sd1.5_lowstep",
    "sd1.5_highcorr",
    "sd1.5_lowcorr",
]


def history_manifest(root: Path, per_release: int | None, folder: Path) -> pd.DataFrame:
    """The human-scored frame (kept here) and, in ``folder``, the daemon's manifest (image,
    prompt and generator only) beside copies of its images: a local registry reads only
    what lies under its root."""
    frame = read_agiqa3k(root)
    frame = frame[frame["generator"].isin(ORDER)]
    if per_release:
        frame = frame.groupby("generator", sort=False).head(per_release)
    frame = frame.reset_index(drop=True)
    (folder / "images").mkdir(exist_ok=True)
    names = [f"images/{Path(image).name}" for image in frame["image"]]
    for image, name in zip(frame["image"], names, strict=True):
        shutil.copyfile(image, folder / name)
    manifest = frame[["prompt", "generator"]].assign(image=names)
    manifest[["image", "prompt", "generator"]].to_csv(folder / "manifest.csv", index=False)
    return frame


def copy_sqlite(source: Path, target: Path) -> None:
    """A consistent copy of a SQLite database, even while another connection has it open."""
    with sqlite3.connect(source) as reading, sqlite3.connect(target) as writing:
        reading.backup(writing)


def run_release(service: Service, snapshot: Path) -> None:
    """What ``service.once()`` does for one new release, with the state copied to
    ``snapshot`` just before the release's evaluate step."""
    service.start_with_a_champion()
    if not service.poll_all():
        raise SystemExit("polling the registry failed")
    cycle = service.cycle
    while pending := cycle.pipeline.pending():
        release = pending[0]
        if release.state == ReleaseState.registered:  # the next step is evaluate
            copy_sqlite(service.settings.data_dir / "state.db", snapshot)
        if not cycle.pipeline.advance(release):
            where = service.settings.data_dir
            raise SystemExit(f"{release.id}: {release.state} failed; see {where}")
    service.watch()


def evaluate_seconds(settings: DaemonSettings, snapshot: Path, scratch: Path) -> float:
    """The evaluate step's wall time on a copy of ``snapshot`` (the state just before it)."""
    copy_sqlite(snapshot, scratch)
    ports = build_ports(settings.model_copy(update={"database_url": f"sqlite:///{scratch}"}))
    (release,) = ports.store.releases([ReleaseState.registered])
    ports.critics.aliases()  # connected before the clock starts, as in the daemon
    start = time.perf_counter()
    evaluate(ReleaseContext(release, ports))
    seconds = time.perf_counter() - start
    ports.store.engine.dispose()
    return seconds


def srcc(critic: Critic, frame: pd.DataFrame) -> dict[str, float]:
    scored = score_table(critic, frame, progress=False)
    return {
        axis: correlation(scored[axis], scored[human]).srcc for axis, human in AGIQA_AXES.items()
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path, default=Path("../shared/datasets/agiqa3k"))
    parser.add_argument("--per-release", type=int, default=60, help="images per release")
    parser.add_argument("--out", type=Path, help="data directory (default: a temporary one)")
    parser.add_argument("--config", type=Path, help="daemon settings (YAML/TOML)")
    parser.add_argument(
        "--repeats", type=int, default=5, help="interleaved re-timings of each evaluate step"
    )
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    out = args.out or Path(tempfile.mkdtemp(prefix="eliq-evolving-"))
    out.mkdir(parents=True, exist_ok=True)
    frame = history_manifest(args.root.resolve(), args.per_release, out)
    registry = RegistrySpec(
        name="agiqa3k",
        kind="local",
        settings={
            "root": str(out),
            "manifest": "manifest.csv",
            "split_column": "generator",
            "order": ORDER,
            "per_poll": 1,
            "name": "agiqa3k",
        },
    )
    settings = load_settings(
        args.config, DaemonSettings, data_dir=out / "data", registries=[registry]
    )
    if settings.database_url is not None:
        raise SystemExit(
            "the evaluate step is re-timed on copies of the SQLite state: no database_url"
        )
    service = Service(settings)
    snapshots = out / "before-evaluate"
    snapshots.mkdir(exist_ok=True)
    rows = []
    for index, generator in enumerate(ORDER):
        run_release(service, snapshots / f"{index + 1}.db")
        release = service.ports.store.releases()[-1]
        version = service.ports.store.critic_for(release.id)
        critic = Critic.from_pretrained(version.checkpoint, settings.device)
        seen = frame[frame["generator"].isin(ORDER[: index + 1])]
        row = {"release": generator, "critic": f"v{version.store_version} ({version.status})"}
        if index + 1 < len(ORDER):
            upcoming = srcc(critic, frame[frame["generator"] == ORDER[index + 1]])
            row |= {f"next {a}": v for a, v in upcoming.items()}
        row |= {f"so far {a}": v for a, v in srcc(critic, seen).items()}
        runs = service.ports.store.rows(JobRun)
        for step in Step:
            times = [
                (r.finished_at - r.started_at).total_seconds()
                for r in runs
                if r.job == f"{step}:{release.id}" and r.ok
            ]
            row[f"{step} s"] = sum(times)
        rows.append(row)
    table = pd.DataFrame(rows)
    print(
        f"AGIQA-3K as a release history, {args.per_release} images per release, "
        f"{date.today()}, {platform.machine()} CPU x{os.cpu_count()}\n"
    )
    print(table.to_markdown(index=False, floatfmt=".3f"))

    seconds: dict[str, list[float]] = {generator: [] for generator in ORDER}
    for _ in range(args.repeats):
        for index, generator in enumerate(ORDER):
            snapshot = snapshots / f"{index + 1}.db"
            seconds[generator].append(evaluate_seconds(settings, snapshot, out / "scratch.db"))
    median = {generator: statistics.median(times) for generator, times in seconds.items()}
    print(
        f"\nThe evaluate step again, {args.repeats} interleaved rounds from each release's state\n"
    )
    print("| release | evaluate s (median) | range |\n|---|---|---|")
    for generator, times in seconds.items():
        print(f"| {generator} | {median[generator]:.3f} | {min(times):.3f}–{max(times):.3f} |")
    ratio = median[ORDER[-1]] / median[ORDER[1]]
    print(f"\nevaluate step, release 7 / release 2: {ratio:.2f} (medians of {args.repeats})")


if __name__ == "__main__":
    main()
