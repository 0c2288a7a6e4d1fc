"""`pip install ./clients/python` on a fresh venv gives the SDK and the `runwire` command, with its
dependencies from the package index (nothing of this repo's venv, nor the server package, is there)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_pip_install_into_a_fresh_venv_gives_the_sdk_and_the_cli(tmp_path):
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=60)
    installed = subprocess.run(
        [str(venv / "bin" / "pip"), "install", "-q", str(ROOT / "clients" / "python")],
        capture_output=True, text=True, timeout=300,
    )
    assert installed.returncode == 0, installed.stderr[-3000:]
    usage = subprocess.run([str(venv / "bin" / "runwire"), "--help"], capture_output=True, text=True, timeout=60)
    assert usage.returncode == 0 and "usage: runwire" in usage.stdout
    for command in ("run", "runs", "chat", "token"):
        assert command in usage.stdout
    token = subprocess.run([str(venv / "bin" / "runwire"), "token", "--org", "acme"], capture_output=True, text=True, timeout=60)
    assert token.returncode == 0 and token.stdout.count(".") == 2, token.stderr
    probe = "import importlib.util, runwire_client; print(runwire_client.Runwire.__name__, importlib.util.find_spec('runwire'))"
    imported = subprocess.run([str(venv / "bin" / "python"), "-c", probe], capture_output=True, text=True, timeout=60)
    assert imported.stdout.split() == ["Runwire", "None"], "the SDK imports without the server package"
