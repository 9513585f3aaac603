"""Model-rendered negatives with a real (tiny, random) diffusers pipeline on the CPU."""

import csv

import numpy as np
import pytest
from PIL import Image

from eliq.config import PairSettings
from eliq.generation import DiffusersSampler, Sampler, UnsafeCheckpointError
from eliq.imageio import load_image
from eliq.pairs.factory import PairFactory
from eliq.pairs.positives import read_positives
from tests.tiny_diffusers import build_tiny_pipeline

PROMPTS = ["a red apple on a wooden table", "two black cats on a sofa", "a blue car in the snow"]


@pytest.fixture(scope="module")
def tiny_pipeline(tmp_path_factory):
    return build_tiny_pipeline(tmp_path_factory.mktemp("tiny-sd"))


@pytest.fixture(scope="module")
def sampler(tiny_pipeline):
    return DiffusersSampler.from_pretrained(
        tiny_pipeline, device="cpu", default_steps=6, size=(64, 64)
    )


def test_sampler_renders_prompts_reproducibly(sampler):
    assert isinstance(sampler, Sampler)
    first = list(sampler.sample(PROMPTS[:2], [1, 2]))
    again = list(sampler.sample(PROMPTS[:2], [1, 2]))
    assert [(p, s) for p, s, _ in first] == [(PROMPTS[0], 1), (PROMPTS[1], 2)]
    assert first[0][2].size == (64, 64)
    assert np.array_equal(np.asarray(first[0][2]), np.asarray(again[0][2]))
    assert not np.array_equal(np.asarray(first[0][2]), np.asarray(first[1][2]))
    [(_, _, fewer)] = sampler.sample(PROMPTS[:1], [1], steps=2)
    assert not np.array_equal(np.asarray(fewer), np.asarray(first[0][2]))
    [(_, _, edited)] = sampler.sample(PROMPTS[:1], [1], image=[first[0][2]], strength=0.5)
    assert edited.size == (64, 64)
    with pytest.raises(TypeError, match="unknown sampling overrides"):
        list(sampler.sample(PROMPTS[:1], [1], nonsense=3))


def test_pickle_only_checkpoints_are_refused(tmp_path):
    folder = build_tiny_pipeline(tmp_path / "pickled", safe=False)
    assert not list((folder / "unet").glob("*.safetensors"))
    with pytest.raises(UnsafeCheckpointError, match="never unpickles"):
        DiffusersSampler.from_pretrained(folder, device="cpu")


def test_factory_adds_model_rendered_negatives(sampler, tiny_pipeline, tmp_path):
    folder = tmp_path / "positives"
    folder.mkdir()
    with (folder / "manifest.csv").open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["image", "prompt", "seed"])
        for index, (prompt, seed, image) in enumerate(sampler.sample(PROMPTS, [10, 11, 12])):
            image.save(folder / f"{index}.png")
            writer.writerow([f"{index}.png", prompt, seed])
    positives = read_positives(folder / "manifest.csv")
    generative = ["fewer_steps", "off_guidance", "img2img_degrade"]
    settings = PairSettings(
        families=generative, per_positive=6, sampler=str(tiny_pipeline), img2img=str(tiny_pipeline)
    )
    pair_set = PairFactory(settings).build(positives, tmp_path / "pairs", progress=False)
    table = pair_set.table().to_pylist()
    assert {row["family"] for row in table} == set(generative)
    assert len(table) == 18
    for row in table:
        positive = load_image(pair_set.path(row["positive"]))
        negative = load_image(pair_set.path(row["negative"]))
        assert negative.shape == positive.shape
        assert (negative - positive).abs().mean() > 1e-3
    # the positive was this sampler's render at 64x64 with its default steps: resampling the
    # same prompt and seed with fewer steps changes it, and the build is reproducible
    again = PairFactory(settings).build(positives, tmp_path / "again", progress=False)
    assert sorted(r["pair_id"] for r in again.table().to_pylist()) == sorted(
        r["pair_id"] for r in table
    )


def test_planning_a_build_loads_no_model(tmp_path):
    """The daemon plans the chunks of a build wherever they are made: only making one
    loads the sampler, so a model that cannot load fails there and not before."""
    folder = tmp_path / "positives"
    folder.mkdir()
    Image.new("RGB", (64, 64), "red").save(folder / "0.png")
    (folder / "manifest.csv").write_text(f"image,prompt,seed\n0.png,{PROMPTS[0]},10\n")
    positives = read_positives(folder / "manifest.csv")
    missing = tmp_path / "no-such-pipeline"
    factory = PairFactory(PairSettings(families=["fewer_steps"], sampler=str(missing)))
    writer = factory.writer(tmp_path / "pairs")
    (chunk,) = factory.chunks(positives, writer)
    assert chunk.positives == tuple(positives)
    with pytest.raises(Exception, match="no-such-pipeline"):
        factory.build_chunk(chunk, writer)
