"""False alarms and power of the daemon's drift rules, label-free, on AGIQA-3K.

    python bench/drift.py --checkpoint artifacts/critic-reference \
        --seed-checkpoint artifacts/critic-reference-seed1 [--trials 200]

Every score comes from the critic (human scores are never read); the decisions are the
daemon's own (``daemon.policy.drift.shift_checks`` / ``agreement_checks`` at the default
``DriftSettings``). Each trial draws two "releases" of ``n`` images:

* null, generator shift: one generator group split at random into two disjoint releases
  (the same generator: any alert is a false alarm);
* null, critic drift: two critics that differ only in their training seed rank the same
  ``n`` random images, the anchors (any alert is a false alarm);
* power: ``sd1.5_normal`` → ``sd1.5_lowstep`` (the same prompts rendered with fewer steps),
  ``AttnGAN_normal`` → ``DALLE2_normal``, and ``sd1.5_normal`` → the same images with
  salt-and-pepper impulse noise, a degradation that is none of eliq's negative families.
  These share prompts, so they are paired by prompt as the daemon pairs releases sampled
  on one suite.

Prints one Markdown table per sample size, the rate at which each check alerts on the
quality axis, on the alignment axis and on either (a release alerts when either does).
"""

from __future__ import annotations

import argparse
import logging
import os
import platform
import sys
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image
from tqdm.auto import tqdm

from daemon.policy.drift import DriftSettings, agreement_checks, shift_checks
from daemon.settings import SamplingSettings
from eliq.critic import Critic
from eliq.evaluation import read_agiqa3k, score_table

POWER = {
    "sd1.5_normal → sd1.5_lowstep": ("sd1.5_normal", "sd1.5_lowstep", "fell"),
    "AttnGAN_normal → DALLE2_normal": ("AttnGAN_normal", "DALLE2_normal", "rose"),
    "sd1.5_normal → impulse noise (unseen family)": ("sd1.5_normal", "impulse", "fell"),
}
IMPULSE_SHARE = 0.02  # of pixels set to black or white, chosen before any measurement


def impulse_noise(source: Path, target: Path, seed: int) -> None:
    """Salt-and-pepper noise on ``IMPULSE_SHARE`` of the pixels (all channels)."""
    pixels = np.asarray(Image.open(source).convert("RGB")).copy()
    rng = np.random.default_rng(seed)
    hit = rng.random(pixels.shape[:2]) < IMPULSE_SHARE
    pixels[hit] = np.where(rng.random(int(hit.sum())) < 0.5, 0, 255)[:, None]
    Image.fromarray(pixels).save(target)


def scores(critic: Critic, frame: pd.DataFrame, cache: Path, out: Path) -> pd.DataFrame:
    """``frame`` with the critic's scores, computed once and kept under ``out``."""
    if out.is_file():
        return pd.read_parquet(out)
    scored = score_table(critic, frame, progress=True, features=critic.feature_cache(cache))
    scored[["image", "generator", "prompt", "quality", "alignment"]].to_parquet(out)
    return scored


def release_pair(rng, table: pd.DataFrame, before: str, after: str, n: int):
    """``n`` prompts both groups rendered: the earlier and the later release's rows."""
    a, b = table[table["generator"] == before], table[table["generator"] == after]
    shared = sorted(set(a["prompt"]) & set(b["prompt"]))
    chosen = set(rng.choice(shared, size=n, replace=False))
    return a[a["prompt"].isin(chosen)], b[b["prompt"].isin(chosen)]


def alerted(checks) -> dict[str, bool]:
    by_axis = {c.axis: c.status == "alert" for c in checks}
    return {"quality": by_axis.get("quality", False), "alignment": by_axis.get("alignment", False)}


def run(args: argparse.Namespace) -> None:
    settings = DriftSettings()
    out = Path(args.out)
    (out / "impulse").mkdir(parents=True, exist_ok=True)
    frame = read_agiqa3k(Path(args.root))
    normal = frame[frame["generator"] == "sd1.5_normal"]
    degraded = normal.assign(
        generator="impulse",
        image=[str(out / "impulse" / Path(p).name) for p in normal["image"]],
    )
    for i, (source, target) in enumerate(zip(normal["image"], degraded["image"], strict=True)):
        if not Path(target).is_file():
            impulse_noise(Path(source), Path(target), seed=i)
    table = pd.concat([frame, degraded], ignore_index=True)
    cache = Path(args.feature_cache)
    critic = Critic.from_pretrained(args.checkpoint, args.device)
    scored = scores(critic, table, cache, out / "scores.parquet")
    twin = None
    if args.seed_checkpoint:
        seeded = Critic.from_pretrained(args.seed_checkpoint, args.device)
        twin = scores(seeded, frame, cache, out / "scores-seed.parquet")
    real = scored[scored["generator"] != "impulse"]
    groups = sorted(real["generator"].unique())

    rows = []
    sizes = [int(s) for s in args.sizes.split(",")]
    for n in sizes:
        rng = np.random.default_rng(n)
        rates: dict[str, list[dict[str, bool]]] = {}
        for trial in tqdm(range(args.trials), desc=f"n={n}", unit="trial"):
            group = real[real["generator"] == groups[trial % len(groups)]]
            split = rng.permutation(len(group))
            a, b = group.iloc[split[:n]], group.iloc[split[n : 2 * n]]
            rates.setdefault("null: one group split in two", []).append(
                alerted(shift_checks(a, b, settings))
            )
            if twin is not None:
                anchors = rng.choice(len(frame), size=n, replace=False)
                pick = frame["image"].iloc[anchors]
                first = real.set_index("image").loc[pick].reset_index()
                second = twin.set_index("image").loc[pick].reset_index()
                rates.setdefault("null: two critics, another seed", []).append(
                    alerted(agreement_checks(first, second, settings))
                )
            for name, (before, after, direction) in POWER.items():
                a, b = release_pair(rng, scored, before, after, n)
                checks = shift_checks(a, b, settings)
                hit = alerted(checks)
                quality = next(c for c in checks if c.axis == "quality")
                hit["direction"] = quality.status == "alert" and quality.direction == direction
                rates.setdefault(name, []).append(hit)
        for name, trials in rates.items():
            frame_ = pd.DataFrame(trials)
            rows.append(
                {
                    "n": n,
                    "check": name,
                    "quality": frame_["quality"].mean(),
                    "alignment": frame_["alignment"].mean(),
                    "either": (frame_["quality"] | frame_["alignment"]).mean(),
                    "quality, expected direction": frame_["direction"].mean()
                    if "direction" in frame_
                    else None,
                }
            )
    report = pd.DataFrame(rows)
    report.to_csv(out / "drift.csv", index=False)
    print(
        f"# Drift checks on AGIQA-3K, {date.today()}, {platform.machine()} "
        f"{os.cpu_count()} CPUs; {args.trials} trials per row; critic {args.checkpoint}; "
        f"tolerance {settings.shift_tolerance_sd} SD, rank floor {settings.min_rank_correlation}, "
        f"min_images {settings.min_images}, confidence {settings.confidence}; n images per "
        "release (and n anchor images for critic drift)"
    )
    print(
        "\n| n | check | alert rate: quality | alignment | either | quality, expected direction |"
    )
    print("|---|---|---|---|---|---|")
    for row in rows:
        expected = row["quality, expected direction"]
        print(
            f"| {row['n']} | {row['check']} | {row['quality']:.3f} | {row['alignment']:.3f} | "
            f"{row['either']:.3f} | {'' if expected is None else f'{expected:.3f}'} |"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--checkpoint", required=True)
    parser.add_argument("--seed-checkpoint", help="The same recipe trained with another seed.")
    parser.add_argument("--root", default="../shared/datasets/agiqa3k")
    parser.add_argument("--feature-cache", default="artifacts/features")
    parser.add_argument("--out", default="artifacts/bench-drift")
    parser.add_argument("--trials", type=int, default=200)
    parser.add_argument("--device", default="auto", help="'auto', 'cpu' or 'cuda'.")
    parser.add_argument(
        "--sizes",
        default=f"6,12,{SamplingSettings().prompts},{DriftSettings().anchor_images_per_release},48,96",
        help="Images per release (and anchor images), comma-separated; the defaults include "
        "the daemon's (prompts sampled per release, anchor images per earlier release).",
    )
    logging.basicConfig(level=logging.WARNING)
    run(parser.parse_args())


if __name__ == "__main__":
    sys.exit(main())
