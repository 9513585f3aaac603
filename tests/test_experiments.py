"""The label-free experiments: what each fold trains on, what it is scored on, and that folds
share pair sets and the feature cache (real pairs from AGIQA-3K images, small critics)."""

import json
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from eliq.cli import app
from eliq.config import PairSettings
from eliq.critic import CriticConfig, LoraSettings
from eliq.demo import write_demo_positives
from eliq.evaluation import read_agiqa3k
from eliq.experiments import (
    AGIQA3K_RENDERINGS,
    leave_families_out,
    leave_generators_out,
    rendered_pair_sets,
)
from eliq.pairs.factory import PairFactory
from eliq.pairs.pairset import PairSetError
from eliq.pairs.positives import read_positives
from eliq.pairs.rendered import Render, rendered_pair_set
from eliq.train import TrainSettings
from eliq.train.data import load_pairs
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


def small_agiqa(tmp_path, groups: dict[str, int]):
    """The first images of some AGIQA-3K groups, as a root of their own."""
    root = tmp_path / "agiqa"
    (root / "images").mkdir(parents=True)
    rows = pd.read_csv(AGIQA / "scores.csv")
    rows = pd.concat(rows[rows["generator"] == group].head(n) for group, n in groups.items())
    for name in rows["name"]:
        (root / "images" / name).symlink_to(AGIQA / "images" / name)
    rows.to_csv(root / "scores.csv", index=False)
    return root


def test_leave_generators_out_pairs_worse_renders_never_with_the_held_out_group(
    tmp_path,
):
    root = small_agiqa(tmp_path, {"AttnGAN_normal": 3, "sd1.5_normal": 4, "sd1.5_lowstep": 4})
    out = tmp_path / "lgo"
    settings = TrainSettings(steps=2, batch_pairs=8, held_out_fraction=0.25, device="cpu")
    report = leave_generators_out(
        root,
        out,
        ["AttnGAN_normal", "sd1.5_lowstep", "sd1.5_normal"],
        PairSettings(per_positive=1),
        settings,
        settings,
        SMALL,
        progress=False,
        renderings=AGIQA3K_RENDERINGS,
    )
    assert [f.group for f in report.folds] == ["AttnGAN_normal", "sd1.5_lowstep", "sd1.5_normal"]
    rendered = out / "rendered-all" / "sd1.5_lowstep"
    pairs = load_pairs([rendered], "test")
    assert len(pairs) == 4 and set(pairs["family"]) == {"fewer_steps"}
    assert set(pairs["axis"]) == {0}  # a quality negative
    for row in pairs.itertuples():  # each intended render against its own prompt's worse one
        number = Path(row.positive).name.removeprefix("sd1.5_normal")
        assert Path(row.negative).name == f"sd1.5_lowstep{number}"
        assert row.positive_prompt == row.negative_prompt
        original = AGIQA / "images" / Path(row.negative).name
        assert Path(row.negative).read_bytes() == original.read_bytes()
    assert not (out / "rendered-all" / "sd1.5_highcorr").exists()  # no such group here

    def used(fold: str, stage: str) -> list[str]:
        summary = json.loads((out / "folds" / fold / stage / "training.json").read_text())
        return sorted(summary["pairs"]), sorted(summary["replay"])

    # trained on where neither side is held out, as the group's own pairs are
    assert str(rendered) in used("AttnGAN_normal", "trained")[0]
    assert str(rendered) in used("AttnGAN_normal", "retuned")[1]
    # never while its worse renders, or its intended ones, are the held-out group
    for fold in ("sd1.5_lowstep", "sd1.5_normal"):
        assert str(rendered) not in used(fold, "trained")[0]
    assert str(rendered) not in used("sd1.5_lowstep", "retuned")[0]
    # the group that renders them retunes on them, as the daemon retunes on a release's renders
    own, replay = used("sd1.5_normal", "retuned")
    assert own == sorted([str(out / "pairs-all" / "sd1.5_normal"), str(rendered)])
    assert str(rendered) not in replay


def test_rendered_pairs_refuse_renders_of_other_prompts(tmp_path):
    frame = read_agiqa3k(small_agiqa(tmp_path, {"sd1.5_normal": 2, "sd1.5_lowstep": 2}))
    frame.loc[frame["generator"] == "sd1.5_lowstep", "prompt"] = "something else"
    with pytest.raises(ValueError, match="is not sd1.5_normal's prompts rendered again"):
        rendered_pair_sets(frame, AGIQA3K_RENDERINGS, tmp_path / "rendered")


def test_a_rendered_pair_set_is_built_once_and_names_its_family(tmp_path):
    images = sorted((AGIQA / "images").glob("sd1.5_*_00[01].jpg"))
    normal = [i for i in images if "normal" in i.name]
    worse = [i for i in images if "lowstep" in i.name]
    renders = [Render(p.name, p, n, "a prompt") for p, n in zip(normal, worse, strict=True)]
    first = rendered_pair_set(renders, "fewer_steps", tmp_path / "set")
    stamp = (tmp_path / "set" / "pairset.json").stat().st_mtime_ns
    again = rendered_pair_set(renders, "fewer_steps", tmp_path / "set")
    assert again.root == first.root and len(again) == 2
    assert (tmp_path / "set" / "pairset.json").stat().st_mtime_ns == stamp
    with pytest.raises(PairSetError, match="other settings"):  # other renders, same folder
        rendered_pair_set(renders[:1], "fewer_steps", tmp_path / "set")
    with pytest.raises(ValueError, match="unknown resampling family 'blurred'"):
        rendered_pair_set(renders, "blurred", tmp_path / "other")
    with pytest.raises(ValueError, match="two renders share a key name"):
        rendered_pair_set([renders[0], renders[0]], "fewer_steps", tmp_path / "other")
