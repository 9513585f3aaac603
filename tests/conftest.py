import logging
import os
import shutil

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

from importlib import resources  # noqa: E402
from pathlib import Path  # noqa: E402

import pytest  # noqa: E402
import torch  # noqa: E402

from eliq.imageio import load_image  # noqa: E402

# Read-only data beside the checkout (see ../shared/README.md).
SHARED = Path(__file__).resolve().parents[1].parent / "shared"

# Debian's headless browser (make browser), for the pages and reports eliq writes.
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")

# Real photographs bundled with scikit-image.
PHOTOS = ("astronaut.png", "chelsea.png", "coffee.png", "rocket.jpg", "motorcycle_left.png")


def photo_path(name: str) -> Path:
    return Path(str(resources.files("skimage") / "data" / name))


@pytest.fixture(autouse=True)
def _root_logging_as_it_was():
    """A command run in-process (``eliq ...`` through its entry point) sets up logging on the
    root logger for the rest of the process; restored after each test, so a later test's
    stderr holds only what it logs itself, whatever order the tests run in."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


@pytest.fixture(scope="session")
def photos() -> list[torch.Tensor]:
    return [load_image(photo_path(name)) for name in PHOTOS]


@pytest.fixture(scope="session")
def parser():
    from eliq.prompts.parser import PromptParser

    return PromptParser()


@pytest.fixture(scope="session")
def suite(parser):
    from eliq.prompts import load_suite

    return load_suite(parser=parser)
