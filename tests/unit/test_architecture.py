"""Layering rules that keep the domain pure, the API cold start small and the bridge independent."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
FORBIDDEN_IN_DOMAIN = {"boto3", "botocore", "pynamodb", "chalice", "stripe", "jinja2", "weasyprint"}
HEAVY_FOR_API = {"weasyprint", "openpyxl", "xlsxwriter", "stripe"}


def imported_top_levels(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


def test_domain_imports_no_infrastructure() -> None:
    offenders = {
        str(path.relative_to(ROOT)): sorted(imported_top_levels(path) & FORBIDDEN_IN_DOMAIN)
        for path in (ROOT / "chalicelib" / "domain").rglob("*.py")
    }
    assert {k: v for k, v in offenders.items() if v} == {}


def imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found = {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}
    return found | {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and node.module}


def test_services_depend_on_ports_not_adapters() -> None:
    services = (ROOT / "chalicelib" / "services").glob("*.py")
    offenders = {str(path.relative_to(ROOT)): [m for m in imported_modules(path) if m.startswith("chalicelib.adapters")]
                 for path in services}
    assert {k: v for k, v in offenders.items() if v} == {}


def test_the_bridge_never_imports_the_cloud() -> None:
    offenders = [str(p) for p in (ROOT / "gateway-bridge").rglob("*.py") if "chalicelib" in imported_top_levels(p)]
    assert offenders == []


def test_importing_app_loads_no_heavy_library() -> None:
    probe = "import json, sys; import app; print(json.dumps(sorted({m.split('.')[0] for m in sys.modules})))"
    output = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, check=True)
    loaded = set(json.loads(output.stdout))
    assert "chalice" in loaded  # the probe really imported the app
    assert loaded & HEAVY_FOR_API == set()


def test_the_checks_above_can_fail(tmp_path: Path) -> None:
    bad = tmp_path / "bad.py"
    bad.write_text("import boto3\nfrom pynamodb.models import Model\nfrom . import sibling\n")
    assert imported_top_levels(bad) & FORBIDDEN_IN_DOMAIN == {"boto3", "pynamodb"}
