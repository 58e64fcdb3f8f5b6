"""Stores and apps shared by the response-cache tests (MemoryStore and a real Redis)."""

import contextlib
from collections.abc import AsyncIterator
from typing import Any

from toolkit import App
from toolkit.cache import Cache
from toolkit.sessions import Store
from toolkit.testing import TestClient


async def close(store: Store) -> None:
    closer = getattr(store, "close", None)
    if closer is not None:
        await closer()


def cache_app(store: Store, **options: Any) -> tuple[App, Cache]:
    @contextlib.asynccontextmanager
    async def lifespan(app: App) -> AsyncIterator[None]:
        yield
        await close(store)

    cache = Cache(store)
    return App(cache=cache, lifespan=lifespan, **options), cache


def portal(client: TestClient) -> Any:
    """The client's event loop (a Redis client is bound to it): ``portal(client).call(...)``."""
    assert client.portal is not None, "use the client as a context manager"
    return client.portal
