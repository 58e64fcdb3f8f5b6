"""Print ``name==lowest`` for every runtime dependency of the library (run by ``make test-lowest``).

    python3 scripts/lower_bounds.py > lower-bounds.txt
    uv pip install ... --override lower-bounds.txt

Reads ``pyproject.toml``: the core dependencies and every optional extra a service installs (all
but ``TOOL_EXTRAS``), each at the lowest version its range allows (the highest ``>=`` where one
package is named twice). Test tools and the benchmark peers stay at their newest: what this
checks is that the ranges the library declares are honest. A runtime dependency without a lower
bound is an error.
"""

from __future__ import annotations

import re
import sys
import tomllib
from pathlib import Path

from lock_drift import canonicalize_name

PYPROJECT = Path(__file__).resolve().parent.parent / "pyproject.toml"
TOOL_EXTRAS = ("dev", "bench")  # test tools and benchmark peers, not used by a service
_NAME = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9_.\-]*)")
_LOWER = re.compile(r">=\s*([0-9][^,;\s)]*)")


def _version_key(version: str) -> tuple[int, ...]:
    return tuple(int(part) for part in re.findall(r"\d+", version))


def lower_bounds(pyproject: Path = PYPROJECT) -> list[str]:
    project = tomllib.loads(pyproject.read_text())["project"]
    requirements = list(project["dependencies"])
    for extra, extra_requirements in project.get("optional-dependencies", {}).items():
        if extra not in TOOL_EXTRAS:
            requirements += extra_requirements
    pins: dict[str, str] = {}
    for requirement in requirements:
        name, bounds = _NAME.match(requirement), _LOWER.findall(requirement.split(";", 1)[0])
        if name is None or not bounds:
            raise SystemExit(f"pyproject.toml: {requirement!r} has no lower bound (>=)")
        key = canonicalize_name(name[1])
        pins[key] = max([*bounds, *([pins[key]] if key in pins else [])], key=_version_key)
    return [f"{name}=={version}" for name, version in sorted(pins.items())]


if __name__ == "__main__":
    print("\n".join(lower_bounds()))
    sys.exit(0)
