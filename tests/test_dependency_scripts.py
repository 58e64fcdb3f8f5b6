"""The scripts behind ``make test-lowest`` and ``make test-latest``: what they pin and what they report."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))

import lock_drift  # noqa: E402
import lower_bounds  # noqa: E402


def write_pyproject(tmp_path: Path, dependencies: list[str], extras: dict[str, list[str]]) -> Path:
    # A JSON array of strings is a TOML array.
    lines = ["[project]", f"dependencies = {json.dumps(dependencies)}", "[project.optional-dependencies]"]
    lines += [f"{name} = {json.dumps(requirements)}" for name, requirements in extras.items()]
    path = tmp_path / "pyproject.toml"
    path.write_text("\n".join(lines) + "\n")
    return path


def test_every_runtime_extra_is_pinned_at_its_floor_and_tool_extras_are_not(tmp_path: Path) -> None:
    pyproject = write_pyproject(
        tmp_path,
        ["starlette>=1.9,<2", "Foo_Bar (>=1.0)", "baz[speedups]>=2.1; python_version < '4'"],
        {"newextra": ["qux>=0.3"], "dev": ["pytest>=8"], "bench": ["fastapi>=0.115"]},
    )
    assert lower_bounds.lower_bounds(pyproject) == ["baz==2.1", "foo-bar==1.0", "qux==0.3", "starlette==1.9"]


def test_a_package_named_twice_is_pinned_at_the_highest_floor(tmp_path: Path) -> None:
    pyproject = write_pyproject(tmp_path, ["anyio>=4.0", "bar>=1.0,>=1.10"], {"extra": ["anyio>=4.5"]})
    assert lower_bounds.lower_bounds(pyproject) == ["anyio==4.5", "bar==1.10"]


def test_a_runtime_dependency_without_a_floor_is_an_error(tmp_path: Path) -> None:
    pyproject = write_pyproject(tmp_path, ["msgspec"], {})
    with pytest.raises(SystemExit, match="'msgspec' has no lower bound"):
        lower_bounds.lower_bounds(pyproject)


def test_the_projects_own_floors_are_all_pinned() -> None:
    pins = dict(pin.split("==") for pin in lower_bounds.lower_bounds())
    assert {"starlette", "msgspec", "uvicorn", "anyio", "redis", "python-multipart"} <= set(pins)
    assert "pytest" not in pins  # test tools and benchmark peers stay at their newest
    assert "fastapi" not in pins


def test_the_drift_report_counts_every_line_it_prints(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    lock = tmp_path / "uv.lock"
    registry = 'source = { registry = "https://pypi.org/simple" }'
    lock.write_text(
        f'[[package]]\nname = "itsdangerous"\nversion = "2.2.0"\n{registry}\n'
        f'[[package]]\nname = "Same_Name"\nversion = "1.0"\n{registry}\n'
    )
    monkeypatch.setattr(lock_drift, "LOCK", lock)
    installed = {"itsdangerous": "2.1.2", "same-name": "1.0", "newcomer": "0.1", "toolkit": "0.1.0"}
    monkeypatch.setattr(lock_drift, "installed_versions", lambda: installed)
    assert lock_drift.main() == 0
    lines = capsys.readouterr().err.splitlines()
    assert lines == [
        "lock drift: 2 package(s) other than in uv.lock",
        "  itsdangerous: 2.2.0 (locked) -> 2.1.2",
        "  newcomer: not in the lock -> 0.1",
    ]
