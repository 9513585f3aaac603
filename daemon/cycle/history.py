"""What the steps and the watch read of the releases before: their pair sets, samples and
the anchor set, the critic a version started from, and scoring through the feature cache.

Read-only helpers over the ports: the state says which releases are done and where their
files are; the release folders hold the files.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from daemon.ports import Ports
from daemon.state.tables import CriticVersion, ReleaseRecord, ReleaseState
from eliq.critic import Critic, CriticConfig
from eliq.critic.features import FeatureCache
from eliq.evaluation import score_table
from eliq.pairs.positives import positives_in_folder, read_positives
from eliq.train.recipe import Recipe


def earlier(ports: Ports, release: ReleaseRecord) -> list[ReleaseRecord]:
    """The finished releases discovered before ``release``, in order."""
    done = ports.store.releases([ReleaseState.done])
    return [r for r in done if r.sequence < release.sequence]


def pair_sets(ports: Ports, releases: list[ReleaseRecord]) -> dict[str, tuple[Path, str]]:
    """Each release's pair set, named by release: its root and a key to what critics
    ranked of it (the release and the pair set's content, so a rebuild starts over)."""
    records = {r.id: ports.store.pair_set(r.id) for r in releases}
    return {i: (Path(rec.path), f"{i}@{rec.digest}") for i, rec in records.items()}


def samples(ports: Ports, release: ReleaseRecord, limit: int | None = None) -> pd.DataFrame:
    """The release's sampled images and their prompts (columns image, prompt)."""
    folder = ports.workspace(release).samples
    positives = read_positives(folder / "manifest.csv", folder)[:limit]
    return pd.DataFrame(
        {"image": [str(p.image) for p in positives], "prompt": [p.prompt for p in positives]}
    )


def earlier_samples(ports: Ports, release: ReleaseRecord) -> pd.DataFrame:
    frames = [samples(ports, r) for r in earlier(ports, release)]
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def anchors(ports: Ports, release: ReleaseRecord) -> pd.DataFrame:
    """The fixed anchor set: the first images of each earlier release plus the user's
    folder; for the very first release, its own first images."""
    per = ports.settings.drift.anchor_images_per_release
    frames = [samples(ports, r, per) for r in earlier(ports, release)]
    folder = ports.settings.drift.anchor_folder
    if folder is not None:
        found = positives_in_folder(folder)
        frames.append(
            pd.DataFrame({"image": [str(p.image) for p in found], "prompt": [None] * len(found)})
        )
    if not frames:
        frames = [samples(ports, release, per)]
    return pd.concat(frames, ignore_index=True)


def critic_config(ports: Ports) -> CriticConfig | None:
    """The critic a first retune builds: the recipe's (None: the library's default)."""
    path = ports.settings.retune.recipe
    return Recipe.load(path).critic if path else None


def starting_critic(ports: Ports, version: CriticVersion) -> Critic:
    """The critic ``version`` was retuned from: a checkpoint, or the backbones alone
    with untrained parts initialised as the retune's seed initialised them (the same
    critic every time, so what it ranked once is reused)."""
    device = ports.settings.device
    init = version.training.get("init")
    if init:
        return Critic.from_pretrained(init, device)
    return Critic.from_config(critic_config(ports), device, seed=ports.settings.retune.train.seed)


def feature_folder(ports: Ports) -> Path:
    return ports.settings.data_dir / "features"


def feature_cache(ports: Ports, critic: Critic) -> FeatureCache:
    """Vision features kept on disk under ``data_dir/features`` by image content and
    vision weights: each image goes through the backbone once, in every step and
    cycle that sees it (retune, its replay, evaluation)."""
    return critic.feature_cache(feature_folder(ports))


def score_frame(ports: Ports, critic: Critic, frame: pd.DataFrame) -> pd.DataFrame:
    """Prompt, quality and alignment of each image of ``frame`` (columns image, prompt),
    with vision features through :func:`feature_cache`: re-scoring earlier releases'
    samples costs a frozen-vision critic only its heads."""
    scored = score_table(critic, frame, progress=False, features=feature_cache(ports, critic))
    return scored[["prompt", "quality", "alignment"]]
