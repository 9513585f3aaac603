"""Sample: render the release on the prompt suite with fixed seeds (or read its stored
outputs) into ``samples/`` with a ``manifest.csv``, written aside and then renamed.

Rendering fans out over shards of the suite on the executor (:mod:`daemon.tasks.sampling`);
images are named by prompt index and seed, so the result does not depend on the sharding.
"""

from __future__ import annotations

import csv
import shutil
import tempfile
from pathlib import Path
from typing import Any

from PIL import Image

from adapters import GENERATORS, create_generator
from daemon.cycle.context import ReleaseContext, StepResult, Stopping
from daemon.state.tables import SampleSet
from daemon.tasks.sampling import render_shard, shard_suite
from eliq.imageio import from_pil, save_image
from eliq.prompts import load_suite


def sample(context: ReleaseContext) -> StepResult:
    release, ports = context.release, context.ports
    spec = next(
        (s for s in context.settings.registry_specs() if s.name == release.registry_name), None
    )
    loader = release.loader
    options = {**loader.get("options", {}), **(spec.generator if spec else {})}
    if loader.get("revision") is not None:
        options.setdefault("revision", loader["revision"])
    if options.get("single_file"):  # a checkpoint downloaded once, kept with the release
        options.setdefault("download_dir", str(context.workspace.weights))
    if getattr(GENERATORS.get(loader["kind"]), "renders", True):
        outputs = _render(context, loader["kind"], str(loader["ref"]), options)
    else:  # stored outputs: read here, named by their place in the release
        generator = create_generator(loader["kind"], ref=loader["ref"], **options)
        outputs = (
            (f"{index:05d}.png", prompt, seed, image)
            for index, (prompt, seed, image) in enumerate(generator.sample())
        )
    target = context.workspace.samples
    target.parent.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix=".samples-", dir=target.parent))
    rows = []
    for name, prompt, seed, image in outputs:
        if ports.stop.is_set():
            shutil.rmtree(scratch)
            raise Stopping
        save_image(from_pil(image), scratch / name)
        rows.append({"image": name, "prompt": prompt or "", "seed": "" if seed is None else seed})
    if not rows:
        shutil.rmtree(scratch)
        raise RuntimeError(f"release {release.id} yielded no images")
    with (scratch / "manifest.csv").open("w", newline="", encoding="utf-8") as file:
        writer = csv.DictWriter(file, ["image", "prompt", "seed"])
        writer.writeheader()
        writer.writerows(rows)
    if target.exists():
        shutil.rmtree(target)
    scratch.rename(target)
    return StepResult(save=[SampleSet(release_id=release.id, folder=str(target), images=len(rows))])


def _render(
    context: ReleaseContext, kind: str, ref: str, options: dict[str, Any]
) -> list[tuple[str, str, int, Image.Image]]:
    """The prompt suite rendered in shards on the executor, in the suite's order."""
    settings, ports = context.settings, context.ports
    sampling = settings.sampling
    suite = load_suite(sampling.suite) if sampling.suite else load_suite()
    prompts = [record.text for record in suite[: sampling.prompts]]
    shards = shard_suite(
        kind,
        ref,
        options,
        prompts,
        sampling.seed,
        sampling.shard_prompts,
        settings.executor.cpu_threads,
    )
    with context.executor() as executor:
        rendered = executor.map(render_shard, shards, ports.stop.is_set)
    images = sorted((image for shard in rendered for image in shard), key=lambda i: i.index)
    return [(i.name, i.prompt, i.seed, Image.fromarray(i.pixels)) for i in images]
