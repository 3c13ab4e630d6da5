"""The layout holds: services are run loops over `shared/` and never import each other, and
no process loads more of wirewatch than it runs."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[1]
SERVICES = sorted(path.name for path in (ROOT / "services").iterdir() if (path / "__init__.py").exists())


def imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text("utf-8"))
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return found


def test_the_four_services_are_there():
    assert SERVICES == ["alerter", "api", "fetcher", "worker"]


@pytest.mark.parametrize("service", SERVICES)
def test_a_service_imports_no_other_service(service):
    offences = [
        f"{path.relative_to(ROOT)} imports {module}"
        for path in sorted((ROOT / "services" / service).rglob("*.py"))
        for module in imported_modules(path)
        if module.startswith("services.") and not module.startswith(f"services.{service}")
    ]
    assert offences == []


def test_the_shared_domain_imports_no_service():
    offences = [
        f"{path.relative_to(ROOT)} imports {module}"
        for path in sorted((ROOT / "shared").rglob("*.py"))
        for module in imported_modules(path)
        if module == "services" or module.startswith("services.")
    ]
    assert offences == []


def loaded_by(statement: str) -> set[str]:
    """The modules a fresh interpreter holds after running `statement`."""
    script = f"import json, sys\n{statement}\nprint(json.dumps(sorted(sys.modules)))"
    output = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, check=True)
    return set(json.loads(output.stdout.splitlines()[-1]))


def under(modules: set[str], *prefixes: str) -> list[str]:
    return sorted(m for m in modules if any(m == p or m.startswith(p + ".") for p in prefixes))


def test_the_api_process_loads_neither_the_worker_nor_the_pipeline_nor_celery():
    modules = loaded_by("from services.api.app import create_app")
    assert under(modules, "services.worker", "services.fetcher", "services.alerter", "celery") == []
    assert under(modules, "shared.pipeline", "shared.feeds.source", "trafilatura", "numpy") == []


def test_the_fetcher_sends_tasks_by_name_without_loading_the_steps():
    modules = loaded_by("from services.fetcher.service import Fetcher\nimport shared.queue")
    assert under(modules, "services.worker", "services.api", "services.alerter") == []
    assert under(modules, "shared.pipeline") == ["shared.pipeline", "shared.pipeline.pipelines"]
