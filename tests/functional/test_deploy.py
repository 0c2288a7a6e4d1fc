"""`make build` and `make deploy` on a machine as it comes (issue 12, point 8): the runtime's Python
found without PYENV_VERSION or Docker, a clear message when there is none, and a deploy that stops
at once, saying why, without AWS credentials. (tests/unit/test_template.py runs `make build` itself.)"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from devstack.deploy import find_interpreter, is_first_deploy, no_interpreter_message, runtime_version
from devstack.resources import load_template

REPO = Path(__file__).resolve().parents[2]


def _script(path: Path, body: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"#!/bin/sh\n{body}\n", encoding="utf-8")
    path.chmod(0o755)
    return path


def _bare_environment(tmp_path: Path, path: Path) -> dict[str, str]:
    """HOME, PYENV_ROOT and uv's directory empty; PATH only `path`."""
    return {"PATH": str(path), "HOME": str(tmp_path / "home"), "PYENV_ROOT": str(tmp_path / "no-pyenv"),
            "UV_PYTHON_INSTALL_DIR": str(tmp_path / "no-uv")}


def test_the_runtime_version_comes_from_the_template() -> None:
    assert runtime_version(load_template(REPO / "template.yaml")) == "3.12"


def test_a_pyenv_shim_that_cannot_run_is_passed_over_for_pyenvs_own_interpreter(tmp_path: Path) -> None:
    # What `python3.12` is on a pyenv machine whose selected versions do not include 3.12.
    shims = tmp_path / "shims"
    _script(shims / "python3.12", "echo 'pyenv: python3.12: command not found' >&2; exit 127")
    environment = _bare_environment(tmp_path, shims)
    pyenv = tmp_path / "pyenv"
    environment["PYENV_ROOT"] = str(pyenv)
    _script(pyenv / "versions" / "3.12.1" / "bin" / "python3.12", "echo 3.12")
    newest = _script(pyenv / "versions" / "3.12.10" / "bin" / "python3.12", "echo 3.12")
    _script(pyenv / "versions" / "3.13.0" / "bin" / "python3.12", "echo 3.13")
    assert find_interpreter("3.12", environment) == newest


def test_an_interpreter_of_another_version_is_not_taken(tmp_path: Path) -> None:
    bin_dir = tmp_path / "bin"
    _script(bin_dir / "python3.12", "echo 3.11")  # misnamed
    environment = _bare_environment(tmp_path, bin_dir)
    assert find_interpreter("3.12", environment) is None
    uv = tmp_path / "uv"
    environment["UV_PYTHON_INSTALL_DIR"] = str(uv)
    found = _script(uv / "cpython-3.12.7-linux-x86_64-gnu" / "bin" / "python3.12", "echo 3.12")
    assert find_interpreter("3.12", environment) == found


def test_make_build_without_the_runtimes_python_says_what_to_install(tmp_path: Path) -> None:
    # Only the tools make itself needs on PATH, no python3.12 anywhere.
    tools = tmp_path / "tools"
    tools.mkdir()
    for name in ("make", "bash", "sh", "env"):
        found = subprocess.run(["which", name], capture_output=True, text=True, check=True).stdout.strip()
        (tools / name).symlink_to(found)
    environment = _bare_environment(tmp_path, tools) | {"SAM_CLI": sys.executable}
    completed = subprocess.run(["make", "--no-print-directory", "build", f"SAM={sys.executable}"], cwd=REPO,
                               env=environment, capture_output=True, text=True, timeout=120, check=False)
    assert completed.returncode != 0
    assert no_interpreter_message("3.12") in completed.stderr
    assert "sam build with" not in completed.stdout


def test_make_deploy_without_credentials_stops_before_building_and_says_why(tmp_path: Path) -> None:
    environment = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")} | {
        "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "no-credentials"),
        "AWS_CONFIG_FILE": str(tmp_path / "no-config"),
        "AWS_EC2_METADATA_DISABLED": "true",  # no instance role to ask for either
    }
    completed = subprocess.run(["make", "--no-print-directory", "deploy"], cwd=REPO, env=environment,
                               capture_output=True, text=True, timeout=300, check=False)
    assert completed.returncode != 0
    assert "no AWS credentials found" in completed.stderr and "aws configure" in completed.stderr
    assert "sam build" not in completed.stdout and "sam deploy" not in completed.stdout


def test_the_first_deploy_is_guided_and_later_ones_reuse_its_answers(tmp_path: Path) -> None:
    assert is_first_deploy(REPO / "samconfig.toml")  # as committed: nothing saved yet
    saved = tmp_path / "samconfig.toml"
    saved.write_text((REPO / "samconfig.toml").read_text(encoding="utf-8") + (
        'region = "eu-west-1"\nparameter_overrides = "JwtSecretArn=\\"arn:aws:secretsmanager:eu-west-1:'
        '123456789012:secret:runwire/jwt-AbCdEf\\""\n'), encoding="utf-8")
    assert not is_first_deploy(saved)
    assert is_first_deploy(tmp_path / "missing.toml")


@pytest.mark.parametrize("runtime", ["nodejs20.x", "python3"])
def test_a_template_without_a_python_runtime_is_refused(runtime: str) -> None:
    from devstack.deploy import DeployError

    with pytest.raises(DeployError, match="pythonX.Y"):
        runtime_version({"Globals": {"Function": {"Runtime": runtime}}})
