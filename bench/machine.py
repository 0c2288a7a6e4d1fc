"""The machine a benchmark ran on, and how busy it was while it ran."""

from __future__ import annotations

import os
import platform
import sys
from dataclasses import dataclass
from typing import Any


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def memory_gib() -> float | None:
    try:
        with open("/proc/meminfo") as meminfo:
            for line in meminfo:
                if line.startswith("MemTotal:"):
                    return round(int(line.split()[1]) / 1024 / 1024, 1)
    except OSError:
        pass
    return None


def describe() -> dict[str, Any]:
    return {
        "nproc": os.cpu_count(),
        "cpu_model": cpu_model(),
        "memory_gib": memory_gib(),
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "load_average_at_start": [round(v, 2) for v in os.getloadavg()],
    }


@dataclass
class CpuSample:
    busy: float
    total: float


def cpu_sample() -> CpuSample | None:
    try:
        with open("/proc/stat") as stat:
            fields = [float(v) for v in stat.readline().split()[1:]]
    except OSError:
        return None
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)
    return CpuSample(sum(fields) - idle, sum(fields))


class CpuMeter:
    """The share of the machine's CPU time spent busy (all processes, all cores) over a phase."""

    def __enter__(self) -> CpuMeter:
        self._start = cpu_sample()
        self.busy_percent: float | None = None
        return self

    def __exit__(self, *_: object) -> None:
        end = cpu_sample()
        if self._start is not None and end is not None and end.total > self._start.total:
            self.busy_percent = round(100 * (end.busy - self._start.busy) / (end.total - self._start.total), 1)
