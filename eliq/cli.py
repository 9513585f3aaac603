"""The ``eliq`` command line: build pairs (and, as they land, train, score, evaluate)."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

from eliq.command_errors import run_app
from eliq.config import load_settings
from eliq.logs import setup_logging

# markdown: docstrings reflow as paragraphs in --help, not at their source line breaks
HELP = {"no_args_is_help": True, "rich_markup_mode": "markdown"}
app = typer.Typer(help="eliq: a label-free image-quality critic.", **HELP)
pairs_app = typer.Typer(help="Build label-free training pairs.", **HELP)
eval_app = typer.Typer(help="Evaluate a critic.", **HELP)
app.add_typer(pairs_app, name="pairs")
app.add_typer(eval_app, name="eval")
# what eliq prints holds data (file names, prompts, group names): never read as Rich markup
console = Console(markup=False)


def _print_version(value: bool) -> None:
    if value:
        from eliq import __version__

        console.print(f"eliq {__version__}")
        raise typer.Exit()


@app.callback()
def options(
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_print_version, is_eager=True, help="Print the version."
        ),
    ] = False,
) -> None:
    """eliq: a label-free image-quality critic."""


ConfigOption = Annotated[
    Path | None, typer.Option("--config", help="TOML or YAML settings file.", exists=True)
]
RecipeOption = Annotated[
    Path | None,
    typer.Option(
        help="Recipe file (JSON or YAML): the critic to build and how to train it "
        "(keys critic, train; see recipes/).",
        exists=True,
    ),
]
# the earlier layout, two files: refused with where its settings go now
MovedOption = Annotated[Path | None, typer.Option(hidden=True)]
AGIQA_ROOT_HELP = (
    "AGIQA-3K folder (scores.csv, images/); default: ../shared/datasets/agiqa3k, from here "
    "or beside this checkout."
)
PristineOption = Annotated[
    list[Path] | None,
    typer.Option(
        "--pristine",
        help="Undistorted photographs (file or folder, repeatable) a new critic's pristine "
        "prior is fitted to, when the recipe's critic has one.",
        exists=True,
    ),
]
JsonOutOption = Annotated[Path | None, typer.Option("--json", help="Also write JSON here.")]


@pairs_app.command("build")
def pairs_build(
    out: Annotated[Path, typer.Option(help="Folder for the pair set.")],
    manifest: Annotated[
        Path | None,
        typer.Option(
            help="CSV or JSONL with image and prompt columns; without one, every "
            "image under --images is a positive without a prompt."
        ),
    ] = None,
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
    limit: Annotated[
        int | None, typer.Option(help="Use an even sample of about N positives.")
    ] = None,
    config: ConfigOption = None,
) -> None:
    """Build positives and aspect-specific negatives from a manifest of (image, prompt)."""
    from eliq.pairs.factory import PairFactory
    from eliq.pairs.positives import ManifestColumns, positives_in_folder, read_positives

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
    if manifest is None and images is None:
        raise typer.BadParameter("give --manifest, --images, or both")
    positives = (
        read_positives(manifest, images, columns) if manifest else positives_in_folder(images)
    )
    if limit:  # evenly spaced, so a sorted manifest still yields every group
        positives = positives[:: max(1, len(positives) // limit)][:limit]
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


@app.command("train")
def train_command(
    pairs: Annotated[list[Path], typer.Option("--pairs", help="Pair set folder (repeatable).")],
    out: Annotated[Path, typer.Option(help="Folder for the trained critic.")],
    init: Annotated[
        Path | None, typer.Option(help="Critic checkpoint to continue from (incremental).")
    ] = None,
    replay: Annotated[
        list[Path] | None, typer.Option("--replay", help="Earlier pair sets to replay.")
    ] = None,
    steps: Annotated[int | None, typer.Option(help="Optimisation steps.")] = None,
    seed: Annotated[int | None, typer.Option(help="Training seed.")] = None,
    recipe: RecipeOption = None,
    critic_config: MovedOption = None,
    train_config: MovedOption = None,
    feature_cache: Annotated[
        Path | None,
        typer.Option(help="Keep vision features here, by image content, for later runs."),
    ] = None,
    pristine: PristineOption = None,
    config: ConfigOption = None,
) -> None:
    """Train the critic label-free on pair sets (fresh, or from --init with --replay)."""
    from eliq.train import train

    settings = load_settings(config)
    setup_logging(settings.log_level)
    chosen = _recipe(recipe, critic_config, train_config)
    overrides = {k: v for k, v in {"steps": steps, "seed": seed}.items() if v is not None}
    result = train(
        pairs,
        out,
        chosen.train.model_copy(update=overrides),
        init=init,
        replay=replay or [],
        config=chosen.critic if recipe is not None else None,
        feature_cache=feature_cache,
        pristine=pristine or [],
    )
    table = Table("family", "held-out pair accuracy", title=f"critic {out}")
    for family, accuracy in result.held_out_accuracy.items():
        table.add_row(family, f"{accuracy:.3f}")
    console.print(table)
    cut = " (cut short by the time budget)" if result.cut_short else ""
    console.print(f"{result.steps} steps, {result.skipped_steps} skipped{cut}")


@app.command("score")
def score_command(
    input: Annotated[
        Path, typer.Argument(help="Image folder, one image, or CSV/JSONL with image[,prompt].")
    ],
    out: Annotated[
        str, typer.Option(help="Output: JSON Lines, CSV if it ends in .csv, '-' for stdout.")
    ],
    checkpoint: Annotated[
        str,
        typer.Option(help="Critic checkpoint folder, or a shipped critic's name."),
    ] = "reference",
    prompt: Annotated[
        str | None,
        typer.Option(help="Prompt for every image that has none (e.g. all of a folder)."),
    ] = None,
    batch_size: Annotated[int, typer.Option(help="Images per forward pass.")] = 16,
    device: Annotated[str, typer.Option(help="'auto', 'cpu' or 'cuda'.")] = "auto",
    runtime: Annotated[
        str, typer.Option(help="Vision side: 'torch', or 'onnxruntime' (CPU, faster there).")
    ] = "torch",
    workers: Annotated[
        int | None,
        typer.Option(min=0, help="Processes decoding images (0: none; default: one per 4 cores)."),
    ] = None,
    report: Annotated[
        Path | None,
        typer.Option(help="Also write a self-contained HTML report of the run here."),
    ] = None,
    group_by: Annotated[
        str | None,
        typer.Option(help="Manifest column whose values group the report's rows."),
    ] = None,
) -> None:
    """Score images: one record per image with quality and alignment, raw and 0-100, and
    the critic version (or the reason it could not be read)."""
    from eliq.critic.critic import RUNTIMES, Critic
    from eliq.report import row_groups, write_report
    from eliq.score_files import read_inputs, score_items, write_records

    setup_logging()
    if runtime not in RUNTIMES:
        raise typer.BadParameter(f"--runtime must be one of {', '.join(RUNTIMES)}")
    items = [(image, own or prompt) for image, own in read_inputs(input)]
    if group_by is not None and report is None:
        raise typer.BadParameter("--group-by groups the report's rows: add --report")
    try:  # before scoring: a wrong column costs nothing
        groups = row_groups(input, [image for image, _ in items], group_by) if report else None
    except ValueError as error:
        raise typer.BadParameter(str(error)) from None
    critic = Critic.from_pretrained(checkpoint, device, runtime)
    records: list[dict] = []

    def kept(stream):
        for record in stream:
            records.append(record)
            yield record

    start = time.perf_counter()
    scored, failed = write_records(kept(score_items(critic, items, batch_size, workers)), out)
    seconds = time.perf_counter() - start
    if report is not None:
        write_report(records, report, groups)
    (Console(stderr=True, markup=False) if out == "-" else console).print(
        f"{scored} images scored, {failed} could not be read; written to {out} "
        f"({seconds:.1f} s, {len(items) / max(seconds, 1e-9):.1f} images/s)"
    )


@app.command("compare")
def compare_command(
    a: Annotated[
        Path, typer.Argument(metavar="A.jsonl", help="Scores of A (`eliq score`'s JSONL or CSV).")
    ],
    b: Annotated[Path, typer.Argument(metavar="B.jsonl", help="Scores of B, compared with A.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print the numbers as JSON.")] = False,
    confidence: Annotated[
        float, typer.Option(min=0.5, max=0.999, help="Level of the intervals.")
    ] = 0.95,
) -> None:
    """B minus A per axis, with a bootstrap confidence interval (paired by prompt where
    both files share prompts). Score both with the same critic version."""
    from eliq.compare import compare_scores, describe, read_score_file, same_critic_version

    try:
        frames = read_score_file(a), read_score_file(b)
        same_critic_version(*frames)
    except (OSError, ValueError) as error:
        raise typer.BadParameter(str(error)) from None
    comparison = compare_scores(*frames, confidence=confidence)
    if as_json:
        typer.echo(
            json.dumps(
                {k: None if c is None else c.to_json() for k, c in comparison.items()},
                allow_nan=False,
            )
        )
        return
    console.print(describe(comparison, a.name, b.name))
    for axis, c in comparison.items():
        if c is not None:
            how = (
                f"paired over {c.paired_prompts} shared prompts" if c.paired_prompts else "unpaired"
            )
            console.print(f"  {axis}: n_a={c.n_a}, n_b={c.n_b}, {how}")


@eval_app.command("dataset")
def eval_dataset(
    dataset: Annotated[
        str,
        typer.Argument(
            help="A folder with images/ and a scores.csv (name[,prompt],<score column>), or "
            "a preset: agiqa3k, clive-part (under ../shared/datasets, from here or beside "
            "this checkout)."
        ),
    ],
    checkpoint: Annotated[
        str,
        typer.Option(help="Critic checkpoint folder, or a shipped critic's name."),
    ] = "reference",
    quality_column: Annotated[
        str | None,
        typer.Option(
            help="The human quality score's column (default: mos, mos_quality, or "
            "the only numeric column)."
        ),
    ] = None,
    alignment_column: Annotated[
        str | None, typer.Option(help="The human alignment score's column, if any.")
    ] = None,
    group_column: Annotated[
        str | None,
        typer.Option(help="Rank within each group of this column too (default: generator)."),
    ] = None,
    pairs: Annotated[
        list[Path] | None,
        typer.Option("--pairs", help="Pair sets for label-free pair accuracy (repeatable)."),
    ] = None,
    limit: Annotated[
        int | None, typer.Option(help="Evaluate every k-th image so that about N remain.")
    ] = None,
    out: Annotated[Path | None, typer.Option(help="Write per-image scores (CSV).")] = None,
    json_out: JsonOutOption = None,
    device: Annotated[str, typer.Option(help="'auto', 'cpu' or 'cuda'.")] = "auto",
) -> None:
    """SRCC/PLCC (with 95% bootstrap intervals) against a set's human scores, overall, per
    group and within groups, and Kendall's tau of the group ranking, for the critic and its
    untrained prior in the same run; label-free pair accuracy with --pairs."""
    from eliq.critic.critic import Critic
    from eliq.evaluation import evaluate, pairset_accuracy
    from eliq.scored_sets import read_scored_set, resolve

    setup_logging()
    try:  # a wrong folder or column fails before the critic loads
        scored = resolve(dataset, quality_column, alignment_column, group_column)
        scored = read_scored_set(scored)[0]
    except (FileNotFoundError, ValueError) as error:
        raise typer.BadParameter(str(error), param_hint="DATASET") from None
    critic = Critic.from_pretrained(checkpoint, device)
    report = evaluate(critic, scored, limit=limit)
    console.print(report.table())
    if report.axes["quality"].per_group:
        console.print(report.group_table())
    if pairs:
        accuracy = Table("family", "pair accuracy", title="label-free pairs")
        for family, value in pairset_accuracy(critic, pairs).items():
            accuracy.add_row(family, f"{value:.3f}")
        console.print(accuracy)
    if out is not None:
        report.scores.to_csv(out, index=False)
    if json_out is not None:
        json_out.write_text(json.dumps(report.to_json(), indent=2))


@eval_app.command(
    "agiqa3k",
    hidden=True,
    context_settings={"allow_extra_args": True, "ignore_unknown_options": True},
)
def eval_agiqa3k() -> None:
    """Moved: now eliq eval dataset agiqa3k."""
    raise typer.BadParameter("`eliq eval agiqa3k` is now `eliq eval dataset agiqa3k`")


@eval_app.command("leave-generators-out")
def eval_leave_generators_out(
    out: Annotated[Path, typer.Option(help="Folder for pairs, feature cache and critics.")],
    root: Annotated[Path | None, typer.Option(help=AGIQA_ROOT_HELP)] = None,
    held_out: Annotated[
        list[str] | None,
        typer.Option("--held-out", help="Generator group to hold out (repeatable; default all)."),
    ] = None,
    recipe: RecipeOption = None,
    critic_config: MovedOption = None,
    train_config: MovedOption = None,
    retune_config: MovedOption = None,
    per_positive: Annotated[int, typer.Option(help="Negatives per positive.")] = 4,
    limit: Annotated[int | None, typer.Option(help="Use an even sample of about N images.")] = None,
    photos: Annotated[
        str | None,
        typer.Option(
            help="Scored camera photos measured at every stage (a folder or preset; default: "
            "clive-part where it is; 'none' to skip)."
        ),
    ] = None,
    pristine: PristineOption = None,
    rendered: Annotated[
        bool,
        typer.Option(
            help="Also pair the Stable Diffusion 1.5 groups' worse renders (low-step, high "
            "and low guidance) with the same prompts' normal renders, as the daemon pairs a "
            "release's own renders: trained on in folds holding out neither group, retuned "
            "on in sd1.5_normal's."
        ),
    ] = False,
    json_out: JsonOutOption = None,
) -> None:
    """Per generator group: train on the others, score it, retune on its own images and
    prompts (label-free, daemon settings), score every group again; against the prior,
    on the groups and on camera photos."""
    from eliq.config import PairSettings
    from eliq.evaluation import default_agiqa3k_root
    from eliq.experiments import AGIQA3K_RENDERINGS, leave_generators_out
    from eliq.train import RETUNE_DEFAULTS

    setup_logging()
    photo_set = _photos(photos)
    chosen = _recipe(recipe, critic_config, train_config, retune_config)
    given = recipe is not None
    report = leave_generators_out(
        root or default_agiqa3k_root(),
        out,
        held_out,
        PairSettings(per_positive=per_positive),
        chosen.train if given else None,
        chosen.retune or RETUNE_DEFAULTS,
        chosen.critic if given else None,
        limit=limit,
        photos=photo_set,
        pristine=pristine or [],
        renderings=AGIQA3K_RENDERINGS if rendered else (),
    )
    _show(report, json_out)


@eval_app.command("leave-families-out")
def eval_leave_families_out(
    pairs: Annotated[list[Path], typer.Option("--pairs", help="Pair set (repeatable).")],
    out: Annotated[Path, typer.Option(help="Folder for the feature cache and critics.")],
    leave_out: Annotated[
        list[str] | None,
        typer.Option(
            "--leave-out",
            help="A family, or kind:<kind> for all of a kind (repeatable; default: each family).",
        ),
    ] = None,
    recipe: RecipeOption = None,
    critic_config: MovedOption = None,
    train_config: MovedOption = None,
    pristine: PristineOption = None,
    json_out: JsonOutOption = None,
) -> None:
    """Train without a negative family; pair accuracy on it says whether the critic learns
    quality or only its own distortions."""
    from eliq.experiments import leave_families_out

    setup_logging()
    chosen = _recipe(recipe, critic_config, train_config)
    given = recipe is not None
    report = leave_families_out(
        pairs,
        out,
        leave_out,
        chosen.train if given else None,
        chosen.critic if given else None,
        pristine=pristine or [],
    )
    _show(report, json_out)


@pairs_app.command("families")
def pairs_families() -> None:
    """List the negative families, built-in and from plug-ins."""
    from eliq.pairs import available_families

    table = Table("family", "aspect", "kind", "levels", "what it does")
    for name, family in available_families().items():
        table.add_row(name, family.aspect, family.kind, str(family.levels), family.description)
    console.print(table)


def _show(report, json_out: Path | None) -> None:
    """An experiment's table on the console, and its numbers as JSON when asked."""
    console.print(report.table())
    if json_out is not None:
        json_out.write_text(json.dumps(report.to_json(), indent=2))


def _photos(name: str | None):
    """The photos an experiment also measures: ``name`` (a folder or preset), or the
    ``clive-part`` preset where it is, or none (``none``, or the default missing)."""
    from eliq.scored_sets import read_scored_set, resolve

    if name == "none":
        return None
    try:
        return read_scored_set(resolve(name or "clive-part"))[0]
    except (FileNotFoundError, ValueError) as error:
        if name is None:
            console.print(f"no photos measured: {error}")
            return None
        raise typer.BadParameter(str(error), param_hint="--photos") from None


def _recipe(path: Path | None, *moved: Path | None):
    """The recipe at ``path`` (defaults without one); the two files of the earlier layout
    are refused with where their settings go now."""
    from eliq.train.recipe import Recipe

    if any(m is not None for m in moved):
        raise typer.BadParameter(
            "--critic-config, --train-config and --retune-config are now one --recipe file "
            "with the keys critic, train and retune (see recipes/critic-reference/recipe.json)"
        )
    try:
        return Recipe.load(path) if path is not None else Recipe()
    except ValueError as error:
        raise typer.BadParameter(str(error), param_hint="--recipe") from None


def _split(values: list[str] | None) -> list[str] | None:
    """Accept both ``--families a --families b`` and ``--families a,b``."""
    if not values:
        return None
    return [name.strip() for value in values for name in value.split(",") if name.strip()]


def _print_summary(summary: dict, out: Path) -> None:
    table = Table("aspect / family", "pairs", title=f"pair set {out}")
    for aspect, families in summary["per_family"].items():
        table.add_row(
            Text(aspect, style="bold"), Text(str(summary["per_aspect"][aspect]), style="bold")
        )
        for family, count in families.items():
            table.add_row(f"  {family}", str(count))
    console.print(table)
    console.print(
        f"{summary['pairs']} pairs from {summary['positives']} positives; "
        f"{summary['failed_positives']} positives could not be read (see errors.jsonl)"
    )


def main() -> None:
    """The ``eliq`` entry point: a user's mistake is one line, not a traceback."""
    run_app(app)


if __name__ == "__main__":
    main()
