"""Find the ASGI app a ``toolkit run``/``toolkit dev`` argument names.

Accepted forms (``APP`` defaults to ``$TOOLKIT_APP``, then to the first of ``DEFAULT_FILES`` found):

- ``package.module:attr`` (as uvicorn takes it), ``package.module`` (the attribute is found);
- ``path/to/file.py[:attr]`` or ``path/to/package`` (the module name is worked out from the
  ``__init__.py`` files above it, and the directory above the top package goes on ``sys.path``).

Without ``:attr``, the attribute is ``app``, ``api`` or ``application`` if one exists, else the one
module-level toolkit ``App`` (or Starlette app). Every failure is a ``DiscoveryError`` whose message
says what was looked for and what was found.
"""

from __future__ import annotations

import dataclasses
import importlib
import inspect
import os
import sys
from pathlib import Path
from typing import Any

__all__ = ["DEFAULT_FILES", "DiscoveryError", "Target", "find_target", "load_target"]

DEFAULT_FILES = ("main.py", "app.py", "api.py", "app/main.py", "app/app.py")
_NAMES = ("app", "api", "application")


class DiscoveryError(Exception):
    """The app could not be found or imported (the message is meant for the command line)."""


@dataclasses.dataclass(frozen=True)
class Target:
    """``module:attr`` to import, the directory that goes first on ``sys.path`` for it, and whether
    ``attr`` is a factory to call (``--factory``)."""

    module: str
    attr: str | None
    path: str
    factory: bool = False

    @property
    def import_string(self) -> str:
        return f"{self.module}:{self.attr}" if self.attr else self.module


def find_target(argument: str | None, *, factory: bool = False, cwd: Path | None = None) -> Target:
    """Where the app lives (nothing is imported yet)."""
    cwd = (cwd or Path.cwd()).resolve()
    if not argument:
        argument = os.environ.get("TOOLKIT_APP") or None
    if not argument:
        for name in DEFAULT_FILES:
            if (cwd / name).is_file():
                argument = name
                break
        else:
            raise DiscoveryError(
                "no app given: pass one (`toolkit run module:app` or `toolkit run path/to/main.py`), "
                f"set TOOLKIT_APP, or run where one of {', '.join(DEFAULT_FILES)} exists"
            )
    location, _, attr = argument.partition(":")
    if not location:
        raise DiscoveryError(f"{argument!r}: the module is missing before ':'")
    if ":" in attr or (attr and not all(part.isidentifier() for part in attr.split("."))):
        raise DiscoveryError(f"{argument!r}: {attr!r} is not an attribute name")
    path = Path(location)
    if location.endswith(".py") or os.sep in location or "/" in location or (cwd / path).is_dir():
        return _from_path(cwd / path, attr or None, factory)
    if not all(part.isidentifier() for part in location.split(".")):
        raise DiscoveryError(f"{location!r} is neither a module name nor a path to a .py file")
    return Target(location, attr or None, str(cwd), factory)


def _from_path(path: Path, attr: str | None, factory: bool) -> Target:
    path = path.resolve()
    if path.is_dir():
        if not (path / "__init__.py").is_file():
            raise DiscoveryError(f"{path} is a directory without __init__.py: name a .py file in it")
        parts = [path.name]
    elif path.is_file() and path.suffix == ".py":
        parts = [] if path.name == "__init__.py" else [path.stem]
    else:
        raise DiscoveryError(f"{path} does not exist" if not path.exists() else f"{path} is not a .py file")
    directory = path.parent
    while (directory / "__init__.py").is_file():
        parts.insert(0, directory.name)
        directory = directory.parent
    if not parts or not all(part.isidentifier() for part in parts):
        raise DiscoveryError(f"{path}: {'.'.join(parts) or '(none)'} is not an importable module name")
    return Target(".".join(parts), attr, str(directory), factory)


def load_target(target: Target) -> tuple[Any, Target]:
    """Import the module and return the app (called if a factory) and the target with its attribute."""
    if target.path not in sys.path:
        sys.path.insert(0, target.path)
    try:
        module = importlib.import_module(target.module)
    except ModuleNotFoundError as exc:
        if exc.name and (target.module == exc.name or target.module.startswith(exc.name + ".")):
            raise DiscoveryError(f"no module named {target.module!r} (looked in {target.path})") from exc
        raise
    attr = target.attr or _guess(module, target.module)
    obj: Any = module
    for part in attr.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            raise DiscoveryError(
                f"module {target.module!r} has no attribute {attr!r}{_found(module)}"
            ) from None
    target = dataclasses.replace(target, attr=attr)
    if target.factory:
        if _is_app(obj) or _is_asgi_function(obj):
            raise DiscoveryError(f"{target.import_string} is already an app: drop --factory")
        if not callable(obj):
            raise DiscoveryError(f"{target.import_string} is not callable, so it cannot be a --factory")
        obj = obj()
    elif inspect.isfunction(obj) and not _is_asgi_function(obj):
        raise DiscoveryError(
            f"{target.import_string} is a function, not an ASGI app: if it builds the app, pass --factory"
        )
    if not callable(obj):
        raise DiscoveryError(f"{target.import_string} is not an ASGI app (its type is {type(obj).__name__})")
    return obj, target


def _is_asgi_function(func: Any) -> bool:
    return inspect.iscoroutinefunction(func) and len(inspect.signature(func).parameters) == 3


def _is_app(obj: Any) -> bool:
    from starlette.applications import Starlette

    from ..app import App

    return isinstance(obj, App | Starlette)


def _apps(module: Any) -> list[str]:
    return [name for name, value in vars(module).items() if _is_app(value)]


def _guess(module: Any, name: str) -> str:
    for candidate in _NAMES:
        if callable(getattr(module, candidate, None)) and not inspect.ismodule(getattr(module, candidate)):
            return candidate
    apps = _apps(module)
    if len(apps) == 1:
        return apps[0]
    raise DiscoveryError(
        f"module {name!r} has no attribute named {' or '.join(_NAMES)}{_found(module)}: "
        f"name it, as in {name}:<attribute>"
    )


def _found(module: Any) -> str:
    apps = _apps(module)
    return f" (apps in it: {', '.join(apps)})" if apps else " (no toolkit App in it)"
