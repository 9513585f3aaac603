"""Dependencies point one way: daemon -> dashboards, adapters -> eliq. ``eliq`` knows
nothing of registries, MLflow, schedules, databases, dashboards or Ray, so it stays a plain
library. Inside ``adapters`` each kind (registries, generators, alert channels, executors,
critic stores) stands alone: what two kinds share lives in a module of its own. The daemon
reaches MLflow, Evidently and Ray only through its ports, and only its composition root
builds them (or the database). Read from the sources' import statements and calls."""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
FORBIDDEN = {
    "eliq": {"adapters", "daemon", "dashboards", "mlflow", "sqlmodel", "sqlalchemy",
             "alembic", "apscheduler", "evidently", "fastapi", "prometheus_client", "ray"},
    "adapters": {"daemon", "dashboards", "sqlmodel", "alembic", "apscheduler", "fastapi"},
    "dashboards": {"daemon", "adapters", "eliq"},
}  # fmt: skip


ADAPTER_KINDS = ("registries", "generators", "alerts", "executors", "critic_stores")


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


def importers(root: str, package: str) -> set[str]:
    return {
        str(path.relative_to(ROOT))
        for path in (ROOT / package).rglob("*.py")
        if root in imported_roots(path)
    }


def test_sqlalchemy_in_adapters_is_mlflows_backend_alone():
    """The daemon's database is the daemon's; an adapter reads SQL only where MLflow keeps
    its registry in a database."""
    assert importers("sqlalchemy", "adapters") <= {
        "adapters/critic_stores/mlflow.py",
        "adapters/critic_stores/mlflow_check.py",
    }


def test_the_daemon_reaches_mlflow_evidently_and_ray_only_through_its_ports():
    """MLflow behind adapters/critic_stores, Evidently behind dashboards, Ray behind the
    Ray executor: no module under daemon/ imports them."""
    assert {m: importers(m, "daemon") for m in ("mlflow", "evidently", "ray")} == {
        "mlflow": set(),
        "evidently": set(),
        "ray": set(),
    }


CONSTRUCTORS = {
    # the database
    "create_engine", "make_engine", "read_only_engine", "Store", "LeaderLock",
    # MLflow
    "MlflowClient", "MlflowCriticStore", "create_critic_store",
    # Evidently
    "Report", "Workspace", "DriftWorkspace", "EvidentlyDriftSink",
    # Ray and the executors
    "create_executor", "RayExecutor", "LocalExecutor", "init",
    # the alert channels
    "Alerter", "build_channels", "create_alert_channel",
    # the registries
    "create_registry", "build_registries",
}  # fmt: skip
FACTORY_DEFINITIONS = {
    ("daemon/state/database.py", "make_engine"),
    ("daemon/state/database.py", "read_only_engine"),
}


def constructions(path: Path) -> list[str]:
    """Calls of :data:`CONSTRUCTORS` in ``path``, outside the factories that define them."""
    relative = str(path.relative_to(ROOT))
    found = []

    def visit(node: ast.AST, function: str | None) -> None:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            function = node.name
        if isinstance(node, ast.Call):
            called = node.func
            name = called.attr if isinstance(called, ast.Attribute) else getattr(called, "id", "")
            if name in CONSTRUCTORS and (relative, function) not in FACTORY_DEFINITIONS:
                found.append(f"{name} (line {node.lineno})")
        for child in ast.iter_child_nodes(node):
            visit(child, function)

    visit(ast.parse(path.read_text(), relative), None)
    return found


def test_only_the_composition_root_constructs_the_daemons_infrastructure():
    """The database, MLflow, Evidently, Ray, executors and alert channels are built in
    daemon/composition.py and handed to the rest, which sees only ports."""
    built = {
        str(path.relative_to(ROOT)): constructions(path)
        for path in (ROOT / "daemon").rglob("*.py")
        if path.name != "composition.py" and "migrations" not in path.parts
    }
    assert {k: v for k, v in built.items() if v} == {}
    assert constructions(ROOT / "daemon" / "composition.py")  # the rule reads real calls


DAEMON_FOLDERS = {  # folder: the daemon modules and folders it may import besides its own
    "state": set(),
    "tasks": set(),
    "policy": {"state", "settings", "ports"},
    "cycle": {"state", "tasks", "policy", "settings", "ports"},
    "serve": {"state", "policy", "settings", "composition"},
}


@pytest.mark.parametrize("folder", sorted(DAEMON_FOLDERS))
def test_the_daemons_folders_depend_one_way(folder):
    """The state and the executor's tasks stand alone; policies read the state; the cycle
    uses both; the status API reads and never runs a step."""
    allowed = DAEMON_FOLDERS[folder] | {folder}
    offending = {
        str(path.relative_to(ROOT)): sorted(
            m
            for m in imported_modules(path)
            if m.startswith("daemon.") and m.split(".")[1] not in allowed
        )
        for path in (ROOT / "daemon" / folder).rglob("*.py")
    }
    assert not {k: v for k, v in offending.items() if v}


def test_every_daemon_module_lives_in_a_folder_or_is_an_entry_point():
    top = {path.name for path in (ROOT / "daemon").glob("*.py")}
    assert top == {
        "__init__.py", "__main__.py", "cli.py", "composition.py", "demo.py", "ports.py",
        "service.py", "settings.py",
    }  # fmt: skip
    folders = {p.name for p in (ROOT / "daemon").iterdir() if (p / "__init__.py").is_file()}
    assert folders == set(DAEMON_FOLDERS)


def test_no_daemon_module_is_long():
    """A module a newcomer reads in one sitting: about 300 lines at most."""
    long = {
        str(path.relative_to(ROOT)): lines
        for path in (ROOT / "daemon").rglob("*.py")
        if "migrations" not in path.parts and (lines := len(path.read_text().splitlines())) > 300
    }
    assert long == {}


SCORING_INTERNALS = {
    "score_features", "text_features", "vision_features", "residual_parts", "residual",
    "prior", "backbone_levels", "visual_tokens", "concept_alignment",
}  # fmt: skip


def model_internals_used(path: Path) -> list[str]:
    """Uses of a critic model's scoring internals: ``<x>.model.<internal>`` or
    ``model.<internal>``."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if not isinstance(node, ast.Attribute) or node.attr not in SCORING_INTERNALS:
            continue
        owner = node.value
        named = owner.attr if isinstance(owner, ast.Attribute) else getattr(owner, "id", "")
        if named == "model":
            found.append(f"{ast.unparse(node)} (line {node.lineno})")
    return found


def test_only_the_critic_reaches_into_its_model_to_score():
    """``Critic`` is the one way to score: the CLI, evaluation, the experiments, training,
    the daemon and the benchmarks call its methods, never the model's parts, so an image
    goes one way from file to score."""
    used = {
        str(path.relative_to(ROOT)): model_internals_used(path)
        for package in ("eliq", "adapters", "daemon", "dashboards", "bench")
        for path in (ROOT / package).rglob("*.py")
        if not path.is_relative_to(ROOT / "eliq" / "critic")
    }
    assert {k: v for k, v in used.items() if v} == {}
    assert model_internals_used(ROOT / "eliq" / "critic" / "critic.py")  # it reads real uses
