"""Waiting for a started server, and stopping one: shared by `make dev`, the tests and the benchmark."""

from __future__ import annotations

import subprocess
import time
import urllib.request


def wait_until_healthy(url: str, process: subprocess.Popen[bytes], timeout: float = 60) -> bool:
    """True once `url` answers 200; False if `process` exits first or `timeout` passes."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            return False
        try:
            with urllib.request.urlopen(url, timeout=1) as response:
                if response.status == 200:
                    return True
        except OSError:
            time.sleep(0.1)
    return False


def stop(process: subprocess.Popen[bytes], timeout: float = 10) -> None:
    """SIGTERM, then SIGKILL if it has not exited within `timeout` seconds."""
    if process.poll() is None:
        process.terminate()
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
