"""Dependencies point one way: daemon -> dashboards, adapters -> eliq. ``eliq`` knows
nothing of registries, MLflow, schedules, databases, dashboards or Ray, so it stays a plain
library. Inside ``adapters`` each kind (registries, generators, alert channels, executors)
stands alone: what two kinds share lives in a module of its own. Read from the sources'
import statements."""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
FORBIDDEN = {
    "eliq": {"adapters", "daemon", "dashboards", "mlflow", "sqlmodel", "sqlalchemy",
             "alembic", "apscheduler", "evidently", "fastapi", "prometheus_client", "ray"},
    "adapters": {"daemon", "dashboards", "sqlmodel", "sqlalchemy", "apscheduler", "fastapi"},
    "dashboards": {"daemon", "adapters", "eliq"},
}  # fmt: skip


ADAPTER_KINDS = ("registries", "generators", "alerts", "executors")


def imported_modules(path: Path) -> set[str]:
    modules = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            modules |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            modules.add(node.module)
    return modules


def imported_roots(path: Path) -> set[str]:
    return {module.split(".")[0] for module in imported_modules(path)}


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_imports_point_one_way(package):
    offending = {
        str(path.relative_to(ROOT)): sorted(imported_roots(path) & FORBIDDEN[package])
        for path in (ROOT / package).rglob("*.py")
    }
    assert not {k: v for k, v in offending.items() if v}


@pytest.mark.parametrize("kind", ADAPTER_KINDS)
def test_each_kind_of_adapter_stands_alone(kind):
    others = {f"adapters.{other}" for other in ADAPTER_KINDS if other != kind}
    offending = {
        str(path.relative_to(ROOT)): sorted(
            m
            for m in imported_modules(path)
            if any(m == o or m.startswith(o + ".") for o in others)
        )
        for path in (ROOT / "adapters" / kind).rglob("*.py")
    }
    assert not {k: v for k, v in offending.items() if v}


def test_only_the_ray_executor_imports_ray():
    """Ray is where work runs, chosen by settings: nothing else may depend on it."""
    importing = {
        str(path.relative_to(ROOT))
        for package in ("eliq", "adapters", "daemon", "dashboards")
        for path in (ROOT / package).rglob("*.py")
        if "ray" in imported_roots(path)
    }
    assert importing == {"adapters/executors/ray_cluster.py"}
