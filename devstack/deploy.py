"""`make build` and `make deploy`: `sam build` without Docker, then `sam deploy`, guided the first time.

`sam build` builds each function and the layer with the functions' own Python (`BuildMethod:
python3.12` runs `python3.12 -m pip`), found on PATH. On a machine where that name is a pyenv shim
whose version is not selected, or where the interpreter is installed but not on PATH, it fails
("Binary validation failed for python"). So the build looks for the interpreter itself, in order:

1. `pythonX.Y` on PATH that runs and is that version;
2. pyenv's installed versions (`$PYENV_ROOT/versions/X.Y.*`, else `~/.pyenv/versions`), newest first;
3. uv's managed Pythons (`$UV_PYTHON_INSTALL_DIR`, else `~/.local/share/uv/python/cpython-X.Y.*`);

and puts the directory of the one it found first on PATH for `sam build`. None found: a message that
says what to install, and no build. X.Y is the template's runtime, read from template.yaml.

`deploy` checks that AWS credentials resolve before building (a build takes minutes), then runs
`sam deploy --guided` while samconfig.toml holds no `parameter_overrides` for deploy (the first
deployment: the guided run asks for the parameters and saves them there) and plain `sam deploy` after.

    python -m devstack.deploy build [sam build arguments...]
    python -m devstack.deploy deploy [sam deploy arguments...]
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tomllib
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from devstack.resources import load_template
from devstack.template_check import find_sam

ROOT = Path(__file__).resolve().parent.parent
TEMPLATE = ROOT / "template.yaml"
SAMCONFIG = ROOT / "samconfig.toml"
_RUNTIME = re.compile(r"^python(\d+)\.(\d+)$")


class DeployError(Exception):
    """A reason not to build or deploy, worded for the person running `make`."""


def runtime_version(template: Mapping[str, Any]) -> str:
    """"3.12" for `Runtime: python3.12` in the template's Globals (every function's runtime)."""
    runtime = str(template.get("Globals", {}).get("Function", {}).get("Runtime", ""))
    match = _RUNTIME.match(runtime)
    if match is None:
        raise DeployError(f"template.yaml's Globals.Function.Runtime is {runtime!r}, not a pythonX.Y runtime")
    return f"{match[1]}.{match[2]}"


def find_interpreter(version: str, environ: Mapping[str, str]) -> Path | None:
    """A working `python{version}` (see the module docstring for where it looks), or None."""
    for candidate in _candidates(version, environ):
        if _is_version(candidate, version, environ):
            return candidate
    return None


def build_environment(environ: Mapping[str, str], interpreter: Path) -> dict[str, str]:
    """The environment for `sam build`: the interpreter's directory first on PATH."""
    path = environ.get("PATH", "")
    return {**environ, "PATH": f"{interpreter.parent}{os.pathsep}{path}" if path else str(interpreter.parent),
            "SAM_CLI_TELEMETRY": environ.get("SAM_CLI_TELEMETRY", "0")}


def no_interpreter_message(version: str) -> str:
    return (
        f"sam build needs Python {version}, the functions' runtime (template.yaml: Runtime python{version}), and "
        f"found none: no working python{version} on PATH, none in pyenv's versions, none among uv's Pythons.\n"
        f"Install one, then run this again: `pyenv install {version}`, `uv python install {version}`, or your "
        f"system's python{version} package. Or build in Docker instead: `sam build --use-container`."
    )


def credentials_problem() -> str | None:
    """Why AWS credentials do not resolve (botocore's own chain: variables, profiles, SSO, instance
    roles), or None when they do. Resolving them calls no AWS API."""
    import botocore.exceptions
    import botocore.session

    session = botocore.session.Session()
    try:
        credentials = session.get_credentials()
    except botocore.exceptions.BotoCoreError as error:
        return f"AWS credentials could not be loaded: {error}"
    if credentials is None:
        return ("no AWS credentials found: `make deploy` deploys to your AWS account. Configure them first "
                "(`aws configure`, `aws sso login --profile NAME` with AWS_PROFILE=NAME, or AWS_ACCESS_KEY_ID and "
                "AWS_SECRET_ACCESS_KEY), then run it again.")
    return None


def is_first_deploy(samconfig: Path) -> bool:
    """True while samconfig.toml has no saved deploy parameters (what `sam deploy --guided` writes)."""
    if not samconfig.is_file():
        return True
    config = tomllib.loads(samconfig.read_text(encoding="utf-8"))
    deploy = config.get("default", {}).get("deploy", {}).get("parameters", {})
    return "parameter_overrides" not in deploy


def build(sam: str, arguments: Sequence[str], environ: Mapping[str, str]) -> int:
    version = runtime_version(load_template(TEMPLATE))
    interpreter = find_interpreter(version, environ)
    if interpreter is None:
        raise DeployError(no_interpreter_message(version))
    print(f"==> sam build with {interpreter}", flush=True)
    return subprocess.call([sam, "build", *arguments], cwd=ROOT, env=build_environment(environ, interpreter))


def deploy(sam: str, arguments: Sequence[str], environ: Mapping[str, str]) -> int:
    problem = credentials_problem()
    if problem is not None:
        raise DeployError(problem)
    built = build(sam, [], environ)
    if built != 0:
        return built
    guided = ["--guided"] if is_first_deploy(SAMCONFIG) and "--guided" not in arguments else []
    print(f"==> sam deploy {' '.join([*guided, *arguments])}".rstrip(), flush=True)
    return subprocess.call([sam, "deploy", *guided, *arguments], cwd=ROOT, env={**environ, "SAM_CLI_TELEMETRY": "0"})


def main(argv: Sequence[str] | None = None, environ: Mapping[str, str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    environ = dict(os.environ if environ is None else environ)
    if not argv or argv[0] not in ("build", "deploy"):
        print(__doc__, file=sys.stderr)
        return 2
    sam = find_sam()
    if sam is None:
        print("no sam executable: `make tools` installs it (or set SAM_CLI)", file=sys.stderr)
        return 1
    command, arguments = argv[0], argv[1:]
    try:
        return build(sam, arguments, environ) if command == "build" else deploy(sam, arguments, environ)
    except DeployError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1


def _candidates(version: str, environ: Mapping[str, str]) -> Iterable[Path]:
    name = f"python{version}"
    for directory in environ.get("PATH", "").split(os.pathsep):
        if directory:
            yield Path(directory) / name
    home = Path(environ.get("HOME") or Path.home())
    pyenv_root = Path(environ.get("PYENV_ROOT") or home / ".pyenv")
    yield from _newest_first(pyenv_root / "versions", f"{version}.*", Path("bin") / name)
    uv_root = Path(environ.get("UV_PYTHON_INSTALL_DIR") or home / ".local" / "share" / "uv" / "python")
    yield from _newest_first(uv_root, f"cpython-{version}.*", Path("bin") / name)


def _newest_first(root: Path, pattern: str, executable: Path) -> list[Path]:
    def patch(directory: Path) -> tuple[int, ...]:
        numbers = re.findall(r"\d+", directory.name)
        return tuple(int(number) for number in numbers[:3])

    if not root.is_dir():
        return []
    return [directory / executable for directory in sorted(root.glob(pattern), key=patch, reverse=True)]


def _is_version(executable: Path, version: str, environ: Mapping[str, str]) -> bool:
    if not (executable.is_file() and os.access(executable, os.X_OK)):
        return False
    try:
        probe = subprocess.run(
            [str(executable), "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
            env=dict(environ), capture_output=True, text=True, timeout=30, check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return False
    return probe.returncode == 0 and probe.stdout.strip() == version


if __name__ == "__main__":
    sys.exit(main())
