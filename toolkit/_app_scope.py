"""App-scoped dependencies: created once (at start-up), shared by every request, torn down at shutdown.

``Depends(create_pool, scope="app")`` is resolved inside the app's lifespan. Everything it depends
on is resolved at app scope too, so it may not ask for request data (parameters, ``Request``...);
that is checked at registration.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Collection, Iterable
from typing import Any

import anyio

from ._analysis import Dependant
from ._cleanup import CleanupStack
from ._executor import Extractor, Resolution, Step, run_steps, step_kind
from .exceptions import RouteConfigError

logger = logging.getLogger("toolkit")


class DependencyOverrides(dict[Callable[..., Any], Callable[..., Any]]):
    """``app.dependency_overrides``: a dict that counts its changes.

    Endpoints compare ``version`` (one integer) per request, so routes whose graph has no
    overridden dependency keep their precompiled plan, and a change applies on the next request.
    """

    version = 0

    def _bump(self) -> None:
        self.version += 1

    def __setitem__(self, key: Callable[..., Any], value: Callable[..., Any]) -> None:
        super().__setitem__(key, value)
        self._bump()

    def __delitem__(self, key: Callable[..., Any]) -> None:
        super().__delitem__(key)
        self._bump()

    def clear(self) -> None:
        super().clear()
        self._bump()

    def pop(self, key: Any, *default: Any) -> Any:
        result = super().pop(key, *default)
        self._bump()
        return result

    def popitem(self) -> tuple[Callable[..., Any], Callable[..., Any]]:
        result = super().popitem()
        self._bump()
        return result

    def setdefault(self, key: Callable[..., Any], default: Any = None) -> Any:
        result = super().setdefault(key, default)
        self._bump()
        return result

    def update(self, *args: Any, **kwargs: Any) -> None:
        super().update(*args, **kwargs)
        self._bump()

    def __ior__(self, other: Any) -> DependencyOverrides:  # type: ignore[override,misc]
        self.update(other)
        return self


class AppScope:
    """Holds the app-scoped dependency values of one App and their teardown."""

    def __init__(self) -> None:
        self.dependants: dict[Callable[..., Any], Dependant] = {}
        self.values: dict[Callable[..., Any], Any] = {}
        self._steps: dict[Callable[..., Any], Step] = {}  # every node of the registered trees
        self._replaced: set[Callable[..., Any]] = set()
        self.lifespans = 0  # registered as a plan said (startup redoes)
        self._stack: CleanupStack | None = None  # generator values stay open until shutdown
        self._lock: anyio.Lock | None = None

    def register(self, dependant: Dependant, *, replace: bool = False) -> None:
        """Register an app-scoped dependency; ``replace`` when compiled under overrides (its
        sub-dependencies may be replaced), so start-up builds it the way the overrides say."""
        self._check(dependant, dependant.name)
        replace = replace and dependant.call not in self.values
        if replace:
            self.dependants[dependant.call] = dependant
            self._replaced.add(dependant.call)
        else:
            self.dependants.setdefault(dependant.call, dependant)
        self._compile(dependant, replace)

    def _compile(self, dependant: Dependant, replace: bool) -> None:
        """One step per node of the tree; an argument takes the (app-scoped) value of its node."""
        args: list[tuple[str, Extractor]] = []
        for kwarg, _, sub in dependant.dependencies:
            self._compile(sub, replace)
            if kwarg is not None:
                args.append((kwarg, self._value_of(sub.call)))
        if replace or dependant.call not in self._steps:
            kind = step_kind(dependant)
            self._steps[dependant.call] = Step(dependant.call, dependant.name, kind, args=tuple(args))

    def _value_of(self, call: Callable[..., Any]) -> Extractor:
        values = self.values

        def extract(res: Resolution) -> Any:
            return values[call]

        return extract

    def _check(self, dependant: Dependant, root: str) -> None:
        needs = [s.name for s in dependant.scalars] + [b.name for b in dependant.bodies]
        needs += [f.name for f in dependant.forms] + [name for name, _ in dependant.specials]
        if needs:
            raise RouteConfigError(
                f"{root}: an app-scoped dependency is created once at start-up, so {dependant.name} "
                f"cannot take request data ({', '.join(needs)})"
            )
        for _, _, sub in dependant.dependencies:
            self._check(sub, root)

    async def get(self, call: Callable[..., Any]) -> Any:
        """The value of ``call``; resolved lazily (once) if the lifespan did not run."""
        try:
            return self.values[call]
        except KeyError:
            pass
        if self._lock is None:
            self._lock = anyio.Lock()
        async with self._lock:
            if call not in self.values:
                if self._stack is None:
                    logger.warning(
                        "app-scoped dependency %s resolved outside the lifespan: it will not be torn down",
                        self.dependants[call].name,
                    )
                    self._stack = CleanupStack()
                await self._resolve(self.dependants[call])
        return self.values[call]

    async def startup(
        self, dependants: Iterable[Dependant], skip: Collection[Callable[..., Any]] = ()
    ) -> None:
        """Create the app-scoped values of ``dependants`` (those of the routes' current plans)
        and of any other registered one, except those of ``skip`` (overridden ones).

        The registry is rebuilt from them, so what an earlier lifespan's overrides registered
        (a test's fake, or a pool built from fake settings) is not created again once the
        overrides are gone."""
        if self._stack is not None:
            # Values a request resolved before any lifespan (a TestClient used without ``with``):
            # torn down now, so this lifespan creates, and later closes, its own.
            await self.shutdown()
        self.lifespans += 1  # plans compiled outside the routes (health checks) register again
        for call in self._replaced:  # registered by earlier plans; the current ones say again
            self.dependants.pop(call, None)
        self._replaced.clear()
        for dependant in dependants:
            self.register(dependant, replace=True)
        self._stack = CleanupStack()
        try:
            for call, dependant in list(self.dependants.items()):
                if call not in skip:
                    await self._resolve(dependant)
        except BaseException:
            await self.shutdown()
            raise

    async def shutdown(self) -> None:
        stack, self._stack = self._stack, None
        try:
            if stack is not None:
                await stack.close()
        finally:
            self.values.clear()

    async def _resolve(self, dependant: Dependant) -> Any:
        """Create ``dependant``'s value after those of its dependencies, with the one executor."""
        if dependant.call in self.values:
            return self.values[dependant.call]
        for _, _, sub in dependant.dependencies:
            await self._resolve(sub)
        step = self._steps[dependant.call]
        value = await run_steps((step,), Resolution(None, None, None, 1, self._stack))
        self.values[dependant.call] = value
        return value
