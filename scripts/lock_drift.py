"""Print how the installed packages differ from uv.lock (run by ``make test-latest``).

    .venv-latest/bin/python scripts/lock_drift.py

Lists every locked package whose installed version is another one, so a failure of the "latest"
test run names its suspects: the releases that are newer than the set the suite passed with.
"""

from __future__ import annotations

import re
import sys
import tomllib
from importlib import metadata
from pathlib import Path

LOCK = Path(__file__).resolve().parent.parent / "uv.lock"


def canonicalize_name(name: str) -> str:
    """PEP 503's normalised name: ``Foo_Bar`` and ``foo.bar`` are ``foo-bar``."""
    return re.sub(r"[-_.]+", "-", name).lower()


def locked_versions(lock: Path) -> dict[str, str]:
    """Name -> version for every package in the lock (the project itself excluded)."""
    data = tomllib.loads(lock.read_text())
    versions: dict[str, set[str]] = {}
    for package in data.get("package", []):
        if "registry" in package.get("source", {}):
            versions.setdefault(canonicalize_name(package["name"]), set()).add(package["version"])
    # A package locked at several versions (per Python version) is reported with all of them.
    return {name: " or ".join(sorted(found)) for name, found in versions.items()}


def installed_versions() -> dict[str, str]:
    return {canonicalize_name(dist.metadata["Name"]): dist.version for dist in metadata.distributions()}


def main() -> int:
    locked, installed = locked_versions(LOCK), installed_versions()
    changed = sorted(
        (name, locked[name], version)
        for name, version in installed.items()
        if name in locked and version not in locked[name].split(" or ")
    )
    added = sorted(set(installed) - set(locked) - {"toolkit"})
    print(f"lock drift: {len(changed) + len(added)} package(s) other than in uv.lock", file=sys.stderr)
    for name, was, now in changed:
        print(f"  {name}: {was} (locked) -> {now}", file=sys.stderr)
    for name in added:
        print(f"  {name}: not in the lock -> {installed[name]}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
