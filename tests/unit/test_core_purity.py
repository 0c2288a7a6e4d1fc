"""The core imports no boto3, FastAPI, anthropic, JWT library or process environment."""

import ast
from pathlib import Path

import runwire.core

FORBIDDEN = {"boto3", "botocore", "fastapi", "starlette", "anthropic", "mangum", "jwt", "uvicorn", "httpx",
             "aws_lambda_powertools", "os"}
CORE = Path(runwire.core.__file__).parent


def imported_modules(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            for alias in node.names:
                parts = alias.name.split(".")
                names.add(parts[0])
                if parts[0] == "runwire" and len(parts) > 1:
                    names.add("runwire." + parts[1])
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            parts = node.module.split(".")
            names.add(parts[0])
            if parts[0] == "runwire" and len(parts) > 1:
                names.add("runwire." + parts[1])  # `from runwire.adapters import x` is an edge import too
        elif isinstance(node, ast.ImportFrom) and node.level >= 2 and node.module:
            names.add("runwire." + node.module.split(".")[0])
        elif isinstance(node, ast.ImportFrom) and node.level >= 2:  # `from .. import adapters`
            names.update("runwire." + alias.name for alias in node.names)
    return names


def test_core_modules_import_nothing_from_the_edges():
    offenders = {}
    for path in sorted(CORE.glob("*.py")):
        bad = {name for name in imported_modules(path) if name in FORBIDDEN or name in {"runwire.adapters", "runwire.http", "runwire.wiring", "runwire.settings"}}
        if bad:
            offenders[path.name] = sorted(bad)
    assert offenders == {}


def test_the_purity_check_would_catch_an_import(tmp_path):
    sample = tmp_path / "sample.py"
    sample.write_text("import boto3\nfrom ..adapters import dynamodb\nfrom .. import wiring\n")
    assert {"boto3", "runwire.adapters", "runwire.wiring"} <= imported_modules(sample)


def test_the_purity_check_would_catch_an_absolute_import(tmp_path):
    sample = tmp_path / "sample.py"
    sample.write_text("from runwire.http.api import create_api_app\nimport runwire.wiring\n")
    assert {"runwire.http", "runwire.wiring"} <= imported_modules(sample)
