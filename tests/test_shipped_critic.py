"""The reference critic ships with the package: it loads by name, offline, and it is what
the committed recipe (`recipes/critic-reference/recipe.json`) trains (`make ship-critic`):
its record of what it was built from matches this checkout."""

import json
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from eliq.cli import app
from eliq.critic import Critic, CriticConfig
from eliq.critic.shipped import DEFAULT_CRITIC, critic_folder
from eliq.train import TrainSettings
from eliq.train.recipe import Recipe
from tests.conftest import photo_path
from tools.shipped_critic import build_rule, stale_inputs

RECIPE = Path(__file__).parents[1] / "recipes" / "critic-reference" / "recipe.json"


@pytest.fixture(scope="module")
def shipped():
    return Critic.from_pretrained(DEFAULT_CRITIC, device="cpu")


def test_the_shipped_critic_was_trained_by_the_committed_recipe():
    folder = critic_folder(DEFAULT_CRITIC)
    recipe = Recipe.load(RECIPE)
    saved = CriticConfig.load(folder)
    assert saved.backbone_revision  # the build records the backbones it trained on
    assert saved.model_copy(update={"backbone_revision": None}) == recipe.critic
    training = json.loads((folder / "training.json").read_text())
    recipe_training = recipe.train
    assert TrainSettings.model_validate(training["settings"]) == recipe_training
    assert training["steps"] == recipe_training.steps and not training["cut_short_by_time_budget"]
    assert training["init"] is None and training["replay"] == []


def test_the_shipped_weights_were_rebuilt_with_their_inputs():
    """A change to the recipe, the build commands, the pair factory's or trainer's version
    or the backbones, or weights copied in without their record, fails here until
    `make ship-critic` rebuilds and records them in the same change."""
    assert stale_inputs() == [], "run `make ship-critic` and commit eliq/data/critics/reference"


def test_the_record_digests_the_build_rule_alone(tmp_path):
    makefile = tmp_path / "Makefile"
    makefile.write_text("a:\n\ttrue\n\ncritic-build: venv\n\teliq train --steps 1\n\nb:\n")
    assert build_rule(makefile) == "critic-build: venv\n\teliq train --steps 1"


def test_the_shipped_critic_loads_by_name_and_reads_its_scale(shipped):
    assert shipped.scale is not None and "training positives" in shipped.scale.anchors
    photo = shipped.score(photo_path("chelsea.png"), "a cat")[0]
    assert 0 <= photo.quality_scaled <= 100 and 0 <= photo.alignment_scaled <= 100
    with pytest.raises(FileNotFoundError, match="known: reference"):
        Critic.from_pretrained("no-such-critic")


def test_uniform_noise_scores_below_almost_every_training_image(shipped):
    """The regression the scale makes readable: a uniform-noise image once outscored the
    best image of the shared set. The shipped critic puts it at the 1st percentile of its
    training positives: its sharpness prior takes out what the estimated noise adds to the
    Laplacian (before that, with the decorrelation penalty keeping the residual from undoing
    the prior, it sat at the 7th; docs/results/quality.md)."""
    noise = torch.rand(3, 512, 512, generator=torch.Generator().manual_seed(0))
    assert shipped.score(noise)[0].quality_scaled < 3


def test_eliq_score_needs_no_checkpoint(tmp_path):
    folder = tmp_path / "images"
    folder.mkdir()
    for name in ("chelsea.png", "coffee.png"):
        (folder / name).write_bytes(photo_path(name).read_bytes())
    out = tmp_path / "scores.jsonl"
    result = CliRunner().invoke(app, ["score", str(folder), "--out", str(out), "--device", "cpu"])
    assert result.exit_code == 0, result.output
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    version = Critic.from_pretrained(DEFAULT_CRITIC, device="cpu").version
    assert len(lines) == 2 and all(line["critic_version"] == version for line in lines)
