"""The pair factory: positives in, a pair set of aspect-specific negatives out.

For each positive it draws ``per_positive`` negatives, planned by
:mod:`eliq.pairs.planning` (families in turn from each aspect, a ladder of severities per
family, every choice seeded from the build seed, the positive and the family), so a pair is
the same whatever order, batch size or device produced it, and an interrupted build resumes
exactly. Generative families render with models :mod:`eliq.pairs.samplers` loads.

Images are loaded and saved by a thread pool; degradations run as batched tensor ops on
``settings.device`` over positives of the same size.

A build is a list of :class:`PairChunk` (``batch_size`` positives each, with the prompt
records their plans need), each made by :meth:`PairFactory.build_chunk` into the pair set's
image folders and written as one manifest part. :meth:`PairFactory.build` runs them in
order; a caller with workers elsewhere (the daemon on Ray) runs the chunks there and writes
the parts itself, in the same order, and gets the same pair set.
"""

from __future__ import annotations

import json
import logging
from collections import defaultdict
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import torch
from tqdm.auto import tqdm

from eliq import __version__
from eliq.config import ImageLimits, PairSettings
from eliq.devices import resolve_device
from eliq.imageio import ImageLoadError, load_image, save_image
from eliq.pairs.families import NegativeFamily
from eliq.pairs.pairset import PairRecord, PairSet, PairSetWriter
from eliq.pairs.planning import (
    PlannedNegative,
    plan_negatives,
    positive_digest,
    select_families,
)
from eliq.pairs.positives import Positive
from eliq.pairs.samplers import generative_families
from eliq.prompts.parser import PromptParser
from eliq.prompts.record import PromptRecord
from eliq.prompts.suite import load_suite
from eliq.seeding import torch_generator

log = logging.getLogger(__name__)

BUILD_VERSION = 1
"""Bump when a change makes the same positives and settings build other pairs: the shipped
critic records it (``eliq/data/critics/reference/built_from.json``) and its test then asks
for a rebuild."""


@dataclass(frozen=True)
class PairChunk:
    """Positives built together, with what their plans need: their prompts' records and
    every record a prompt swap may draw from."""

    positives: tuple[Positive, ...]
    records: dict[str, PromptRecord]
    donors: tuple[PromptRecord, ...]


@dataclass(frozen=True)
class ChunkResult:
    """A chunk's pairs (its images are already written) and the positives that failed."""

    records: list[PairRecord]
    errors: list[dict]


class PairFactory:
    """Builds pair sets; see the module docstring for how negatives are drawn."""

    def __init__(
        self,
        settings: PairSettings | None = None,
        limits: ImageLimits | None = None,
        suite: Sequence[PromptRecord] | None = None,
        parser: PromptParser | None = None,
        extra_families: Sequence[NegativeFamily] | None = None,
    ) -> None:
        """``extra_families`` defaults to the generative families that ``settings`` configures
        (a sampler for re-rendering, an image-to-image model); pass your own to override."""
        self.settings = settings or PairSettings()
        self.limits = limits or ImageLimits()
        if extra_families is None:
            extra_families = generative_families(self.settings)
        self.families = select_families(self.settings.families, extra_families)
        self.suite = list(suite) if suite is not None else load_suite()
        self.parser = parser or PromptParser(self.settings.spacy_pipelines)
        self.device = resolve_device(self.settings.device)

    # -- planning (pure: no images touched; see eliq.pairs.planning) ------------------------

    def prompt_records(self, positives: Sequence[Positive]) -> dict[str, PromptRecord]:
        """Records for the positives' prompts: the suite's own where the text matches,
        spaCy's parse otherwise."""
        by_text = {record.text: record for record in self.suite}
        missing = sorted({p.prompt for p in positives if p.prompt and p.prompt not in by_text})
        if missing:  # spaCy loads only when a prompt needs parsing
            by_text.update(zip(missing, self.parser.parse_many(missing), strict=True))
        return {p.prompt: by_text[p.prompt] for p in positives if p.prompt}

    def plan(
        self, positive: Positive, record: PromptRecord | None, donors: Sequence[PromptRecord]
    ) -> list[PlannedNegative]:
        """The negatives of one positive (:func:`~eliq.pairs.planning.plan_negatives`)."""
        return plan_negatives(self.settings, self.families, positive, record, donors)

    # -- building ----------------------------------------------------------------------------

    def build(self, positives: Sequence[Positive], out: Path, progress: bool = True) -> PairSet:
        """Write the pair set of ``positives`` to ``out`` (resuming an interrupted build)."""
        writer = self.writer(out)
        chunks = self.chunks(positives, writer)
        total = sum(len(chunk.positives) for chunk in chunks)
        with tqdm(total=total, unit="positive", desc="pairs", disable=not progress) as bar:
            for chunk in chunks:
                result = self.build_chunk(chunk, writer)
                writer.write_part(result.records, result.errors)
                bar.update(len(chunk.positives))
        pair_set = writer.finish()
        log.info("pair set %s complete: %d pairs", out, len(pair_set))
        return pair_set

    def writer(self, out: Path) -> PairSetWriter:
        """The pair set at ``out``, opened for this factory's build (created if missing)."""
        return PairSetWriter(out, self.build_info())

    def chunks(self, positives: Sequence[Positive], writer: PairSetWriter) -> list[PairChunk]:
        """The positives ``writer``'s pair set still lacks, in chunks of ``batch_size``."""
        done = writer.done_positives()
        todo = [p for p in positives if p.key not in done]
        if done:
            log.info("resuming: %d positives already done, %d to go", len(done), len(todo))
        records = self.prompt_records(positives)
        donors = tuple({r.text: r for r in [*records.values(), *self.suite]}.values())
        return [
            PairChunk(
                tuple(chunk),
                {p.prompt: records[p.prompt] for p in chunk if p.prompt in records},
                donors,
            )
            for chunk in _chunks(todo, self.settings.batch_size)
        ]

    def build_chunk(self, chunk: PairChunk, writer: PairSetWriter) -> ChunkResult:
        """Make the chunk's negatives into ``writer``'s image folders; its manifest rows
        are returned, not written."""
        with ThreadPoolExecutor(self.settings.workers) as pool:
            loaded, errors = self._load(pool, chunk.positives)
            plans = [
                n
                for p in chunk.positives
                if p.key in loaded
                for n in self.plan(p, chunk.records.get(p.prompt or ""), chunk.donors)
            ]
            return ChunkResult(self._make(pool, writer, loaded, plans), errors)

    def build_info(self) -> dict:
        """What determines the pairs; a resumed build must match it exactly."""
        return {
            "eliq": __version__,
            "seed": self.settings.seed,
            "per_positive": self.settings.per_positive,
            "ladder": self.settings.ladder,
            "families": sorted(self.families),
            "image_format": self.settings.image_format,
            "sampler": self.settings.sampler,
            "img2img": self.settings.img2img,
            "max_side": self.limits.max_side,
        }

    def _load(
        self, pool: ThreadPoolExecutor, chunk: Sequence[Positive]
    ) -> tuple[dict[str, torch.Tensor], list[dict]]:
        def load(positive: Positive) -> torch.Tensor | ImageLoadError:
            try:
                return load_image(positive.image, self.limits)
            except ImageLoadError as error:
                return error

        loaded, errors = {}, []
        for positive, result in zip(chunk, pool.map(load, chunk), strict=True):
            if isinstance(result, ImageLoadError):
                log.warning("skipping %s", result)
                errors.append(
                    {
                        "positive_id": positive.key,
                        "image": str(positive.image),
                        "error": result.reason,
                    }
                )
            else:
                loaded[positive.key] = result
        return loaded, errors

    def _make(
        self,
        pool: ThreadPoolExecutor,
        writer: PairSetWriter,
        images: dict[str, torch.Tensor],
        plans: Sequence[PlannedNegative],
    ) -> list[PairRecord]:
        fmt = self.settings.image_format
        positive_paths = {
            key: writer.positives_dir / f"{positive_digest(key)}.{fmt}" for key in images
        }
        saves = [pool.submit(save_image, images[k], positive_paths[k], fmt) for k in images]
        negative_paths: dict[str, Path] = {}
        groups: dict[tuple, list[PlannedNegative]] = defaultdict(list)
        for plan in plans:
            if plan.family.degrade is not None:
                size = tuple(images[plan.positive.key].shape[-2:])
                groups[(plan.family.name, size)].append(plan)
            elif plan.family.generate is not None:
                groups[(plan.family.name,)].append(plan)
            else:
                negative_paths[plan.pair_id] = positive_paths[plan.positive.key]
        for group in groups.values():
            for plan, image in zip(group, self._negatives(group, images), strict=True):
                path = writer.negatives_dir / f"{plan.pair_id}.{fmt}"
                saves.append(pool.submit(save_image, image, path, fmt))
                negative_paths[plan.pair_id] = path
        for save in saves:
            save.result()
        return [self._record(plan, positive_paths, negative_paths, writer.root) for plan in plans]

    def _negatives(
        self, group: Sequence[PlannedNegative], images: dict[str, torch.Tensor]
    ) -> list[torch.Tensor]:
        """Run one family over a group of plans: a batched tensor op or a generative model."""
        family = group[0].family
        if family.generate is not None:
            out = family.generate(
                [images[p.positive.key] for p in group],
                [p.positive.prompt or "" for p in group],
                [p.positive.seed if p.positive.seed is not None else p.seed for p in group],
                [p.severity for p in group],
            )
        else:
            batch = torch.stack([images[p.positive.key] for p in group]).to(self.device)
            severity = torch.tensor([p.severity for p in group], device=self.device)
            generators = [torch_generator(p.seed) for p in group]
            with torch.inference_mode():
                out = family.degrade(batch, severity, generators)
        for image in out:
            if not torch.isfinite(image).all():
                raise RuntimeError(f"family {family.name!r} produced non-finite pixels")
        return [image.clamp(0, 1).cpu() for image in out]

    def _record(
        self,
        plan: PlannedNegative,
        positive_paths: dict[str, Path],
        negative_paths: dict[str, Path],
        root: Path,
    ) -> PairRecord:
        positive = plan.positive
        provenance = {"source": str(positive.image), "eliq": __version__}
        if plan.detail:
            provenance["edit"] = plan.detail
        if positive.seed is not None:
            provenance["generation_seed"] = positive.seed
        return PairRecord(
            pair_id=plan.pair_id,
            positive_id=positive.key,
            positive=str(positive_paths[positive.key].relative_to(root)),
            negative=str(negative_paths[plan.pair_id].relative_to(root)),
            positive_prompt=positive.prompt,
            negative_prompt=plan.negative_prompt or positive.prompt,
            aspect=plan.family.aspect,
            family=plan.family.name,
            kind=plan.family.kind,
            severity=plan.severity,
            seed=plan.seed,
            provenance=json.dumps(provenance, sort_keys=True),
        )


def _chunks(items: Sequence[Positive], size: int) -> Iterator[Sequence[Positive]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]
