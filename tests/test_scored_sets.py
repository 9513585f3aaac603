"""Human-scored folders: presets, any folder's scores.csv, and clear errors for what is
missing (real photos from scikit-image, real scores from the shared sets)."""

import shutil

import pandas as pd
import pytest

from eliq.evaluation import correlation, read_agiqa3k
from eliq.scored_sets import read_scored_set, resolve
from tests.conftest import SHARED, photo_path

PHOTOS = ["astronaut.png", "chelsea.png", "coffee.png", "rocket.jpg"]


def scored_folder(tmp_path, header: str, rows: list[str]):
    folder = tmp_path / "set"
    (folder / "images").mkdir(parents=True)
    for name in PHOTOS:
        shutil.copyfile(photo_path(name), folder / "images" / name)
    (folder / "scores.csv").write_text("\n".join([header, *rows]) + "\n")
    return folder


def test_the_presets_name_their_columns():
    agiqa, frame = read_scored_set(resolve("agiqa3k"))
    assert (agiqa.quality, agiqa.alignment, agiqa.group) == (
        "mos_quality",
        "mos_align",
        "generator",
    )
    assert len(frame) == len(pd.read_csv(SHARED / "datasets" / "agiqa3k" / "scores.csv"))
    assert frame["prompt"].notna().all()
    clive, photos = read_scored_set(resolve("clive-part"))
    assert (clive.quality, clive.alignment, clive.group, clive.prompt) == ("mos", None, None, None)
    assert len(photos) == 465 and photos["prompt"].isna().all()
    assert read_agiqa3k(agiqa.root).equals(frame)


def test_a_folder_gives_its_one_numeric_column_and_its_prompts(tmp_path):
    rows = [f"{n},a photo of {n[:-4]},{i}" for i, n in enumerate(PHOTOS)]
    settled, frame = read_scored_set(resolve(scored_folder(tmp_path, "name,prompt,rating", rows)))
    assert settled.quality == "rating" and settled.prompt == "prompt" and settled.group is None
    assert list(frame["prompt"]) == [f"a photo of {n[:-4]}" for n in PHOTOS]
    assert all(path.endswith(name) for path, name in zip(frame["image"], PHOTOS, strict=True))


def test_a_folder_with_two_numeric_columns_must_say_which(tmp_path):
    rows = [f"{n},{i},{-i}" for i, n in enumerate(PHOTOS)]
    folder = scored_folder(tmp_path, "name,sharpness,colour", rows)
    with pytest.raises(ValueError, match="--quality-column"):
        read_scored_set(resolve(folder))
    settled, _ = read_scored_set(resolve(folder, quality="colour"))
    assert settled.quality == "colour"
    with pytest.raises(ValueError, match="no group column 'camera'"):
        read_scored_set(resolve(folder, quality="colour", group="camera"))


def test_a_missing_image_or_file_is_named(tmp_path):
    rows = [f"{n},{i}" for i, n in enumerate([*PHOTOS, "lost.png"])]
    with pytest.raises(FileNotFoundError, match="1 images .* 'lost.png'"):
        read_scored_set(resolve(scored_folder(tmp_path, "name,mos", rows)))
    with pytest.raises(FileNotFoundError, match="agiqa3k, clive-part"):
        resolve(tmp_path / "empty")


def test_correlations_carry_bootstrap_intervals_around_them():
    frame = pd.read_csv(SHARED / "datasets" / "agiqa3k" / "scores.csv")
    result = correlation(frame["mos_align"], frame["mos_quality"], intervals=True)
    assert result.srcc_interval.low < result.srcc < result.srcc_interval.high
    assert result.plcc_interval.low < result.plcc < result.plcc_interval.high
    assert result.srcc_interval.high - result.srcc_interval.low < 0.1  # 2,982 images
    assert correlation(frame["mos_align"], frame["mos_quality"]).srcc_interval is None
