"""A training run is one recipe file: the critic and its training together, stamped with
the eliq that wrote it, refusing what it does not know."""

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

import eliq
from eliq.cli import app
from eliq.critic import CriticConfig
from eliq.train import TrainSettings
from eliq.train.recipe import Recipe

REFERENCE = Path(__file__).resolve().parents[1] / "recipes" / "critic-reference" / "recipe.json"


def test_a_recipe_round_trips_stamped_with_the_eliq_that_wrote_it(tmp_path):
    recipe = Recipe(critic=CriticConfig(dim=32), train=TrainSettings(steps=7))
    recipe.save(tmp_path / "recipe.json")
    saved = json.loads((tmp_path / "recipe.json").read_text())
    assert saved["_eliq_version"] == eliq.__version__
    assert Recipe.load(tmp_path / "recipe.json") == recipe
    (tmp_path / "recipe.yaml").write_text("critic: {dim: 32}\ntrain: {steps: 7}\n")
    assert Recipe.load(tmp_path / "recipe.yaml") == recipe


def test_the_reference_recipe_loads():
    recipe = Recipe.load(REFERENCE)
    assert recipe.train.steps == 600 and recipe.critic.vision_backbone == "mobilenet_v2"


@pytest.mark.parametrize(
    ("body", "named"),
    [
        ({"critic": {"dimm": 32}}, "critic.dimm"),
        ({"train": {"stepz": 3}}, "train.stepz"),
        ({"critic": {"text_lora": {"rnak": 4}}}, "critic.text_lora.rnak"),
        ({"trian": {}}, "trian"),
        ({"train": {"learning_rate": float("nan")}}, "train.learning_rate"),
    ],
)
def test_a_mistake_in_a_recipe_names_the_file_and_the_key(tmp_path, body, named):
    path = tmp_path / "recipe.json"
    path.write_text(json.dumps(body))
    with pytest.raises(ValueError, match=named) as refused:
        Recipe.load(path)
    assert str(path) in str(refused.value)


def test_the_two_files_of_the_earlier_layout_are_refused_with_the_new_option(tmp_path):
    (tmp_path / "critic.json").write_text("{}")
    result = CliRunner().invoke(
        app,
        ["train", "--pairs", str(tmp_path), "--out", str(tmp_path / "out"),
         "--critic-config", str(tmp_path / "critic.json")],
    )  # fmt: skip
    assert result.exit_code == 2 and "--recipe" in result.output
    assert not (tmp_path / "out").exists()
