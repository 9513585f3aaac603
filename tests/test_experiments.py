"""The label-free experiments: what each fold trains on, what it is scored on, and that folds
share pair sets and the feature cache (real pairs from AGIQA-3K images, small critics)."""

import json

import pandas as pd
import pytest
from typer.testing import CliRunner

from eliq.cli import app
from eliq.config import PairSettings
from eliq.critic import CriticConfig, LoraSettings
from eliq.demo import write_demo_positives
from eliq.experiments import leave_families_out
from eliq.pairs.factory import PairFactory
from eliq.pairs.positives import read_positives
from eliq.train import TrainSettings
from eliq.train.recipe import Recipe
from tests.conftest import SHARED

SMALL = CriticConfig(
    crops=1, dim=32, decoder_layers=1, queries_per_axis=2, vision_lora=LoraSettings(enabled=False)
)
AGIQA = SHARED / "datasets" / "agiqa3k"
CLIVE = SHARED / "datasets" / "clive-part"


def some_photos(tmp_path, count: int = 12):
    """The first ``count`` photos of the shared camera set, as a scored folder of their own."""
    folder = tmp_path / "photos"
    (folder / "images").mkdir(parents=True)
    rows = pd.read_csv(CLIVE / "scores.csv").head(count)
    for name in rows["name"]:
        (folder / "images" / name).symlink_to(CLIVE / "images" / name)
    rows.to_csv(folder / "scores.csv", index=False)
    return folder


def test_leave_generators_out_trains_without_the_group_then_retunes_on_it(tmp_path):
    Recipe(
        critic=SMALL,
        train=TrainSettings(steps=2, batch_pairs=8, device="cpu"),
        retune=TrainSettings(steps=2, batch_pairs=8, held_out_fraction=0.2, device="cpu"),
    ).save(tmp_path / "recipe.json")
    out = tmp_path / "lgo"
    args = [
        "eval",
        "leave-generators-out",
        "--held-out",
        "sd1.5_lowstep",
        "--out",
        str(out),
        "--root",
        str(AGIQA),
        "--recipe",
        str(tmp_path / "recipe.json"),
        "--per-positive",
        "2",
        "--limit",
        "28",
        "--json",
        str(tmp_path / "report.json"),
        "--photos",
        str(some_photos(tmp_path)),
    ]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    pair_sets = sorted(p.name for p in (out / "pairs-28").iterdir())
    assert len(pair_sets) == 7 and "sd1.5_lowstep" in pair_sets
    fold = out / "folds" / "sd1.5_lowstep"
    trained = json.loads((fold / "trained" / "training.json").read_text())
    assert len(trained["pairs"]) == 6
    assert not any(p.endswith("sd1.5_lowstep") for p in trained["pairs"])
    retuned = json.loads((fold / "retuned" / "training.json").read_text())
    assert [p.rsplit("/", 1)[1] for p in retuned["pairs"]] == ["sd1.5_lowstep"]
    assert sorted(retuned["replay"]) == sorted(trained["pairs"])
    assert retuned["init"] == str(fold / "trained")
    assert retuned["settings"]["steps"] == 2 and retuned["settings"]["held_out_fraction"] == 0.2

    report = json.loads((tmp_path / "report.json").read_text())
    (only,) = report["folds"]
    assert only["group"] == "sd1.5_lowstep" and only["images"] == 4
    for axis in ("quality", "alignment", "overall_quality", "photos_quality"):
        assert set(only[axis]) == {"prior", "trained", "retuned"}
        assert all(-1 <= v <= 1 for v in only[axis].values())
    assert report["summary"]["photos_prior"] == only["photos_quality"]["prior"]
    assert report["summary"]["groups_improved_by_retune"] in (0, 1)
    assert "| sd1.5_lowstep | 4 |" in result.output

    cached = sorted((out / "features").rglob("*.safetensors"))
    assert cached  # a rerun computes no feature again and gives the same report
    again = CliRunner().invoke(app, args)
    assert again.exit_code == 0, again.output
    assert sorted((out / "features").rglob("*.safetensors")) == cached
    assert json.loads((tmp_path / "report.json").read_text()) == report


def test_leave_generators_out_names_an_unknown_group(tmp_path):
    result = CliRunner().invoke(
        app,
        [
            "eval",
            "leave-generators-out",
            "--held-out",
            "sdxl",
            "--out",
            str(tmp_path / "x"),
            "--root",
            str(AGIQA),
            "--limit",
            "14",
        ],
    )
    assert result.exit_code != 0
    assert "unknown generator groups ['sdxl']" in str(result.exception)


@pytest.fixture(scope="module")
def demo_pairs(tmp_path_factory):
    root = tmp_path_factory.mktemp("lofo")
    positives = read_positives(write_demo_positives(root / "positives"))
    return PairFactory(PairSettings(per_positive=6)).build(positives, root / "pairs", False).root


def test_leave_families_out_never_trains_on_the_left_out_family(demo_pairs, tmp_path):
    from eliq.train.data import load_pairs

    pairs = load_pairs([demo_pairs], "test")
    family = pairs[pairs["axis"] == 0]["family"].value_counts().index[0]
    kind = pairs[pairs["family"] == family]["kind"].iloc[0]
    settings = TrainSettings(steps=2, batch_pairs=8, device="cpu")
    report = leave_families_out(
        [demo_pairs], tmp_path, [family, f"kind:{kind}"], settings, SMALL, progress=False
    )
    first, by_kind = report.folds
    assert first.left_out == [family] and first.pairs == (pairs["family"] == family).sum()
    assert family in by_kind.left_out
    assert set(by_kind.left_out) == set(pairs[pairs["kind"] == kind]["family"])
    for fold in report.folds:
        assert 0 <= fold.prior <= 1 and 0 <= fold.left_out_accuracy <= 1
    summary = json.loads((tmp_path / "folds" / family / "training.json").read_text())
    assert summary["settings"]["exclude_families"] == [family]
    with pytest.raises(ValueError, match="no pairs of family 'nope'"):
        leave_families_out([demo_pairs], tmp_path, ["nope"], settings, SMALL, progress=False)
