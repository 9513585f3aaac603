"""eliq: a label-free image-quality critic that stays current while generators evolve."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("eliq")
except PackageNotFoundError:  # run from a source tree that was never installed
    __version__ = "0+unknown"
