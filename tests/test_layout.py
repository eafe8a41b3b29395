"""The house rules of the layout (README: Architecture), checked on the source itself.

A stage may import only the stages before it in the flow, and the deployed packages
(`shared/`, `remediations/`, `function_app.py`) never import the sandbox (the local Azure
double is a development tool; `.funcignore` keeps it out of the deployment package too).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DEPLOYED = [ROOT / "function_app.py", *sorted((ROOT / "shared").rglob("*.py")),
            *sorted((ROOT / "remediations").rglob("*.py"))]
# What each stage of shared/ may import of shared/ (besides itself); README's architecture.
MAY_IMPORT = {
    "core": set(),
    "azure": {"core"},
    "state": {"core", "azure"},
    "diagnosis": {"core", "azure"},
    "approvals": {"core", "azure", "state", "wiring"},
    "decisions": {"core", "azure", "state", "diagnosis", "approvals", "wiring"},
    "wiring": {"core", "azure", "state", "approvals", "decisions"},
    "entry": {"core", "azure", "state", "diagnosis", "approvals", "decisions", "wiring", "entry"},
}


def imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), str(path))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return found


def stage_of(module: str) -> str | None:
    parts = module.split(".")
    if parts[0] != "shared" or len(parts) < 2:
        return None
    return parts[1]


@pytest.mark.parametrize("path", DEPLOYED, ids=lambda p: str(p.relative_to(ROOT)))
def test_deployed_code_never_imports_the_sandbox(path: Path) -> None:
    bad = sorted(m for m in imported_modules(path) if m == "sandbox" or m.startswith("sandbox."))
    assert not bad, f"{path.relative_to(ROOT)} imports {bad}: the deployed app must work without the sandbox"


@pytest.mark.parametrize("path", sorted((ROOT / "shared").rglob("*.py")), ids=lambda p: str(p.relative_to(ROOT)))
def test_each_stage_imports_only_the_stages_before_it(path: Path) -> None:
    own = stage_of(".".join(path.relative_to(ROOT).with_suffix("").parts))
    if own is None or own == "__init__":
        return
    allowed = MAY_IMPORT[own] | {own}
    stages = {s for m in imported_modules(path) if (s := stage_of(m)) and s in MAY_IMPORT}
    assert stages <= allowed, f"{path.relative_to(ROOT)} ({own}) imports {sorted(stages - allowed)}"


def test_shared_has_a_handful_of_entries_each_a_stage() -> None:
    entries = sorted(p.name for p in (ROOT / "shared").iterdir() if p.name != "__pycache__")
    assert entries == sorted([*(f"{s}" for s in MAY_IMPORT if s != "wiring"), "wiring.py", "__init__.py"])


@pytest.mark.parametrize("package", sorted(p.parent for p in [*(ROOT / "shared").rglob("__init__.py"),
                                                               *(ROOT / "remediations").rglob("__init__.py"),
                                                               ROOT / "sandbox" / "__init__.py"]),
                         ids=lambda p: str(p.relative_to(ROOT)))
def test_every_package_says_what_it_holds(package: Path) -> None:
    doc = ast.get_docstring(ast.parse((package / "__init__.py").read_text()))
    if package.name == "samples":
        return
    assert doc and len(doc) > 40, f"{package.relative_to(ROOT)}/__init__.py needs a docstring saying what it holds"


def test_the_deployment_package_leaves_the_sandbox_out() -> None:
    entries = {line.strip().rstrip("/") for line in (ROOT / ".funcignore").read_text().splitlines()}
    assert "sandbox" in entries
