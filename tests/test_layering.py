"""Dependencies point one way: daemon -> dashboards, adapters -> eliq. ``eliq`` knows
nothing of registries, MLflow, schedules, databases or dashboards, so it stays a plain
library. Read from the sources' import statements."""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
FORBIDDEN = {
    "eliq": {"adapters", "daemon", "dashboards", "mlflow", "sqlmodel", "sqlalchemy",
             "alembic", "apscheduler", "evidently", "fastapi", "prometheus_client"},
    "adapters": {"daemon", "dashboards", "sqlmodel", "sqlalchemy", "apscheduler", "fastapi"},
    "dashboards": {"daemon", "adapters", "eliq"},
}  # fmt: skip


def imported_roots(path: Path) -> set[str]:
    roots = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            roots |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            roots.add(node.module.split(".")[0])
    return roots


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_imports_point_one_way(package):
    offending = {
        str(path.relative_to(ROOT)): sorted(imported_roots(path) & FORBIDDEN[package])
        for path in (ROOT / package).rglob("*.py")
    }
    assert not {k: v for k, v in offending.items() if v}
