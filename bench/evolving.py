"""AGIQA-3K replayed as a release history through the daemon's real cycle, label-free.

    python bench/evolving.py [--per-release N] [--out DIR] [--config daemon.yaml]

Each generator group becomes one release, in the order the generators appeared (AttnGAN,
GLIDE, DALL-E 2, then the SD1.5 variants). The daemon sees only image names, prompts and the
generator column (a manifest written without any score column); human scores are read here,
afterwards, to evaluate. Prints one Markdown table, a row per critic version: SRCC against
``mos_quality`` and ``mos_align`` on the next release (prequential: images the critic has
not seen) and on all releases so far, then the wall time of each cycle step.
"""

from __future__ import annotations

import argparse
import logging
import os
import platform
import shutil
import sys
import tempfile
from datetime import date
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from daemon.service import Service  # noqa: E402
from daemon.settings import DaemonSettings, RegistrySpec  # noqa: E402
from daemon.state import JobRun  # noqa: E402
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
STEPS = [
    "sample",
    "build_pairs",
    "retune",
    "register",
    "evaluate",
    "check_drift",
    "decide",
    "announce",
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
    service = Service(settings)
    rows = []
    for index, generator in enumerate(ORDER):
        if service.once() != 0:
            raise SystemExit(f"the cycle failed on {generator}; see {settings.data_dir}")
        release = service.cycle.store.releases()[-1]
        version = service.cycle.store.critic_for(release.id)
        critic = Critic.from_pretrained(version.checkpoint, settings.retune.device)
        seen = frame[frame["generator"].isin(ORDER[: index + 1])]
        row = {"release": generator, "critic": f"v{version.mlflow_version} ({version.status})"}
        if index + 1 < len(ORDER):
            upcoming = srcc(critic, frame[frame["generator"] == ORDER[index + 1]])
            row |= {f"next {a}": v for a, v in upcoming.items()}
        row |= {f"so far {a}": v for a, v in srcc(critic, seen).items()}
        runs = service.cycle.store.rows(JobRun)
        for step in STEPS:
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


if __name__ == "__main__":
    main()
