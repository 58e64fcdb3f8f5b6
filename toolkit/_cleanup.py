"""The per-request cleanup stack of generator dependencies (and open form files).

A lean replacement for ``AsyncExitStack`` + ``asynccontextmanager``: generators are driven
directly (``__anext__`` / ``athrow``), which costs a fraction of wrapping each one in a context
manager on every request. Semantics follow ``contextlib``: cleanups run in reverse order, every
one runs even if another fails, an exception is thrown into each generator, and a generator may
replace it (``raise HTTPException(...)`` in its ``except``) or swallow it.
"""

from __future__ import annotations

import math
from collections.abc import AsyncGenerator, Awaitable, Callable, Generator
from typing import Any

import anyio
import anyio.to_thread

__all__ = ["CleanupStack"]

_ASYNC_GEN, _SYNC_GEN, _CALLBACK = 0, 1, 2


def _sync_next(gen: Generator[Any, None, None]) -> Any:
    try:
        return next(gen)
    except StopIteration:
        raise RuntimeError("a generator dependency did not yield") from None


def _sync_finish(gen: Generator[Any, None, None], exc: BaseException | None) -> None:
    """Resume ``gen`` after its yield (or throw ``exc`` into it); it must then stop."""
    try:
        if exc is None:
            next(gen)
        else:
            gen.throw(exc)
    except StopIteration:
        return
    raise RuntimeError("a generator dependency yielded more than once")


class CleanupStack:
    __slots__ = ("_items", "_run_sync", "_shield_timeout")

    def __init__(
        self,
        run_sync: Callable[..., Awaitable[Any]] = anyio.to_thread.run_sync,
        shield_timeout: float | None = None,
    ) -> None:
        self._items: list[tuple[int, Any]] = []
        self._run_sync = run_sync  # how a sync generator is driven in a worker thread
        self._shield_timeout = shield_timeout

    async def enter_async_gen(self, gen: AsyncGenerator[Any, None]) -> Any:
        try:
            value = await gen.__anext__()
        except StopAsyncIteration:
            raise RuntimeError("a generator dependency did not yield") from None
        self._items.append((_ASYNC_GEN, gen))
        return value

    async def enter_sync_gen(self, gen: Generator[Any, None, None]) -> Any:
        value = await self._run_sync(_sync_next, gen)
        self._items.append((_SYNC_GEN, gen))
        return value

    def push_async_callback(self, callback: Callable[[], Awaitable[Any]]) -> None:
        self._items.append((_CALLBACK, callback))

    async def _run(self, exc: BaseException | None, *, check_first: bool = False) -> BaseException | None:
        """Run every cleanup, newest first; return the exception still in flight, if any.

        A cancellation cuts the cleanup it arrives in short (it is thrown in at an ``await``);
        once one is pending, the older cleanups run shielded, so they still finish (release a
        connection) instead of each being cancelled at its first ``await`` in turn."""
        items, self._items = self._items, []
        items.reverse()
        for position, (kind, item) in enumerate(items):
            # Arrived during a cleanup that did not raise it (or, ``check_first``, before any ran).
            if (position or check_first) and _cancelled():
                return await self._run_shielded(items[position:], exc)
            try:
                if kind == _ASYNC_GEN:  # PERF: inline, not through _finish
                    await _async_finish(item, exc)
                else:
                    await self._finish(kind, item, exc)
            except BaseException as raised:
                exc = raised
                if position + 1 < len(items) and _cancelled(raised):
                    return await self._run_shielded(items[position + 1 :], exc)
            else:
                if kind != _CALLBACK:
                    exc = None  # the generator finished: it handled any exception thrown in
        return exc

    async def _run_shielded(
        self, items: list[tuple[int, Any]], exc: BaseException | None
    ) -> BaseException | None:
        # ``shield_timeout`` bounds it where a caller has a deadline of its own (health checks).
        cancelled = anyio.get_cancelled_exc_class()
        with anyio.move_on_after(self._shield_timeout, shield=True):
            for kind, item in items:
                try:
                    await self._finish(kind, item, exc)
                except cancelled:
                    pass  # this scope's own deadline: the cancellation in flight stays the one
                except BaseException as raised:
                    exc = raised
        return exc

    async def _finish(self, kind: int, item: Any, exc: BaseException | None) -> None:
        if kind == _ASYNC_GEN:
            await _async_finish(item, exc)
        elif kind == _SYNC_GEN:
            await self._run_sync(_sync_finish, item, exc)
        else:
            await item()

    async def close(self, *, check_first: bool = False) -> None:
        """The request succeeded: finish every generator; raise what a cleanup raised, if any.

        ``check_first``: a cancellation may already be pending (it came while a sync handler ran
        in a thread, with no ``await`` since): then every cleanup runs shielded, none is cut short.
        """
        exc = await self._run(None, check_first=check_first)
        if exc is not None:
            raise exc

    async def unwind(self, exc: BaseException) -> BaseException:
        """Throw ``exc`` into the generators; return what should be rendered.

        A generator that swallows the error leaves the original to render (a handler that failed
        still has no response to send). A cancellation already pending (it came while a sync
        handler ran in a thread) makes every cleanup run shielded, as in ``close``.
        """
        return await self._run(exc, check_first=True) or exc

    async def unwind_shielded(self, exc: BaseException) -> BaseException:
        """``unwind`` that a cancellation cannot cut short: every cleanup gets to run."""
        with anyio.CancelScope(shield=True):
            result = await self.unwind(exc)
        return result


def _cancelled(raised: BaseException | None = None) -> bool:
    """Whether a cancellation is in flight: ``raised`` is one, or the task's scope is cancelled
    (a cleanup may have turned it into another exception, or been in a thread when it came)."""
    if raised is not None and isinstance(raised, anyio.get_cancelled_exc_class()):
        return True
    return anyio.current_effective_deadline() == -math.inf


async def _async_finish(gen: AsyncGenerator[Any, None], exc: BaseException | None) -> None:
    try:
        if exc is None:
            await gen.__anext__()
        else:
            await gen.athrow(exc)
    except StopAsyncIteration:
        return
    raise RuntimeError("a generator dependency yielded more than once")
