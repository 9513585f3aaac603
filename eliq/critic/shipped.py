"""Critics by name: the reference critic ships with the package, so an install scores
offline with no checkpoint of its own; third-party packages add theirs.

Its weights are committed in the package's data folder, built once from the recipe
(``recipes/critic-reference``, ``make ship-critic``), so every install has one critic
version.

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
CRITICS.add(DEFAULT_CRITIC, Path(str(files("eliq") / "data" / "critics" / DEFAULT_CRITIC)))


def critic_folder(name: str) -> Path:
    """The checkpoint folder of a named critic; KeyError naming the known ones."""
    entry = CRITICS.get(name)
    folder = Path(entry() if callable(entry) else entry)
    if name == DEFAULT_CRITIC and not (folder / "model.safetensors").is_file():
        raise FileNotFoundError(
            f"the {name} critic's weights are missing from {folder}: reinstall eliq, or "
            "in a checkout rebuild them with `make ship-critic`"
        )
    return folder
