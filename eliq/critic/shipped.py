"""Critics by name: the reference critic ships with the package, so a fresh install
scores offline with no checkpoint of its own; third-party packages add theirs.

``Critic.from_pretrained("reference")`` loads the shipped one. A package adds a named
critic with an entry point in the ``eliq.critics`` group whose object is the checkpoint
folder (a path, or a callable returning one)::

    [project.entry-points."eliq.critics"]
    my-critic = "my_package:CRITIC_FOLDER"
"""

from __future__ import annotations

from collections.abc import Callable
from importlib.resources import files
from pathlib import Path

from eliq.plugins import Plugins

DEFAULT_CRITIC = "reference"
CRITICS: Plugins[Path | Callable[[], Path]] = Plugins("critic", "eliq.critics")
# `make ship-critic` copies `make critic`'s output here (the committed recipe's critic).
CRITICS.add(DEFAULT_CRITIC, Path(str(files("eliq") / "data" / "critics" / DEFAULT_CRITIC)))


def critic_folder(name: str) -> Path:
    """The checkpoint folder of a named critic; KeyError naming the known ones."""
    entry = CRITICS.get(name)
    return Path(entry() if callable(entry) else entry)
