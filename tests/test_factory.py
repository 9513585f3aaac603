import csv
import shutil

import pytest
from PIL import Image
from typer.testing import CliRunner

from eliq.cli import app
from eliq.config import PairSettings
from eliq.demo import DEMO_PHOTOS
from eliq.imageio import load_image
from eliq.pairs.factory import PairFactory
from eliq.pairs.pairset import PairSet, PairSetError, PairSetWriter
from eliq.pairs.positives import ManifestError, read_positives
from tests.conftest import photo_path

BAD_FILES = {"truncated.jpg": "truncated", "notes.png": "not an image", "gone.png": "not found"}


@pytest.fixture(scope="module")
def positives_dir(tmp_path_factory):
    """Five real photos with prompts, three unusable files, and human-score columns."""
    folder = tmp_path_factory.mktemp("positives")
    photos = list(DEMO_PHOTOS.items())[:5]
    for name, _ in photos:
        shutil.copyfile(photo_path(name), folder / name)
    rocket = photo_path("rocket.jpg").read_bytes()
    (folder / "truncated.jpg").write_bytes(rocket[: len(rocket) // 3])
    (folder / "notes.png").write_text("not an image")
    rows = [(name, prompt) for name, prompt in photos] + [
        ("truncated.jpg", "a rocket"),
        ("notes.png", "a page of notes"),
        ("gone.png", "a dog"),
    ]
    for scores, name in (("with", "scored.csv"), ("shuffled", "shuffled.csv"), (None, "plain.csv")):
        with (folder / name).open("w", newline="") as f:
            writer = csv.writer(f)
            writer.writerow(
                ["image", "prompt"]
                + (["mos_quality", "std_quality", "mos_align"] if scores else [])
            )
            for i, (image, prompt) in enumerate(rows):
                value = i if scores == "with" else len(rows) - i
                writer.writerow([image, prompt] + ([value * 0.5, 0.1, value] if scores else []))
    return folder


def build(positives_dir, out, manifest="scored.csv", **settings):
    positives = read_positives(positives_dir / manifest)
    settings = PairSettings(**{"per_positive": 6, "batch_size": 4, **settings})
    return PairFactory(settings).build(positives, out, progress=False)


def rows(pair_set):
    return sorted(pair_set.table().to_pylist(), key=lambda r: r["pair_id"])


def image_bytes(pair_set):
    return {r["negative"]: pair_set.path(r["negative"]).read_bytes() for r in rows(pair_set)}


@pytest.fixture(scope="module")
def pair_set(positives_dir, tmp_path_factory):
    return build(positives_dir, tmp_path_factory.mktemp("pairs"))


def test_every_good_positive_gets_its_negatives_and_bad_files_are_reported(pair_set):
    summary = pair_set.summary()
    assert summary["positives"] == 5 and summary["pairs"] == 30
    assert set(summary["per_aspect"]) == {"technical", "aesthetic", "alignment"}
    errors = {e["positive_id"]: e["error"] for e in pair_set.errors()}
    assert errors.keys() == BAD_FILES.keys()
    for name, reason in BAD_FILES.items():
        assert reason in errors[name]
    assert pair_set.info["complete"] is True


def test_pairs_are_what_their_rows_say(pair_set):
    for row in rows(pair_set):
        positive = load_image(pair_set.path(row["positive"]))
        negative = load_image(pair_set.path(row["negative"]))
        if row["aspect"] == "alignment":
            assert row["negative"] == row["positive"]
            assert row["negative_prompt"] != row["positive_prompt"]
        else:
            assert negative.shape == positive.shape
            assert (negative - positive).abs().mean() > 1e-3
            assert row["negative_prompt"] == row["positive_prompt"]
        assert row["kind"] in {"conventional", "ai_specific", "slot_edit", "cross_prompt"}
    by_family = {}
    for row in rows(pair_set):
        by_family.setdefault((row["positive_id"], row["family"]), []).append(row["severity"])
    assert all(len(set(v)) == len(v) for v in by_family.values())
    assert any(len(v) == 2 for v in by_family.values()), "no severity ladders"


def test_builds_are_deterministic_and_independent_of_batching(positives_dir, pair_set, tmp_path):
    again = build(positives_dir, tmp_path / "again", batch_size=1, workers=1)
    assert rows(again) == rows(pair_set)
    assert image_bytes(again) == image_bytes(pair_set)
    other_seed = build(positives_dir, tmp_path / "seed", seed=1)
    assert rows(other_seed) != rows(pair_set)


def test_human_scores_change_nothing(positives_dir, pair_set, tmp_path):
    """Scores present, shuffled or absent: the pair set is byte-identical."""
    reference = (rows(pair_set), image_bytes(pair_set))
    for manifest in ("shuffled.csv", "plain.csv"):
        other = build(positives_dir, tmp_path / manifest, manifest=manifest)
        assert (rows(other), image_bytes(other)) == reference
    for row in reference[0]:
        assert "mos" not in row["provenance"]


def test_an_interrupted_build_resumes_to_the_same_pair_set(
    positives_dir, pair_set, tmp_path, monkeypatch
):
    out = tmp_path / "resumed"
    positives = read_positives(positives_dir / "scored.csv")
    factory = PairFactory(PairSettings(per_positive=6, batch_size=2))
    real_write = PairSetWriter.write_part
    calls = []

    def crash_on_second_part(self, records, errors):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt  # the process dies between two parts
        real_write(self, records, errors)

    monkeypatch.setattr(PairSetWriter, "write_part", crash_on_second_part)
    with pytest.raises(KeyboardInterrupt):
        factory.build(positives, out, progress=False)
    monkeypatch.setattr(PairSetWriter, "write_part", real_write)
    assert len(PairSet(out)) == 12 and "complete" not in PairSet(out).info
    resumed = factory.build(positives, out, progress=False)
    assert rows(resumed) == rows(pair_set)
    assert image_bytes(resumed) == image_bytes(pair_set)
    with pytest.raises(PairSetError, match="other settings"):
        PairFactory(PairSettings(per_positive=3)).build(positives, out, progress=False)


def test_manifest_problems_are_clear_errors(tmp_path):
    (tmp_path / "m.csv").write_text("picture,prompt\na.png,a cat\n")
    with pytest.raises(ManifestError, match="no 'image' column"):
        read_positives(tmp_path / "m.csv")
    (tmp_path / "m.jsonl").write_text('{"image": "a.png"}\n[1, 2]\n')
    with pytest.raises(ManifestError, match=r"m.jsonl:2"):
        read_positives(tmp_path / "m.jsonl")
    (tmp_path / "d.csv").write_text("image,prompt\na.png,x\na.png,y\n")
    with pytest.raises(ManifestError, match="twice"):
        read_positives(tmp_path / "d.csv")
    (tmp_path / "s.csv").write_text("image,prompt,seed\na.png,a cat,1\nb.png,a dog,x\n")
    with pytest.raises(ManifestError, match=r"s.csv:3: seed 'x' is not an integer"):
        read_positives(tmp_path / "s.csv")


def test_a_ragged_csv_row_is_refused_with_its_line_not_shifted(tmp_path):
    manifest = tmp_path / "m.csv"
    manifest.write_text("image,prompt,seed\na.png,a cat,1\nb.png,a dog, sitting,2\nc.png,x,3\n")
    with pytest.raises(ManifestError, match=r"m.csv:3: 4 fields where the header has 3"):
        read_positives(manifest)
    manifest.write_text("image,prompt\na.png\n")
    with pytest.raises(ManifestError, match=r"m.csv:2: 1 fields where the header has 2"):
        read_positives(manifest)
    manifest.write_text('image,prompt\na.png,"a dog, sitting"\n\nb.png,"two\nlines"\n')
    rows = read_positives(manifest)  # quoted commas, blank lines and multi-line fields are fine
    assert [(p.key, p.prompt) for p in rows] == [
        ("a.png", "a dog, sitting"),
        ("b.png", "two\nlines"),
    ]


def test_a_confined_manifest_names_only_files_inside_its_folder(tmp_path):
    release = tmp_path / "release"
    release.mkdir()
    (release / "link.png").symlink_to(tmp_path / "elsewhere.png")
    for image in ["/etc/passwd", "../elsewhere.png", "link.png", "sub/../../x.png"]:
        (release / "manifest.csv").write_text(f"image,prompt\n{image},a cat\n")
        with pytest.raises(ManifestError, match="lies outside"):
            read_positives(release / "manifest.csv", confine=True)
        assert read_positives(release / "manifest.csv")  # the user's own manifests may
    (release / "manifest.csv").write_text("image,prompt\nsub/ok.png,a cat\n")
    assert read_positives(release / "manifest.csv", confine=True)[0].image == release / "sub/ok.png"


def test_jsonl_manifest_with_other_column_names(tmp_path):
    Image.new("RGB", (64, 48), (200, 30, 30)).save(tmp_path / "red.png")
    (tmp_path / "m.jsonl").write_text('{"name": "red.png", "caption": "a red wall", "mos": 3}\n')
    from eliq.pairs.positives import ManifestColumns

    [positive] = read_positives(tmp_path / "m.jsonl", columns=ManifestColumns("name", "caption"))
    assert positive.prompt == "a red wall" and positive.image == tmp_path / "red.png"


def invoke_build(manifest, out, *options):
    arguments = ["pairs", "build", "--manifest", str(manifest), "--out", str(out), *options]
    return CliRunner().invoke(app, arguments)


def test_cli_builds_with_chosen_families(positives_dir, tmp_path):
    out = tmp_path / "cli"
    manifest = positives_dir / "plain.csv"
    result = invoke_build(
        manifest, out, "--families", "jpeg,cross_prompt", "--per-positive", "4", "--seed", "3"
    )
    assert result.exit_code == 0, result.output
    assert "20 pairs from 5 positives" in " ".join(result.output.split())
    assert set(PairSet(out).table()["family"].to_pylist()) == {"jpeg", "cross_prompt"}
    bad = invoke_build(manifest, out, "--families", "nonsense")
    assert bad.exit_code != 0 and "unknown negative families" in str(bad.exception)


def test_a_folder_of_photos_needs_no_manifest(positives_dir, tmp_path):
    result = CliRunner().invoke(
        app,
        [
            "pairs",
            "build",
            "--images",
            str(positives_dir),
            "--out",
            str(tmp_path / "p"),
            "--per-positive",
            "2",
        ],
    )
    assert result.exit_code == 0, result.output
    pair_set = PairSet(tmp_path / "p")
    assert pair_set.summary()["positives"] == 5
    assert set(pair_set.table()["aspect"].to_pylist()) <= {"technical", "aesthetic"}
    assert {e["positive_id"] for e in pair_set.errors()} == {"truncated.jpg", "notes.png"}
