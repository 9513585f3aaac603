"""The critic the daemon starts from, registered as its first champion.

Before any release is processed there is already a critic that would score it: the
configured initial checkpoint, else a critic built from ``retune.recipe``, else the
reference critic the package ships, else the library's default critic. The daemon
registers it once, under the store's :data:`~adapters.critic_stores.STARTING` key, and
makes it the champion, so the first retune has a champion to beat and a challenger the
gate holds leaves one in place: the watch, the drift checks and the page's leaderboard
always have a champion to stand on.
"""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

from adapters.critic_stores import CHAMPION, STARTING
from daemon.cycle import history
from daemon.policy.promotion import gate_tags
from daemon.policy.registration import register_starting
from daemon.ports import Ports
from daemon.state.tables import CriticStatus, CriticVersion, utcnow
from eliq.critic import Critic
from eliq.critic.hub import CHECKPOINT_FILES
from eliq.critic.shipped import DEFAULT_CRITIC, critic_folder

log = logging.getLogger(__name__)


def starting_source(ports: Ports) -> tuple[str, Path | None]:
    """Where the daemon's first critic comes from, in words, and its checkpoint folder
    (None: built from a config, with the retune's seed)."""
    retune = ports.settings.retune
    if retune.initial_checkpoint is not None:
        return f"the initial checkpoint {retune.initial_checkpoint}", retune.initial_checkpoint
    if retune.recipe is not None:
        return f"a critic built from the recipe {retune.recipe}", None
    try:
        return f"the shipped {DEFAULT_CRITIC} critic", critic_folder(DEFAULT_CRITIC)
    except FileNotFoundError as missing:
        log.info("%s; starting from the library's default critic", missing)
        return "the library's default critic", None


def ensure_champion(ports: Ports) -> CriticVersion:
    """The champion, after registering the starting critic as one when there is none."""
    store, critics = ports.store, ports.critics
    champion = store.champion()
    if champion is not None:
        return champion
    source, folder = starting_source(ports)
    target = ports.settings.data_dir / "critics" / STARTING
    _write_checkpoint(ports, folder, target)
    registered = register_starting(ports, target, source)
    version = CriticVersion(
        release_id=None,
        checkpoint=str(target),
        store_version=registered.version,
        status=CriticStatus.champion,
        gate={
            "passed": True,
            "why": f"the critic the daemon started from ({source})",
            "reasons": [],
            "checks": {},
            "mode": "start",
        },
        training={"source": source},
        decided_at=utcnow(),
    )
    critics.set_alias(CHAMPION, registered.version)
    critics.tag_version(registered.version, gate_tags(version))
    store.save(version)
    log.info("critic v%s, %s, is the first champion", registered.version, source)
    return version


def _write_checkpoint(ports: Ports, folder: Path | None, target: Path) -> None:
    """The starting critic's checkpoint in the daemon's data directory, where an upgrade of
    the package or a moved file cannot change it under the registered version."""
    if (target / "model.safetensors").is_file():
        return  # written before a crash, registered or not: registration is idempotent
    scratch = target.with_name(f".{target.name}")
    shutil.rmtree(scratch, ignore_errors=True)
    if folder is None:
        config = history.critic_config(ports)
        critic = Critic.from_config(config, "cpu", seed=ports.settings.retune.train.seed)
        critic.save_pretrained(scratch)
    else:
        scratch.mkdir(parents=True)
        for name in CHECKPOINT_FILES:
            if (Path(folder) / name).is_file():
                shutil.copyfile(Path(folder) / name, scratch / name)
        Critic.from_pretrained(scratch, "cpu")  # a folder that is no critic fails here, named
    scratch.rename(target)
