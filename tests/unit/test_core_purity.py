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
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
        elif isinstance(node, ast.ImportFrom) and node.level >= 2 and node.module:
            names.add("runwire." + node.module.split(".")[0])
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
    sample.write_text("import boto3\nfrom ..adapters import dynamodb\n")
    assert {"boto3", "runwire.adapters"} <= imported_modules(sample)
