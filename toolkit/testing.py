"""Test clients: Starlette's ``TestClient`` and an async client that runs the app's lifespan.

``TestClient`` is Starlette's (it prefers the ``httpx2`` package, installed by the ``testing``
extra). As in FastAPI, a handler's unhandled exception is raised in the test (after the 500 is
sent) unless ``raise_server_exceptions=False``. ``AsyncTestClient`` drives the app in-process
through httpx's ``ASGITransport``, with no thread portal, and runs the lifespan around the
``async with`` block.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import AsyncIterator
from types import TracebackType
from typing import Any

import anyio
import httpx
from starlette.testclient import TestClient
from starlette.types import ASGIApp, Message

__all__ = ["AsyncTestClient", "TestClient", "run_lifespan"]


@contextlib.asynccontextmanager
async def run_lifespan(app: ASGIApp, state: dict[str, Any] | None = None) -> AsyncIterator[dict[str, Any]]:
    """Send ``lifespan.startup`` to ``app``, yield the lifespan state, then send ``lifespan.shutdown``."""
    state = {} if state is None else state
    to_app, app_inbox = anyio.create_memory_object_stream[Message](math.inf)
    app_outbox, from_app = anyio.create_memory_object_stream[Message](math.inf)
    scope = {"type": "lifespan", "asgi": {"version": "3.0", "spec_version": "2.0"}, "state": state}

    app_error: Exception | None = None
    failure: str | None = None
    body_error: Exception | None = None

    async def run() -> None:
        nonlocal app_error
        with app_inbox, app_outbox:
            try:
                await app(scope, app_inbox.receive, app_outbox.send)
            except Exception as exc:  # reported below, chained to the RuntimeError
                app_error = exc
            finally:
                await app_outbox.send({"type": "lifespan.app.exit"})

    # Errors are raised after the task group exits, so callers get them bare, not in an ExceptionGroup.
    with to_app, from_app:
        async with anyio.create_task_group() as tg:
            tg.start_soon(run)
            await to_app.send({"type": "lifespan.startup"})
            message = await from_app.receive()
            if message["type"] != "lifespan.startup.complete":
                failure = f"lifespan startup failed: {message.get('message', message['type'])}"
            else:
                try:
                    yield state
                except Exception as exc:
                    body_error = exc
                finally:
                    await to_app.send({"type": "lifespan.shutdown"})
                    message = await from_app.receive()
                    if message["type"] == "lifespan.shutdown.failed":
                        failure = f"lifespan shutdown failed: {message.get('message')}"
    if body_error is not None:
        raise body_error
    if failure is not None:
        raise RuntimeError(failure) from app_error


class AsyncTestClient(httpx.AsyncClient):
    """``async with AsyncTestClient(app) as client: await client.get("/")`` — lifespan included.

    As with ``TestClient``, an unhandled error in the app is raised in the test after its 500 is
    sent (``raise_server_exceptions=False`` returns the 500 instead).
    """

    def __init__(
        self,
        app: ASGIApp,
        base_url: str = "http://testserver",
        *,
        raise_server_exceptions: bool = True,
        **kwargs: Any,
    ) -> None:
        self._app = app
        self._lifespan_state: dict[str, Any] = {}
        self._lifespan: contextlib.AbstractAsyncContextManager[dict[str, Any]] | None = None

        async def with_state(scope: Any, receive: Any, send: Any) -> None:
            scope["state"] = dict(self._lifespan_state)
            if raise_server_exceptions:
                # The extension Starlette's TestClient sets: the error guard re-raises after its 500.
                scope["extensions"] = {**scope.get("extensions", {}), "http.response.debug": {}}
            await app(scope, receive, send)

        super().__init__(transport=httpx.ASGITransport(app=with_state), base_url=base_url, **kwargs)

    async def __aenter__(self) -> AsyncTestClient:
        await super().__aenter__()
        self._lifespan = run_lifespan(self._app, self._lifespan_state)
        await self._lifespan.__aenter__()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None = None,
        exc: BaseException | None = None,
        tb: TracebackType | None = None,
    ) -> None:
        try:
            if self._lifespan is not None:
                await self._lifespan.__aexit__(exc_type, exc, tb)
        finally:
            await super().__aexit__(exc_type, exc, tb)
