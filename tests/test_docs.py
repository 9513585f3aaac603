"""The README is a front door, not a lab notebook: short, its two commands first, and no
issue numbers in anything a user reads. (The site itself is built with
``mkdocs build --strict`` by ``make docs``, which ``make test`` runs.)"""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
USER_DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]


def test_the_readme_is_short_and_starts_with_its_two_commands():
    text = (ROOT / "README.md").read_text()
    assert len(text.splitlines()) < 200
    first_block = re.search(r"```\w*\n(.*?)```", text, re.S)[1]
    commands = [line.split("#")[0].strip() for line in first_block.splitlines()]
    assert commands == ["make run", "make test"]


def test_user_documentation_carries_no_issue_numbers():
    found = {
        str(path.relative_to(ROOT)): re.findall(r"\b[Ii]ssue #?\d+", path.read_text())
        for path in USER_DOCS
    }
    assert {k: v for k, v in found.items() if v} == {}


def test_every_page_of_the_site_is_in_its_navigation():
    import yaml

    nav = (ROOT / "mkdocs.yml").read_text()
    pages = {str(p.relative_to(ROOT / "docs")) for p in (ROOT / "docs").rglob("*.md")}
    listed = set(re.findall(r":\s*([\w/.-]+\.md)", nav))
    assert yaml.safe_load(nav)["strict"] is True
    assert pages == listed
