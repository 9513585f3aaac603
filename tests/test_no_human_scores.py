"""No code under eliq.pairs (or the prompt code it uses) can read a human-score column.

Two proofs: the source names no score column at all (any string or identifier that could
select one), and the manifest reader keeps only its three columns, so a score column never
reaches the factory. test_factory.py adds the behavioural proof: a pair set built from a
manifest with scores, with shuffled scores and without them is byte-identical.
"""

import ast
import re
from pathlib import Path

import eliq.pairs
import eliq.prompts
from eliq.pairs.positives import read_positives

SCORE_WORDS = re.compile(
    r"(?<![a-z])(mos|dmos|scores?|ratings?|opinions?|human|label)(?![a-z])", re.I
)


def _code_tokens(path: Path):
    """String constants (not docstrings), names and attributes in a module."""
    tree = ast.parse(path.read_text())
    docstrings = {
        id(node.body[0].value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Module | ast.FunctionDef | ast.ClassDef | ast.AsyncFunctionDef)
        and node.body
        and isinstance(node.body[0], ast.Expr)
        and isinstance(node.body[0].value, ast.Constant)
    }
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            if id(node) not in docstrings:
                yield node.value
        elif isinstance(node, ast.Name):
            yield node.id
        elif isinstance(node, ast.Attribute):
            yield node.attr
        elif isinstance(node, ast.arg):
            yield node.arg


def offenders(packages, pattern):
    """(module, token) for every code token of the packages' modules that ``pattern`` finds."""
    modules = [m for package in packages for m in Path(package.__file__).parent.glob("*.py")]
    assert len(modules) > 4
    return [
        (module.name, token)
        for module in modules
        for token in _code_tokens(module)
        if pattern.search(token.replace("_", " "))
    ]


def test_pair_code_names_no_score_column():
    assert offenders([eliq.pairs, eliq.prompts], SCORE_WORDS) == []


def test_manifest_reader_drops_every_other_column(tmp_path):
    manifest = tmp_path / "scores.csv"
    manifest.write_text(
        "name,generator,prompt,mos_quality,std_quality,mos_align,std_align\n"
        "a.jpg,gen,a cat,4.5,0.1,3.2,0.2\n"
    )
    from eliq.pairs.positives import ManifestColumns

    [positive] = read_positives(manifest, columns=ManifestColumns(image="name"))
    assert set(vars(positive)) == {"key", "image", "prompt", "seed"}
    assert "4.5" not in repr(positive) and "3.2" not in repr(positive)


HUMAN_SCORE_COLUMNS = re.compile(
    r"(?<![a-z])(mos|dmos|opinions?|human|std (quality|align))(?![a-z])", re.I
)


def test_training_reads_only_pair_set_columns_and_names_no_human_score():
    """Training sees pairs only: the pair-set schema has no human-score column, the loader
    selects its columns by name, and the critic and trainer code name none."""
    import eliq.critic
    import eliq.train
    from eliq.pairs.pairset import PAIR_SCHEMA
    from eliq.train.data import PAIR_COLUMNS

    assert set(PAIR_COLUMNS) <= set(PAIR_SCHEMA.names)
    assert not [n for n in PAIR_SCHEMA.names if HUMAN_SCORE_COLUMNS.search(n.replace("_", " "))]
    assert offenders([eliq.train, eliq.critic], HUMAN_SCORE_COLUMNS) == []
