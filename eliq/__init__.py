"""eliq: a label-free image-quality critic that stays current while generators evolve."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("eliq")
except PackageNotFoundError:  # run from a source tree that was never installed
    __version__ = "0+unknown"


def create_metric(metric_name: str, **options):
    """pyiqa-style: ``eliq.create_metric("eliq-quality" | "eliq-alignment")`` (see
    :mod:`eliq.iqa_metrics`; imported on first use, so ``import eliq`` stays light)."""
    from eliq.iqa_metrics import create_metric as create

    return create(metric_name, **options)


def list_models() -> list[str]:
    from eliq.iqa_metrics import list_models as names

    return names()
