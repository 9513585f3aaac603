"""The ``eliq`` command line: build pairs (and, as they land, train, score, evaluate)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from eliq.config import load_settings
from eliq.logs import setup_logging

app = typer.Typer(help="eliq: a label-free image-quality critic.", no_args_is_help=True)
pairs_app = typer.Typer(help="Build label-free training pairs.", no_args_is_help=True)
app.add_typer(pairs_app, name="pairs")
console = Console()

ConfigOption = Annotated[
    Path | None, typer.Option("--config", help="TOML or YAML settings file.", exists=True)
]


@pairs_app.command("build")
def pairs_build(
    manifest: Annotated[Path, typer.Option(help="CSV or JSONL with image and prompt columns.")],
    out: Annotated[Path, typer.Option(help="Folder for the pair set.")],
    images: Annotated[
        Path | None, typer.Option(help="Folder the manifest's image paths are relative to.")
    ] = None,
    seed: Annotated[int | None, typer.Option(help="Build seed.")] = None,
    families: Annotated[
        list[str] | None, typer.Option("--families", help="Families to use (repeatable).")
    ] = None,
    per_positive: Annotated[int | None, typer.Option(help="Negatives per positive.")] = None,
    image_column: Annotated[str, typer.Option(help="Manifest column with image paths.")] = "image",
    prompt_column: Annotated[str, typer.Option(help="Manifest column with prompts.")] = "prompt",
    seed_column: Annotated[
        str, typer.Option(help="Manifest column with each image's generation seed.")
    ] = "seed",
    sampler: Annotated[
        str | None,
        typer.Option(help="Diffusers model that rendered the positives (re-rendered negatives)."),
    ] = None,
    img2img: Annotated[
        str | None, typer.Option(help="Diffusers model for image-to-image aesthetic edits.")
    ] = None,
    limit: Annotated[int | None, typer.Option(help="Use only the first N positives.")] = None,
    config: ConfigOption = None,
) -> None:
    """Build positives and aspect-specific negatives from a manifest of (image, prompt)."""
    from eliq.pairs.factory import PairFactory
    from eliq.pairs.positives import ManifestColumns, read_positives

    settings = load_settings(config)
    setup_logging(settings.log_level)
    overrides = {
        "seed": seed,
        "per_positive": per_positive,
        "families": _split(families),
        "sampler": sampler,
        "img2img": img2img,
    }
    pair_settings = settings.pairs.model_copy(
        update={k: v for k, v in overrides.items() if v is not None}
    )
    columns = ManifestColumns(image=image_column, prompt=prompt_column, seed=seed_column)
    positives = read_positives(manifest, images, columns)[:limit]
    factory = PairFactory(pair_settings, settings.images)
    pair_set = factory.build(positives, out)
    _print_summary(pair_set.summary(), out)


@pairs_app.command("demo")
def pairs_demo(
    out: Annotated[Path, typer.Option(help="Folder for the demo positives and pairs.")] = Path(
        "data/demo"
    ),
    config: ConfigOption = None,
) -> None:
    """Build pairs from photographs bundled with scikit-image (works offline)."""
    from eliq.demo import write_demo_positives
    from eliq.pairs.factory import PairFactory
    from eliq.pairs.positives import read_positives

    settings = load_settings(config)
    setup_logging(settings.log_level)
    manifest = write_demo_positives(out / "positives")
    pair_set = PairFactory(settings.pairs, settings.images).build(
        read_positives(manifest), out / "pairs"
    )
    _print_summary(pair_set.summary(), out / "pairs")


@pairs_app.command("families")
def pairs_families() -> None:
    """List the negative families, built-in and from plug-ins."""
    from eliq.pairs import available_families

    table = Table("family", "aspect", "kind", "levels", "what it does")
    for name, family in available_families().items():
        table.add_row(name, family.aspect, family.kind, str(family.levels), family.description)
    console.print(table)


def _split(values: list[str] | None) -> list[str] | None:
    """Accept both ``--families a --families b`` and ``--families a,b``."""
    if not values:
        return None
    return [name.strip() for value in values for name in value.split(",") if name.strip()]


def _print_summary(summary: dict, out: Path) -> None:
    table = Table("aspect / family", "pairs", title=f"pair set {out}")
    for aspect, families in summary["per_family"].items():
        table.add_row(f"[bold]{aspect}", f"[bold]{summary['per_aspect'][aspect]}")
        for family, count in families.items():
            table.add_row(f"  {family}", str(count))
    console.print(table)
    console.print(
        f"{summary['pairs']} pairs from {summary['positives']} positives; "
        f"{summary['failed_positives']} positives could not be read (see errors.jsonl)"
    )


if __name__ == "__main__":
    app()
