"""`eliq compare`: two score files, B minus A per axis with an interval, paired by prompt."""

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from eliq.cli import app


def _write(path, rows):
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return path


@pytest.fixture
def releases(tmp_path):
    rng = np.random.default_rng(0)
    base = rng.normal(-8, 2, 40)  # prompts differ far more than the releases do
    a = [
        {"image": f"a/{i}.png", "prompt": f"prompt {i}", "quality": q, "alignment": 0.3}
        for i, q in enumerate(base)
    ]
    b = [
        {"image": f"b/{i}.png", "prompt": f"prompt {i}", "quality": q + 0.5 + rng.normal(0, 0.2)}
        | {"alignment": 0.3 + rng.normal(0, 0.01)}
        for i, q in enumerate(base)
    ]
    b.append({"image": "b/broken.png", "prompt": "prompt 0", "error": "not an image"})
    return _write(tmp_path / "a.jsonl", a), _write(tmp_path / "b.jsonl", b)


def test_compare_pairs_by_prompt_and_prints_json(releases):
    a, b = releases
    result = CliRunner().invoke(app, ["compare", str(a), str(b), "--json"])
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    quality = payload["quality"]
    assert {"difference", "low", "high", "n_a", "n_b"} <= quality.keys()
    assert quality["n_a"] == quality["n_b"] == quality["paired_prompts"] == 40
    assert quality["low"] < quality["difference"] < quality["high"]
    assert quality["low"] > 0.4 and quality["high"] < 0.6  # paired: the prompts' spread cancels
    assert abs(payload["alignment"]["difference"]) < 0.01

    text = CliRunner().invoke(app, ["compare", str(a), str(b)])
    assert text.exit_code == 0 and "b.jsonl vs a.jsonl: quality +0.5" in text.stdout


def test_without_shared_prompts_the_comparison_is_unpaired_and_wider(releases, tmp_path):
    a, b = releases
    rows = [json.loads(line) for line in b.read_text().splitlines()]
    renamed = _write(
        tmp_path / "c.jsonl", [r | {"prompt": f"other {i}"} for i, r in enumerate(rows)]
    )
    paired = json.loads(CliRunner().invoke(app, ["compare", str(a), str(b), "--json"]).stdout)
    result = json.loads(CliRunner().invoke(app, ["compare", str(a), str(renamed), "--json"]).stdout)
    assert result["quality"]["paired_prompts"] == 0
    width = result["quality"]["high"] - result["quality"]["low"]
    assert width > 3 * (paired["quality"]["high"] - paired["quality"]["low"])


def test_images_scored_without_prompts_have_no_alignment_to_compare(tmp_path):
    rows = [
        {"image": f"{i}.png", "prompt": None, "quality": float(i), "alignment": None}
        for i in range(5)
    ]
    a, b = _write(tmp_path / "a.jsonl", rows), _write(tmp_path / "b.jsonl", rows)
    payload = json.loads(CliRunner().invoke(app, ["compare", str(a), str(b), "--json"]).stdout)
    assert payload["alignment"] is None and payload["quality"]["difference"] == 0.0


def test_a_broken_score_file_is_a_clear_error(releases, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # short paths: the message is not wrapped
    Path("broken.jsonl").write_text('{"image": "x.png", "quality": 1}\n{"image": \n')
    result = CliRunner().invoke(app, ["compare", "a.jsonl", "broken.jsonl"])
    assert result.exit_code == 2 and "broken.jsonl:2: not JSON" in result.output
    _write(Path("empty.jsonl"), [{"image": "x.png", "error": "unreadable"}])
    result = CliRunner().invoke(app, ["compare", "a.jsonl", "empty.jsonl"])
    assert result.exit_code == 2 and "no scored images" in result.output


def test_csv_score_files_compare_as_json_lines_do(releases, tmp_path):
    import pandas as pd

    a, b = releases
    for path in (a, b):
        rows = [json.loads(line) for line in path.read_text().splitlines()]
        pd.DataFrame(rows).to_csv(path.with_suffix(".csv"), index=False)
    by_json = CliRunner().invoke(app, ["compare", str(a), str(b), "--json"])
    by_csv = CliRunner().invoke(
        app, ["compare", str(a.with_suffix(".csv")), str(b.with_suffix(".csv")), "--json"]
    )
    assert by_csv.exit_code == 0, by_csv.output
    from_csv, from_json = json.loads(by_csv.stdout), json.loads(by_json.stdout)
    for axis in ("quality", "alignment"):  # CSV keeps the floats to the last digit or so
        assert from_csv[axis] == pytest.approx(from_json[axis], rel=1e-9)


def test_files_of_two_critic_versions_are_not_compared(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    rows = [{"image": f"{i}.png", "quality": float(i)} for i in range(5)]
    _write(Path("a.jsonl"), [r | {"critic_version": "aaa"} for r in rows])
    _write(Path("b.jsonl"), [r | {"critic_version": "bbb"} for r in rows])
    _write(Path("old.jsonl"), rows)  # written before records carried a version
    result = CliRunner().invoke(app, ["compare", "a.jsonl", "b.jsonl"])
    assert result.exit_code == 2 and "different critic versions" in result.output
    assert CliRunner().invoke(app, ["compare", "a.jsonl", "old.jsonl"]).exit_code == 0


def test_huge_differences_are_null_in_strict_json(tmp_path):
    """±1e308 scores make an infinite difference: ``--json`` says null, never Infinity."""
    a = _write(tmp_path / "a.jsonl", [{"image": f"{i}.png", "quality": -1e308} for i in range(5)])
    b = _write(tmp_path / "b.jsonl", [{"image": f"{i}.png", "quality": 1e308} for i in range(5)])
    result = CliRunner().invoke(app, ["compare", str(a), str(b), "--json"])
    assert result.exit_code == 0, result.output
    assert "Infinity" not in result.stdout and "NaN" not in result.stdout
    payload = json.loads(result.stdout, parse_constant=lambda name: pytest.fail(name))
    assert payload["quality"]["difference"] is None


def test_file_names_are_printed_as_they_are_not_as_markup(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    rows = [{"image": f"{i}.png", "quality": float(i)} for i in range(5)]
    _write(Path("[reverse blink]a.jsonl"), rows)
    Path("[").mkdir()  # "[/x]b.jsonl" is "x]b.jsonl" in the folder "[": Rich's closing tag
    _write(Path("[/x]b.jsonl"), rows)
    result = CliRunner().invoke(app, ["compare", "[reverse blink]a.jsonl", "[/x]b.jsonl"])
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("x]b.jsonl vs [reverse blink]a.jsonl: quality")  # names


def test_formula_cells_written_to_csv_are_guarded_and_read_back_as_they_were(tmp_path):
    """A prompt a spreadsheet would run (``=HYPERLINK``, ``@``, ``+1``) is written with a
    leading quote, and `eliq compare` reads the prompt it was."""
    import csv

    from eliq.score_files import write_records

    prompts = ['=HYPERLINK("http://x","y")', "@SUM(A1)", "+1", "-2 cats", "a cat", "'=kept"]
    records = [
        {"image": f"{i}.png", "prompt": p, "quality": float(i), "alignment": 0.1 * i}
        for i, p in enumerate(prompts)
    ]
    write_records(iter(records), tmp_path / "a.csv")
    with (tmp_path / "a.csv").open(newline="") as file:
        cells = [row["prompt"] for row in csv.DictReader(file)]
    assert cells == ["'" + p for p in prompts[:4]] + ["a cat", "''=kept"]
    from eliq.compare import read_score_file

    assert list(read_score_file(tmp_path / "a.csv")["prompt"]) == prompts
