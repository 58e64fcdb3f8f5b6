"""Print ``name==lowest`` for every runtime dependency of the library (run by ``make test-lowest``).

    python3 scripts/lower_bounds.py > lower-bounds.txt
    uv pip install ... --override lower-bounds.txt

Reads ``pyproject.toml``: the core dependencies and the optional extras a service installs
(``RUNTIME_EXTRAS``), each at the lowest version its range allows. Test tools and the benchmark
peers stay at their newest: what this checks is that the ranges the library declares are honest.
"""

from __future__ import annotations

import re
import sys
import tomllib
from pathlib import Path

PYPROJECT = Path(__file__).resolve().parent.parent / "pyproject.toml"
RUNTIME_EXTRAS = ("forms", "redis", "jwt", "metrics", "argon2", "postgres")
_LOWER = re.compile(r"^\s*([A-Za-z0-9_.\-]+)\s*(?:\[[^\]]*\])?\s*[^;]*?>=\s*([^,;\s]+)")


def lower_bounds(pyproject: Path = PYPROJECT) -> list[str]:
    project = tomllib.loads(pyproject.read_text())["project"]
    requirements = list(project["dependencies"])
    for extra in RUNTIME_EXTRAS:
        requirements += project["optional-dependencies"][extra]
    pins: dict[str, str] = {}
    for requirement in requirements:
        match = _LOWER.match(requirement)
        if match is None:
            raise SystemExit(f"pyproject.toml: {requirement!r} has no lower bound (>=)")
        pins[match[1].lower()] = match[2]
    return [f"{name}=={version}" for name, version in sorted(pins.items())]


if __name__ == "__main__":
    print("\n".join(lower_bounds()))
    sys.exit(0)
