"""What a result was measured on: CPU, OS, Python and the versions of every benchmarked package."""

from __future__ import annotations

import importlib.metadata
import os
import platform
import sys
from typing import Any

PACKAGES = (
    "toolkit",
    "starlette",
    "fastapi",
    "pydantic",
    "pydantic-core",
    "msgspec",
    "uvicorn",
    "uvloop",
    "httptools",
)


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def package_versions(names: tuple[str, ...] = PACKAGES) -> dict[str, str]:
    found = {}
    for name in names:
        try:
            found[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            found[name] = "not installed"
    return found


def machine_info() -> dict[str, Any]:
    info: dict[str, Any] = {
        "cpu": cpu_model(),
        "cpus": os.cpu_count(),
        "os": platform.platform(),
        "python": f"{platform.python_implementation()} {platform.python_version()}",
        "python_build": " ".join(platform.python_build()),
        "executable": sys.executable,
    }
    if hasattr(os, "getloadavg"):
        # Other work on the machine is the largest source of noise: record how busy it was.
        info["load_average"] = [round(x, 2) for x in os.getloadavg()]
    return info
