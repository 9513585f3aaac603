import importlib.metadata
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from eliq.cli import app
from eliq.config import PairSettings
from eliq.critic import Critic, CriticConfig, LoraSettings
from eliq.demo import write_demo_positives
from eliq.pairs.factory import PairFactory
from eliq.pairs.positives import read_positives
from eliq.train.recipe import Recipe
from tests.conftest import SHARED, photo_path

SMALL = CriticConfig(
    crops=1, dim=32, decoder_layers=1, queries_per_axis=2, vision_lora=LoraSettings(enabled=False)
)


def test_version_is_the_installed_package_version():
    import eliq

    result = CliRunner().invoke(app, ["--version"])
    assert result.exit_code == 0
    assert result.output.strip() == f"eliq {eliq.__version__}"
    assert eliq.__version__ == importlib.metadata.version("eliq")


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    root = tmp_path_factory.mktemp("cli")
    positives = read_positives(write_demo_positives(root / "positives"))
    PairFactory(PairSettings(per_positive=4)).build(positives, root / "pairs", progress=False)
    Recipe(critic=SMALL).save(root / "recipe.json")
    result = CliRunner().invoke(
        app,
        [
            "train",
            "--pairs",
            str(root / "pairs"),
            "--out",
            str(root / "critic"),
            "--steps",
            "3",
            "--recipe",
            str(root / "recipe.json"),
            "--feature-cache",
            str(root / "features"),
        ],
    )
    assert result.exit_code == 0, result.output
    assert "held-out pair accuracy" in result.output
    images = len(list((root / "pairs" / "images").rglob("*.png")))
    assert len(list((root / "features").rglob("*.safetensors"))) == images
    return root


def invoke_score(checkpoint, source, out, *options):
    """Run ``eliq score`` on the CPU; the runner's result."""
    arguments = [str(source), "--checkpoint", str(checkpoint / "critic")]
    return CliRunner().invoke(
        app, ["score", *arguments, "--out", str(out), "--device", "cpu", *options]
    )


def score(checkpoint, source, out, *options):
    """Run ``eliq score`` and return its JSON lines."""
    result = invoke_score(checkpoint, source, out, *options)
    assert result.exit_code == 0, result.output
    assert "images/s" in result.output  # its throughput
    return [json.loads(line) for line in out.read_text().splitlines()]


def folder_with_a_broken_image(tmp_path):
    """Two photos and a file that is not really a JPEG."""
    folder = tmp_path / "images"
    folder.mkdir()
    for name in ("chelsea.png", "coffee.png"):
        shutil.copyfile(photo_path(name), folder / name)
    (folder / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    return folder


def test_score_writes_one_line_per_image_and_survives_bad_files(checkpoint, tmp_path):
    folder = folder_with_a_broken_image(tmp_path)
    lines = score(checkpoint, folder, tmp_path / "scores.jsonl")
    names = [line["image"].rsplit("/", 1)[1] for line in lines]
    assert names == ["broken.jpg", "chelsea.png", "coffee.png"]
    assert "error" in lines[0] and "quality" not in lines[0]
    assert all(
        isinstance(line["quality"], float) and line["alignment"] is None for line in lines[1:]
    )
    version = Critic.from_pretrained(checkpoint / "critic", device="cpu").version
    assert {line["critic_version"] for line in lines} == {version}  # the broken one's too
    assert all(0 <= line["quality_scaled"] <= 100 for line in lines[1:])
    manifest = checkpoint / "positives" / "manifest.csv"
    lines = score(checkpoint, manifest, tmp_path / "prompted.jsonl")
    assert len(lines) == 6 and all(isinstance(line["alignment"], float) for line in lines)


def test_score_writes_csv_or_stdout_and_prompts_a_folder(checkpoint, tmp_path):
    import pandas as pd

    folder = folder_with_a_broken_image(tmp_path)
    result = invoke_score(checkpoint, folder, "-", "--prompt", "a photo")
    assert result.exit_code == 0, result.output
    lines = [json.loads(line) for line in result.stdout.splitlines()]  # JSON only
    assert [line.get("prompt") for line in lines] == ["a photo"] * 3
    assert all(isinstance(line["alignment"], float) for line in lines[1:])
    assert invoke_score(checkpoint, folder, tmp_path / "s.csv").exit_code == 0
    table = pd.read_csv(tmp_path / "s.csv")
    assert list(table.columns[:4]) == ["image", "prompt", "critic_version", "quality"]
    assert table["error"].notna().tolist() == [True, False, False]


def test_loading_the_critic_is_one_line_not_a_bar_per_component(checkpoint, tmp_path):
    code = "import sys; from eliq.cli import main; sys.argv = ['eliq', *sys.argv[1:]]; main()"
    arguments = ["score", str(photo_path("coffee.png")), "--out", "-", "--device", "cpu"]
    result = subprocess.run(
        [sys.executable, "-c", code, *arguments, "--checkpoint", str(checkpoint / "critic")],
        env={**os.environ, "HF_HUB_OFFLINE": "1"},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    assert result.stderr.count("loaded critic") == 1, result.stderr
    assert "Loading weights" not in result.stderr  # transformers' bar per component
    critic = Critic.from_pretrained(checkpoint / "critic", "cpu")
    assert critic.version in result.stderr
    assert isinstance(json.loads(result.stdout)["quality"], float)  # stdout holds JSON only


def test_workers_and_the_exported_runtimes_score_as_the_critic_does(
    checkpoint, tmp_path, monkeypatch
):
    """Two spawned loader processes, none, and ONNX Runtime: the same lines, in order."""
    monkeypatch.setenv("ELIQ_ONNX_CACHE", str(tmp_path / "onnx"))
    manifest = shutil.copytree(checkpoint / "positives", tmp_path / "positives") / "manifest.csv"
    with manifest.open("a") as file:
        file.write("missing.png,a prompt for a file that is not there\n")
    runs = {
        options: score(checkpoint, manifest, tmp_path / f"{i}.jsonl", *options)
        for i, options in enumerate(
            [
                ("--workers", "0"),
                ("--workers", "2", "--batch-size", "2"),
                ("--runtime", "onnxruntime"),
            ]
        )
    }
    reference, *others = runs.values()
    assert len(reference) == 7 and "error" in reference[-1]
    expected = Critic.from_pretrained(checkpoint / "critic", device="cpu").score(
        [line["image"] for line in reference[:-1]], [line["prompt"] for line in reference[:-1]]
    )
    for lines in [reference, *others]:
        assert [line["image"] for line in lines] == [line["image"] for line in reference]
        assert lines[-1]["error"] == reference[-1]["error"]
        for line, want in zip(lines[:-1], expected, strict=True):
            assert abs(line["quality"] - want.quality) <= 1e-3
            assert abs(line["alignment"] - want.alignment) <= 1e-3
    assert len(list((tmp_path / "onnx").glob("vision-*.onnx"))) == 1


def test_an_unknown_runtime_is_a_clear_error(checkpoint, tmp_path):
    manifest = checkpoint / "positives" / "manifest.csv"
    result = invoke_score(checkpoint, manifest, tmp_path / "out.jsonl", "--runtime", "tensorrt")
    assert result.exit_code == 2 and "--runtime must be one of" in result.output
    assert not (tmp_path / "out.jsonl").exists()


def test_eval_dataset_reports_the_critic_beside_its_prior_on_a_preset(checkpoint, tmp_path):
    out, report = tmp_path / "scores.csv", tmp_path / "report.json"
    result = CliRunner().invoke(
        app,
        [
            "eval",
            "dataset",
            str(SHARED / "datasets" / "agiqa3k"),
            "--checkpoint",
            str(checkpoint / "critic"),
            "--limit",
            "35",
            "--device",
            "cpu",
            "--pairs",
            str(checkpoint / "pairs"),
            "--out",
            str(out),
            "--json",
            str(report),
        ],
    )
    assert result.exit_code == 0, result.output
    text = " ".join(result.output.split())
    for row in ("| critic | quality |", "| prior | quality |", "| critic | alignment |"):
        assert row in text
    assert "AttnGAN_normal" in text and "sd1.5_lowstep" in text
    assert "label-free pairs" in text
    scores = pd.read_csv(out)
    assert 30 <= len(scores) <= 40
    assert {"quality", "alignment", "prior_quality", "prior_alignment"} <= set(scores.columns)
    numbers = json.loads(report.read_text())
    critic = numbers["scorers"]["critic"]["quality"]["overall"]
    assert critic["srcc_interval"]["low"] <= critic["srcc"] <= critic["srcc_interval"]["high"]
    assert set(numbers["scorers"]) == {"critic", "prior"}


def test_eval_dataset_reads_any_scored_folder_and_names_what_is_wrong(checkpoint, tmp_path):
    folder = tmp_path / "photos"
    (folder / "images").mkdir(parents=True)
    names = ["astronaut.png", "chelsea.png", "coffee.png", "rocket.jpg", "camera.png"]
    for name in names:
        shutil.copyfile(photo_path(name), folder / "images" / name)
    rows = "\n".join(f"{n},{s}" for n, s in zip(names, [3.0, 4.5, 4.0, 2.0, 1.0], strict=True))
    (folder / "scores.csv").write_text("name,rating\n" + rows + "\n")

    def run(*options):
        return CliRunner().invoke(
            app,
            ["eval", "dataset", str(folder), "--checkpoint", str(checkpoint / "critic"), *options],
        )

    result = run("--device", "cpu")
    assert result.exit_code == 0, result.output
    assert "photos (5 images)" in result.output
    assert "| prior | quality |" in " ".join(result.output.split())
    assert "alignment" not in result.output  # no prompts, no alignment column

    missing = run("--quality-column", "mos")
    assert missing.exit_code == 2 and "no quality column 'mos'" in missing.output
    (folder / "images" / "coffee.png").unlink()
    gone = run()
    assert gone.exit_code == 2 and "'coffee.png'" in gone.output
    nowhere = CliRunner().invoke(app, ["eval", "dataset", str(tmp_path / "nothing")])
    assert nowhere.exit_code == 2 and "agiqa3k, clive-part" in nowhere.output


def test_the_old_eval_command_says_where_it_went():
    result = CliRunner().invoke(app, ["eval", "agiqa3k", "--limit", "3"])
    assert result.exit_code == 2 and "eliq eval dataset agiqa3k" in result.output


def report_run(checkpoint, tmp_path):
    """A manifest of photos in two groups, one unreadable, prompts that hold HTML (each of
    them: which images the report shows depends on the critic); scored with --report and
    --group-by."""
    folder = folder_with_a_broken_image(tmp_path)
    shutil.copyfile(photo_path("astronaut.png"), folder / "astronaut.png")
    markup = " <script>alert(1)</script>"
    rows = [
        ("chelsea.png", "a cat" + markup, "model-a"),
        ("coffee.png", "a cup of coffee" + markup, "model-a"),
        ("astronaut.png", "an astronaut" + markup, "model-b"),
        ("broken.jpg", "a broken file" + markup, "model-b"),
    ]
    manifest = folder / "manifest.csv"
    manifest.write_text(
        "image,prompt,generator\n" + "".join(f'{i},"{p}",{g}\n' for i, p, g in rows)
    )
    report = tmp_path / "report" / "report.html"
    lines = score(
        checkpoint,
        manifest,
        tmp_path / "s.jsonl",
        "--report",
        str(report),
        "--group-by",
        "generator",
    )
    return lines, report


def test_score_report_is_one_self_contained_file_read_in_chromium(checkpoint, tmp_path):
    from playwright.sync_api import sync_playwright

    from tests.conftest import CHROMIUM

    if CHROMIUM is None:
        pytest.skip("needs Debian's chromium (make browser)")
    lines, report = report_run(checkpoint, tmp_path)
    text = report.read_text()
    assert "<script>alert" not in text and "&lt;script&gt;alert(1)" in text  # escaped
    shots = Path(os.environ.get("ELIQ_TEST_ARTIFACTS", tmp_path))
    shots.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"]
        )
        page = browser.new_page(viewport={"width": 1100, "height": 1400})
        fetched, errors = [], []
        page.on("request", lambda request: fetched.append(request.url))
        page.on("pageerror", lambda error: errors.append(str(error)))
        page.goto(report.as_uri(), wait_until="load")
        assert [url for url in fetched if not url.startswith(("file:", "data:"))] == []
        assert not errors, errors
        assert "3 images scored, 1 could not be read" in page.locator(".meta").inner_text()
        summary = page.locator("#summary").inner_text()
        assert "quality" in summary and "alignment" in summary and "[" in summary
        assert page.locator("svg.histogram").count() == 2  # one per axis
        assert page.locator("#histogram-quality rect").count() == 20
        thumbs = page.locator("img.thumb")
        assert thumbs.count() == 4  # best and worst of 3 images, per axis: one each
        widths = thumbs.evaluate_all("images => images.map(i => i.naturalWidth)")
        assert all(0 < width <= 160 for width in widths), widths
        groups = page.locator("#groups tr").all_inner_texts()
        assert len(groups) == 3 and {g.split("\t")[0] for g in groups[1:]} == {"model-a", "model-b"}
        assert "broken.jpg" in page.locator("#failures").inner_text()
        best = max((line for line in lines if "quality" in line), key=lambda x: x["quality"])
        assert Path(best["image"]).name in page.locator("#best-quality").inner_text()
        page.screenshot(path=str(shots / "score-report.png"), full_page=True)
        browser.close()


def test_group_by_needs_a_report_and_a_column_that_exists(checkpoint, tmp_path):
    folder = folder_with_a_broken_image(tmp_path)
    (folder / "m.csv").write_text("image,prompt\nchelsea.png,a cat\n")
    alone = invoke_score(checkpoint, folder / "m.csv", tmp_path / "s.jsonl", "--group-by", "x")
    assert alone.exit_code != 0 and "add --report" in alone.output
    missing = invoke_score(
        checkpoint,
        folder / "m.csv",
        tmp_path / "s.jsonl",
        "--report",
        str(tmp_path / "r.html"),
        "--group-by",
        "generator",
    )
    words = " ".join(missing.output.replace("│", " ").split())  # the panel wraps lines
    assert missing.exit_code != 0 and "no column 'generator' to group by" in words
    assert not (tmp_path / "s.jsonl").exists()  # refused before scoring anything


def test_an_output_name_holding_markup_is_printed_and_the_report_written(checkpoint, tmp_path):
    """``--out '[/x].jsonl'`` crashed Rich after scoring, and the report was lost."""
    (tmp_path / "[").mkdir()
    out, report = tmp_path / "[" / "x].jsonl", tmp_path / "report.html"
    result = invoke_score(checkpoint, photo_path("coffee.png"), out, "--report", str(report))
    assert result.exit_code == 0, result.output
    assert "1 images scored, 0 could not be read; written to" in " ".join(result.output.split())
    assert report.is_file() and len(out.read_text().splitlines()) == 1
